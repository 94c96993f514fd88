"""Configs for small public tables, written only from the README, push a model: a tiny multiclass table
(iris, 150 rows) and a regression without a value threshold (diabetes, 442 rows). Also the sharp edges that
are named rather than hidden: the constant predictor beside the model's metric, and large passthrough
features."""
import os
import shutil
import subprocess
import sys

import pytest

from conftest import LOGICAL_CPUS, REPO, trainer_spec
from serving_json import assert_json_answers_like_examples
from tfma_compare import assert_same_evaluation, evaluate_both


def table_rows(name, n=40, blank_every=5):
    """Rows of data/<name>/<name>.csv (features only), a cell blanked every few cells: missing values."""
    import csv

    with open(os.path.join(REPO, "data", name, f"{name}.csv"), newline="") as f:
        rows = list(csv.DictReader(f))[:n]
    for i, row in enumerate(rows):
        key = list(row)[i % len(row)]
        if i % blank_every == 0:
            row[key] = ""
    return rows


def copy_config(name, tmp_path, edit=lambda text: text):
    """configs/<name>.yaml with its data, writing under tmp_path."""
    shutil.copytree(os.path.join(REPO, "data", name), tmp_path / "data" / name)
    (tmp_path / "configs").mkdir(exist_ok=True)
    text = open(os.path.join(REPO, "configs", f"{name}.yaml")).read().replace(f"../runs/{name}/", "../out/")
    path = tmp_path / "configs" / f"{name}.yaml"
    path.write_text(edit(text))
    return str(path)


def retrain(config, directory):
    """The run's Trainer again, in a fresh process (tests/multi_worker.py with no TF_CONFIG: one worker, with
    this process's replicas), on the same inputs; returns its model's variables."""
    import json

    spec = trainer_spec(config, model=str(directory / "model"), model_run=str(directory / "model_run"),
                        logical_cpus=LOGICAL_CPUS)
    os.makedirs(directory)
    with open(directory / "spec.json", "w") as f:
        json.dump(spec, f)
    env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
    result = subprocess.run([sys.executable, os.path.join(REPO, "tests", "multi_worker.py"), str(directory / "spec.json")],
                            capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return model_variables(str(directory / "model"))


def model_variables(model_uri):
    import tensorflow as tf

    reader = tf.train.load_checkpoint(os.path.join(model_uri, "Format-Serving", "variables", "variables"))
    return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()
            if name.endswith("VARIABLE_VALUE") and "optimizer" not in name.lower() and "save_counter" not in name}


def run_config(path):
    from config import load_config
    from pipeline.local_runner import run_local

    config = load_config(path)
    return config, run_local(config, emit_line=lambda line: None)


def assert_pushed_with_reason(summary):
    assert summary.blessed is True, summary.validation_failures
    assert summary.pushed, summary.push_blocked_reasons
    assert summary.pushed_kind in ("quantized", "float")
    if summary.pushed_kind == "float":
        assert summary.quantization_gate_failures  # the reason is there to print
    else:
        assert summary.quantization_gate_failures == []


def test_tiny_multiclass_table_pushes_a_quantized_model(tmp_path):
    config, summary = run_config(copy_config("iris", tmp_path))
    assert_pushed_with_reason(summary)
    assert summary.pushed_kind == "quantized"  # its kernels quantize 3.1x: above the int8 default of 3.0
    assert summary.quantization["size_ratio"] >= 3.0
    constant = summary.constant_metrics["sparse_categorical_accuracy"]
    assert 0.2 < constant < 0.5  # three balanced species
    assert summary.metrics["sparse_categorical_accuracy"] > constant and summary.warnings == []
    # The columnar Evaluator's multiclass metrics and blessing are TFMA's on the same model and eval split.
    assert_same_evaluation(evaluate_both(config, tmp_path / "evaluators"))
    # A REST request to the JSON signature answers like tf.Examples (class probabilities).
    assert assert_json_answers_like_examples(summary.pushed_model_dir, table_rows("iris")).shape[1] == 3
    # training.seed: the Trainer run again, in another process, trains the very same weights.
    assert config.training.seed is not None
    from pipeline import nodes
    from pipeline.summary import latest_output_uri

    trained = model_variables(latest_output_uri(config.metadata_path, config.name, nodes.TRAINER, "model"))
    again = retrain(config, tmp_path / "retrained")
    assert trained.keys() == again.keys() and len(trained) >= 6  # 3 Dense layers: kernel and bias
    for name, value in trained.items():
        assert value.dtype.kind == "f" and value.shape == again[name].shape and (value == again[name]).all(), name


