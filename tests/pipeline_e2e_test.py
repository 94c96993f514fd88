"""End-to-end LocalDagRunner runs on a sample of the real taxi data, shared by the tests of this module.

One pipeline run happens in this process (tests/conftest.py gave TensorFlow two logical CPUs, so the Trainer
mirrors over two replicas); the second run of the same pipeline goes through the `tfxp` CLI in a fresh
process and must come from cache.
"""
import csv
import glob
import json
import os
import re
import subprocess
import sys
import textwrap

import pytest
from conftest import REPO, held_out_rows

from config import load_config
from pipeline.local_runner import run_local
from pipeline.summary import latest_execution, open_store
from serving.layout import latest_model_dir, versions
from trainer.task import SUMMARY_FILE

BEAM_NODES = ["CsvExampleGen", "StatisticsGen", "FrozenSchemaGen", "ExampleValidator", "Transform", "Trainer"]
GATE_NODES = ["DataGate", "Evaluator", "Pusher"]


def test_run_pushes_a_blessed_model_in_tf_serving_layout(taxi_run):
    summary, config = taxi_run["summary"], taxi_run["config"]
    assert summary.blessed is True
    assert summary.pushed is True
    assert versions(config.serving_dir), "nothing under the serving dir"
    model_dir = latest_model_dir(config.serving_dir)
    assert os.path.realpath(summary.pushed_model_dir) == os.path.realpath(model_dir)
    assert os.path.isfile(os.path.join(model_dir, "saved_model.pb"))
    assert summary.metrics["binary_accuracy"] > 0.75  # converged (the majority class is ~0.6)
    assert summary.metrics["example_count"] > 500


def test_progress_lines_name_every_component_with_seconds(taxi_run):
    lines = taxi_run["lines"]
    for node in BEAM_NODES + ["DataGate", "Evaluator", "Pusher"]:
        assert f"[tfxp] {node}: started" in lines
        assert any(line.startswith(f"[tfxp] {node}: finished in ") and line.endswith(" s") for line in lines)
    assert set(BEAM_NODES) <= set(taxi_run["summary"].component_seconds)


def test_training_mirrors_over_two_replicas_with_scaled_global_batch(taxi_run):
    config = taxi_run["config"]
    [summary_file] = glob.glob(os.path.join(config.pipeline_root, "Trainer", "model_run", "*", SUMMARY_FILE))
    training = json.load(open(summary_file))
    assert training["strategy"] == "MirroredStrategy"
    assert training["num_replicas_in_sync"] == 2
    assert training["global_batch_size"] == 2 * 64
    assert training["metrics"]["val_binary_accuracy"] > 0.75
    assert glob.glob(os.path.join(os.path.dirname(summary_file), "**", "events.out.tfevents.*"), recursive=True)


SCORE_SCRIPT = textwrap.dedent("""
    import json, sys
    from serving.client import ServedModel
    rows, labels = json.load(open(sys.argv[2]))
    model = ServedModel.latest(sys.argv[1])
    scores = model.predict_rows(rows).reshape(-1).tolist()
    print(json.dumps({"scores": scores, "model_dir": model.model_dir}))
""")