def test_regression_without_threshold_is_blessed_on_its_first_run_and_pushed(tmp_path):
    path = copy_config("diabetes", tmp_path)
    config, summary = run_config(path)
    assert config.evaluation.threshold is None
    assert_pushed_with_reason(summary)
    assert summary.validation_failures == []
    mae, constant = summary.metrics["mean_absolute_error"], summary.constant_metrics["mean_absolute_error"]
    assert mae < constant  # the model beats always predicting the training mean
    assert_same_evaluation(evaluate_both(config, tmp_path / "evaluators"))  # regression: TFMA's numbers
    assert_json_answers_like_examples(summary.pushed_model_dir, table_rows("diabetes"))
    # The CLI prints the constant beside the metric.
    result = subprocess.run([sys.executable, "-m", "pipeline.cli", "run", "--config", path], capture_output=True,
                            text=True, timeout=600, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    assert result.returncode == 0, result.stderr[-2000:]
    assert "(constant predictor:" in result.stdout
    assert "pushed                       True" in result.stdout


def test_model_no_better_than_a_constant_predictor_is_named_in_the_summary():
    from pipeline.summary import no_better_than_constant

    [warning] = no_better_than_constant({"sparse_categorical_accuracy": 0.43, "example_count": 40.0},
                                        {"sparse_categorical_accuracy": 0.43})
    assert "no better than a constant predictor" in warning and "0.4300" in warning
    assert no_better_than_constant({"mean_squared_error": 2.0}, {"mean_squared_error": 1.5})
    assert no_better_than_constant({"mean_squared_error": 1.0}, {"mean_squared_error": 1.5}) == []


def test_constant_predictor_metrics_are_the_majority_class_and_the_training_mean():
    from pipeline.constant_baseline import constant_metrics

    metrics = constant_metrics([0, 0, 1, 0], [1, 0, 0, 0, 1], "binary", ["binary_accuracy", "auc"])
    assert metrics["binary_accuracy"] == pytest.approx(0.6) and metrics["auc"] == pytest.approx(0.5)
    metrics = constant_metrics(["a", "b", "b"], ["b", "a", "c", "b"], "multiclass", ["sparse_categorical_accuracy"])
    assert metrics["sparse_categorical_accuracy"] == pytest.approx(0.5)
    metrics = constant_metrics([1.0, 3.0], [0.0, 4.0], "regression", ["mean_squared_error", "mean_absolute_error"])
    assert metrics["mean_squared_error"] == pytest.approx(4.0) and metrics["mean_absolute_error"] == pytest.approx(2.0)


def test_large_passthrough_feature_is_warned_about_by_freeze_and_run(tmp_path):
    """A year-like passthrough column (values ~2000) stalls training; `tfxp schema freeze` and `tfxp run`
    both say so, and name the treatments that fix it."""
    import csv

    data = tmp_path / "data" / "iris"
    data.mkdir(parents=True)
    with open(os.path.join(REPO, "data", "iris", "iris.csv")) as f:
        rows = list(csv.reader(f))
    with open(data / "iris.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(rows[0] + ["year"])
        writer.writerows(row + [str(2000 + i % 10)] for i, row in enumerate(rows[1:]))
    path = copy_config("iris", tmp_path / "cfg", lambda t: t.replace("../data/iris", str(data)).replace(
        "  petal_width: zscore\n", "  petal_width: zscore\n  year: passthrough\n"))
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    freeze = subprocess.run([sys.executable, "-m", "pipeline.cli", "schema", "freeze", "--config", path,
                             "--output", str(tmp_path / "iris.schema.pbtxt")], capture_output=True, text=True,
                            timeout=600, env=env)
    assert freeze.returncode == 0, freeze.stderr[-2000:]
    assert "feature year is passthrough with values up to 2009" in freeze.stdout
    assert "use zscore or minmax" in freeze.stdout
    config, summary = run_config(path)
    assert any("feature year is passthrough" in w for w in summary.warnings), summary.warnings