def test_pushed_model_scores_raw_examples_in_a_fresh_process(taxi_run, tmp_path):
    rows, labels = held_out_rows(taxi_run)
    request = tmp_path / "rows.json"
    request.write_text(json.dumps([rows, labels]))
    result = subprocess.run([sys.executable, "-c", SCORE_SCRIPT, taxi_run["config"].serving_dir, str(request)],
                            capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0, result.stderr[-3000:]
    scores = json.loads(result.stdout.strip().splitlines()[-1])["scores"]
    assert len(scores) == len(rows)
    assert all(0.0 <= s <= 1.0 for s in scores)
    accuracy = sum((s > 0.5) == bool(y) for s, y in zip(scores, labels)) / len(labels)
    assert accuracy > 0.75


# `python -m pipeline.cli`, which also writes, as the process exits, the modules it imported and those
# still deferred (pipeline/deferred_imports.py) to the file named first.
CLI_NOTING_MODULES = """
import atexit, json, runpy, sys
modules_json = sys.argv.pop(1)
def note_modules():
    from pipeline.deferred_imports import is_deferred
    with open(modules_json, "w") as f:
        json.dump({"imported": sorted(sys.modules), "deferred": sorted(m for m in sys.modules if is_deferred(m))}, f)
atexit.register(note_modules)
sys.argv[0] = "tfxp"
runpy.run_module("pipeline.cli", run_name="__main__")
"""


@pytest.fixture(scope="module")
def cached_cli_run(taxi_run):
    summary_json = taxi_run["root"] / "second_run.json"
    # What other test modules did to the shared root (cache_key_test runs edited code on it) may have left
    # the report's cache without this run's evaluation: a first CLI run absorbs it.
    warm = subprocess.run([sys.executable, "-m", "pipeline.cli", "run", "--config", taxi_run["config_path"]],
                          capture_output=True, text=True, cwd=REPO)
    assert warm.returncode == 0, warm.stderr[-3000:]
    result = subprocess.run(
        [sys.executable, "-c", CLI_NOTING_MODULES, str(taxi_run["root"] / "second_run_modules.json"), "run",
         "--config", taxi_run["config_path"], "--summary-json", str(summary_json)],
        capture_output=True, text=True, cwd=REPO)
    return result, summary_json


def test_second_run_through_the_cli_comes_from_cache(taxi_run, cached_cli_run):
    result, summary_json = cached_cli_run
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.load(open(summary_json))
    # Every step, the gates too: the Evaluator's baseline is the latest blessed model other than the
    # candidate (none, as in the first run, not the first run's model itself), and the DataGate's the
    # latest statistics accepted other than these, so their inputs are the first run's.
    assert set(BEAM_NODES + GATE_NODES) <= set(summary["cached_components"])
    from ml_metadata.proto import metadata_store_pb2

    store = open_store(taxi_run["config"].metadata_path)
    for node in BEAM_NODES + GATE_NODES:
        execution = latest_execution(store, "taxi", node)
        assert execution.last_known_state == metadata_store_pb2.Execution.CACHED, node
        if node == "Pusher":
            continue  # cache_key_test.py re-executes it on this root with edited quantizer code
        # Each of these ran for real exactly once, in the first run.
        context = store.get_context_by_type_and_name("node", f"taxi.{node}")
        states = [e.last_known_state for e in store.get_executions_by_context(context.id)]
        assert states.count(metadata_store_pb2.Execution.COMPLETE) == 1, node


def test_the_cached_run_imports_neither_tfma_s_evaluation_code_nor_cloud_clients(taxi_run, cached_cli_run):
    """Nothing was evaluated, so TFMA's evaluators, metrics (nltk, scikit-learn) and readers (with the
    notebook views: ipywidgets, IPython) were not imported: the summary and the report read the evaluation
    from the report's cache. Beam's and TensorFlow's Google Cloud clients stayed deferred, and TFX's unused
    components unimported."""
    assert cached_cli_run[0].returncode == 0, cached_cli_run[0].stderr[-3000:]
    modules = json.load(open(taxi_run["root"] / "second_run_modules.json"))
    deferred = set(modules["deferred"])
    loaded = set(modules["imported"]) - deferred
    assert {"tensorflow_model_analysis", "tensorflow_data_validation", "tfx.components", "google.cloud.bigquery",
            "google.cloud.pubsub", "googleapiclient.discovery"} <= deferred
    for name in ("tensorflow_model_analysis.evaluators", "tensorflow_model_analysis.metrics",
                 "tensorflow_model_analysis.api.model_eval_lib", "nltk", "sklearn", "ipywidgets", "IPython",
                 "google.cloud.bigquery.client", "keras_tuner", "tfx.components.tuner.component"):
        assert name not in loaded, name
    # What the run did use was imported: TFX's component specs, ExampleGen's driver, TFMA's EvalConfig.
    assert {"tfx.types.standard_component_specs", "tfx.components.example_gen.driver",
            "tensorflow_model_analysis.sdk"} <= loaded


def test_the_command_runs_the_pipeline_with_its_startup_frozen(taxi_run, cached_cli_run):
    """`tfxp run` paused the garbage collector while it imported, then froze what the imports made and ran the
    pipeline with the collector on (config.process); the in-process run (run_local, as tests call it) did not."""
    assert cached_cli_run[0].returncode == 0
    logs = sorted(glob.glob(os.path.join(taxi_run["config"].pipeline_root, "logs", "*.log")), key=os.path.getmtime)
    said = [re.search(r"tfxp: garbage collector on, (\d+) objects of the start-up frozen", open(log).read())
            for log in logs]
    assert said[0] is None and said[-1] is not None and int(said[-1].group(1)) > 100_000


def test_cli_summary_json_and_output(cached_cli_run):
    result, summary_json = cached_cli_run
    summary = json.load(open(summary_json))
    for key in ("pushed", "pushed_model_dir", "metrics", "blessed", "component_seconds"):
        assert key in summary
    assert summary["blessed"] is True and summary["pushed"] is True
    assert os.path.isfile(os.path.join(summary["pushed_model_dir"], "saved_model.pb"))
    assert "binary_accuracy" in summary["metrics"]
    assert "[tfxp] Transform: finished in" in result.stdout and "(from cache)" in result.stdout
    assert "[tfxp] summary" in result.stdout and "binary_accuracy" in result.stdout


def test_multiclass_config_for_another_csv_runs_with_no_code_change(tmp_path):
    config = load_config(os.path.join(REPO, "configs", "wine.yaml")).with_overrides(
        str(tmp_path / "root"), str(tmp_path / "serving"))
    summary = run_local(config, emit_line=lambda line: None)
    assert summary.blessed is True and summary.pushed is True
    assert summary.metrics["sparse_categorical_accuracy"] >= 0.8
    from serving.client import ServedModel

    model = ServedModel.latest(config.serving_dir)
    assert model.classes() and sorted(model.classes()) == ["barbera", "barolo", "grignolino"]
    with open(os.path.join(REPO, "data", "wine", "wine.csv"), newline="") as f:
        rows = list(csv.DictReader(f))[:20]
    probabilities = model.predict_rows(rows)
    assert probabilities.shape == (20, 3)
    predicted = [model.classes()[i] for i in probabilities.argmax(axis=1)]
    assert sum(p == row["cultivar"] for p, row in zip(predicted, rows)) >= 16
