"""QuantizingPusher: int8 weights, gates that stop the push, a contained quantizer abort, atomic pushes.

Uses the session's taxi pipeline run (tests/conftest.py). Re-runs reuse its pipeline root, so everything up to
the Evaluator comes from cache and only the Pusher runs again.
"""
import dataclasses
import json
import os
import shutil

import pytest
import tensorflow as tf

from conftest import tree_digest

from components.quantizer import gates as gates_lib
from components.quantizer import push as push_lib
from serving import layout
from components.quantizer.layers import per_channel_int8
from components.quantizer.quantize import FAULT_ENV
from config import METRICS, QuantizationConfig
from pipeline.local_runner import run_local
from pipeline.summary import latest_output_uri


def checkpoint_dtypes(model_dir):
    reader = tf.train.load_checkpoint(os.path.join(model_dir, "variables", "variables"))
    return {name: reader.get_variable_to_dtype_map()[name]
            for name, shape in tf.train.list_variables(os.path.join(model_dir, "variables", "variables"))
            if len(shape) == 2}


def test_default_run_pushes_int8_model_and_float_fallback(taxi_run):
    summary = taxi_run["summary"]
    assert summary.pushed, summary.push_blocked_reasons
    quantized, float_dir = summary.pushed_quantized_model_dir, summary.pushed_float_model_dir
    assert os.path.dirname(quantized) == taxi_run["config"].serving_dir
    assert os.path.dirname(float_dir) == taxi_run["config"].float_serving_dir
    assert os.path.basename(quantized) == os.path.basename(float_dir)  # same version number
    kernels = checkpoint_dtypes(quantized)
    assert kernels and all(dtype == tf.int8 for dtype in kernels.values()), kernels
    assert all(dtype == tf.float32 for dtype in checkpoint_dtypes(float_dir).values())
    q = summary.quantization
    assert q["method"] == "int8"
    assert summary.pushed_kind == "quantized"
    assert q["size_ratio"] >= 3.5
    assert q["metric_drop"] <= 0.005
    assert set(q["latency_ratio"]) == {"1", "256"}
    for interval in q["latency_interval"].values():  # the int8 serving graph is the float one
        assert interval["low"] <= 1.0 + 0.05 and interval["low"] <= interval["ratio"] <= interval["high"]
    # Only standard TF ops: the SavedModel loads in plain TensorFlow (the e2e test scores it in a fresh process).
    assert tf.saved_model.load(quantized).signatures["serving_default"] is not None


def test_per_channel_int8_round_trip_error_is_within_half_a_step():
    import numpy as np

    kernel = np.random.default_rng(0).normal(size=(50, 8)).astype("float32")
    q, scale = per_channel_int8(kernel)
    assert q.dtype == np.int8 and scale.shape == (8,)
    assert np.all(np.abs(q.astype("float32") * scale - kernel) <= scale / 2 + 1e-7)


def test_first_layer_rows_fed_by_numeric_features_get_their_own_int8_scale():
    """A z-scored outlier multiplies its row's rounding error: that row is rounded on its own grid, not on
    the output channel's (set by the larger one-hot weights)."""
    import numpy as np

    from components.quantizer.layers import QuantizedDense
    from components.quantizer.quantize import numeric_input_rows
    from config import FeatureConfig

    features = [FeatureConfig("a", "zscore"), FeatureConfig("v", "vocab"), FeatureConfig("b", "minmax")]
    assert numeric_input_rows(features, {"v": 5}) == [0, 6]
    kernel = np.random.default_rng(1).normal(size=(7, 4)).astype("float32")
    kernel[[0, 6]] *= 0.01  # numeric rows with small weights
    layer = QuantizedDense(4, None, "int8", row_scaled=[0, 6])
    layer.build((None, 7))
    layer.set_from_float(kernel, np.zeros(4, "float32"))
    restored = layer.kernel_float.read().numpy()
    row_error = np.abs(restored[[0, 6]] - kernel[[0, 6]]).max(axis=1)
    assert np.all(row_error <= np.abs(kernel[[0, 6]]).max(axis=1) / 254 + 1e-7)
    q, scale = per_channel_int8(kernel)  # channel grid only: 10x coarser on those rows here
    assert np.abs(q[[0, 6]] * scale - kernel[[0, 6]]).max() > 10 * row_error.max()
    one_hot_q, one_hot_scale = per_channel_int8(kernel[1:6])
    np.testing.assert_allclose(restored[1:6], one_hot_q * one_hot_scale, rtol=1e-6)
    assert layer.kernel_stored.dtype == tf.int8 and layer.rows_stored.dtype == tf.int8


@pytest.fixture(scope="module")
def comparison(taxi_run):
    summary = taxi_run["summary"]
    examples = latest_output_uri(taxi_run["config"].metadata_path, "taxi", "CsvExampleGen", "examples")
    return gates_lib.compare(summary.pushed_float_model_dir, summary.pushed_quantized_model_dir,
                             os.path.join(examples, "Split-eval", "*"), "binary_accuracy")


@pytest.mark.parametrize("gate, value, message", [
    ("max_metric_drop", -1.0, "binary_accuracy drops by"),
    ("max_abs_prediction_diff", 0.0, "max |prediction difference|"),
    ("max_label_flip_rate", -1.0, "label flip rate"),
    ("min_size_ratio", 100.0, "is below min_size_ratio 100.0"),
    ("max_latency_ratio", 0.01, "latency at batch 1 is"),
])
def test_each_gate_fails_with_its_reason(comparison, gate, value, message):
    no_gates = {name: None for name in gates_lib.Gates.__dataclass_fields__}
    failed = gates_lib.failures(comparison, gates_lib.Gates(**dict(no_gates, **{gate: value})))
    assert any(message in line for line in failed), failed
    assert gates_lib.failures(comparison, gates_lib.Gates(**no_gates)) == []


def test_the_flip_gate_fails_only_beyond_chance():
    """The label-flip gate's bound is Clopper-Pearson's: a rate that, if true, shows this many flips or more
    only 5% of the time. One flip in iris's 41 eval rows is no evidence against 1%; five are."""
    from scipy.stats import binom

    low = gates_lib.flip_rate_lower_bound
    assert low(0, 41) == 0.0 and low(1, 41) < 0.01 < low(3, 41)
    assert low(105, 10000) < 0.01 < low(130, 10000) < 0.013
    for flips, examples in ((1, 41), (5, 41), (130, 10000)):
        assert binom.sf(flips - 1, examples, low(flips, examples)) == pytest.approx(0.05, rel=1e-6)


def test_the_metric_gates_use_the_paired_interval(comparison):
    """failures() gates the lower bounds: a 2.4-point accuracy drop and a 2.4% flip rate measured on 41 rows
    pass (one near-tie), the same on 10,000 rows fail."""
    gates = gates_lib.Gates(max_metric_drop=0.005, max_abs_prediction_diff=None, max_label_flip_rate=0.01,
                            min_size_ratio=None, max_latency_ratio=None)

    def measured(flips, examples):
        # One example in flips changed its decision, each one to a wrong one: drop = rate, paired se.
        rate, se = flips / examples, ((flips / examples * (1 - flips / examples)) / (examples - 1)) ** 0.5
        return dataclasses.replace(comparison, examples=examples, metric_drop=rate, metric_drop_low=rate - 1.645 * se,
                                   label_flips=flips, label_flip_rate=rate,
                                   label_flip_rate_low=gates_lib.flip_rate_lower_bound(flips, examples))

    assert gates_lib.failures(measured(1, 41), gates) == []
    failed = gates_lib.failures(measured(240, 10000), gates)
    assert [line.split(" ")[0] for line in failed] == ["binary_accuracy", "label"], failed
    assert "240 of 10000 eval examples" in failed[1] and "with 95% confidence" in failed[1]


def _rank_auc(labels, scores):
    from scipy.stats import rankdata

    positive = labels > 0.5
    m, n = positive.sum(), (~positive).sum()
    return (rankdata(scores)[positive].sum() - m * (m + 1) / 2) / (m * n)


@pytest.mark.parametrize("metric", ["binary_accuracy", "auc", "sparse_categorical_accuracy",
                                    "mean_squared_error", "mean_absolute_error"])
def test_metric_drop_se_matches_a_paired_bootstrap(metric):
    import numpy as np

    rng = np.random.default_rng(0)
    n, task = 2000, METRICS[metric].task
    if task == "multiclass":
        labels = rng.integers(0, 3, n)
        logits = rng.normal(size=(n, 3)) + 1.5 * np.eye(3)[labels]
        float_predictions, quantized_predictions = logits, logits + rng.normal(scale=0.3, size=(n, 3))
    else:
        labels = rng.integers(0, 2, n).astype(float) if task == "binary" else rng.normal(size=n)
        float_predictions = np.clip(labels * 0.4 + rng.random(n) * 0.6, 0, 1)[:, None]
        quantized_predictions = np.clip(float_predictions + rng.normal(scale=0.05, size=(n, 1)), 0, 1)
    se = gates_lib.metric_drop_se(metric, task, labels, float_predictions, quantized_predictions)
    value = (lambda p: _rank_auc(labels, p[:, 0])) if metric == "auc" else (
        lambda p: gates_lib.metric_value(metric, task, labels, p))
    drops = []
    for _ in range(400):
        i = rng.integers(0, n, n)
        if metric == "auc":
            drops.append(_rank_auc(labels[i], float_predictions[i, 0]) - _rank_auc(labels[i], quantized_predictions[i, 0]))
        else:
            drops.append(gates_lib.metric_value(metric, task, labels[i], float_predictions[i])
                         - gates_lib.metric_value(metric, task, labels[i], quantized_predictions[i]))
    assert value(float_predictions) != value(quantized_predictions)
    assert se == pytest.approx(float(np.std(drops)), rel=0.15)


@pytest.fixture
def previous_push(taxi_run, tmp_path):
    """A serving dir holding one earlier version (pushed from another model) and its float fallback."""
    summary = taxi_run["summary"]
    serving, float_serving = tmp_path / "serving", tmp_path / "serving_float"
    for source, target in ((summary.pushed_quantized_model_dir, serving),
                           (summary.pushed_float_model_dir, float_serving)):
        shutil.copytree(source, target / "1000")
        record = target / "1000" / layout.PUSH_RECORD
        record.write_text(json.dumps({"source_model_uri": "an-earlier-model", "version": 1000}))
    return serving, float_serving


def rerun_pusher(taxi_run, serving, float_serving, **quantization):
    config = dataclasses.replace(taxi_run["config"], serving_dir=str(serving),
                                 float_serving_dir=str(float_serving),
                                 quantization=dataclasses.replace(QuantizationConfig(), **quantization))
    return run_local(config, emit_line=lambda line: None)


def pushed_model_properties(taxi_run):
    """Custom properties of the Pusher's latest PushedModel artifact in ML Metadata."""
    from pipeline.summary import latest_execution, open_store, output_artifacts

    store = open_store(taxi_run["config"].metadata_path)
    [pushed] = output_artifacts(store, latest_execution(store, "taxi", "Pusher"))["pushed_model"]
    return {k: getattr(v, v.WhichOneof("value")) for k, v in pushed.custom_properties.items()}


def test_failed_gate_with_push_nothing_pushes_nothing_and_leaves_previous_versions_byte_identical(
        taxi_run, previous_push):
    serving, float_serving = previous_push
    before = tree_digest(serving), tree_digest(float_serving)
    gates = dict(QuantizationConfig().gates, max_abs_prediction_diff=0.0)
    summary = rerun_pusher(taxi_run, serving, float_serving, gates=tuple(gates.items()),
                           on_gate_failure="push_nothing")
    assert summary.pushed is False and summary.pushed_kind is None
    assert any("max |prediction difference|" in reason for reason in summary.push_blocked_reasons)
    assert (tree_digest(serving), tree_digest(float_serving)) == before
    assert sorted(os.listdir(serving)) == ["1000"]  # no temporary directory left behind either


def test_failed_gate_pushes_the_blessed_float_model_by_default(taxi_run, previous_push):
    """A blessed model always reaches serving: the quantized form failed a gate, so the float model is the
    new version of the serving directory, marked float in the summary, the push record and ML Metadata."""
    serving, float_serving = previous_push
    gates = dict(QuantizationConfig().gates, max_abs_prediction_diff=0.0)
    summary = rerun_pusher(taxi_run, serving, float_serving, gates=tuple(gates.items()))
    assert summary.pushed and summary.pushed_kind == "float"
    assert summary.push_blocked_reasons == []
    assert any("max |prediction difference|" in r for r in summary.quantization_gate_failures)
    versions = layout.versions(str(serving))
    assert versions[0] == 1000 and len(versions) == 2
    new = os.path.join(serving, str(versions[1]))
    assert summary.pushed_model_dir == new and summary.pushed_quantized_model_dir is None
    assert layout.pushed_kind(new) == "float"
    assert all(dtype == tf.float32 for dtype in checkpoint_dtypes(new).values())
    assert tf.saved_model.load(new).signatures["serving_default"] is not None
    properties = pushed_model_properties(taxi_run)
    assert properties["pushed_kind"] == "float" and properties["pushed"] == 1
    assert "max |prediction difference|" in properties["quantization_gate_failures"]


def test_quantizer_abort_pushes_float_with_the_reason_and_keeps_previous_versions(taxi_run, previous_push,
                                                                                  monkeypatch):
    serving, float_serving = previous_push
    old_version = tree_digest(serving / "1000")
    monkeypatch.setenv(FAULT_ENV, "abort")
    summary = rerun_pusher(taxi_run, serving, float_serving, method="float16")
    assert summary.pushed and summary.pushed_kind == "float"
    [reason] = summary.quantization_gate_failures
    assert "quantizer process (float16) was killed by signal SIGABRT" in reason
    assert tree_digest(serving / "1000") == old_version


def test_passing_gates_push_a_new_version_atomically_beside_the_previous(taxi_run, previous_push):
    serving, float_serving = previous_push
    summary = rerun_pusher(taxi_run, serving, float_serving, method="float16",
                           gates=tuple(dict(QuantizationConfig().gates, min_size_ratio=1.5).items()))
    assert summary.pushed, summary.push_blocked_reasons
    versions = layout.versions(str(serving))
    assert versions[0] == 1000 and len(versions) == 2 and versions[1] > 1000
    assert not [n for n in os.listdir(serving) if n.startswith(".tmp-")]
    assert checkpoint_dtypes(summary.pushed_quantized_model_dir)
    assert all(dtype == tf.float16 for dtype in checkpoint_dtypes(summary.pushed_quantized_model_dir).values())
    assert summary.pushed_kind == "quantized"
    assert 1.5 <= summary.quantization["size_ratio"] < 2.0 + 1e-9  # float16: at most 2x


def test_push_to_an_object_store_writes_saved_model_pb_last(tmp_path, monkeypatch):
    """gs:// has no atomic rename: the version directory gets saved_model.pb (what TF Serving waits for)
    after every other file. TensorFlow's ram:// filesystem stands in for GCS here."""
    model = tmp_path / "model"
    (model / "variables").mkdir(parents=True)
    (model / "variables" / "variables.index").write_bytes(b"index")
    (model / "saved_model.pb").write_bytes(b"graph")
    (model / "assets.extra").mkdir()
    (model / "assets.extra" / "tfxp_features.json").write_text("{}")
    copied = []
    real_copy = tf.io.gfile.copy
    monkeypatch.setattr(tf.io.gfile, "copy", lambda src, dst, overwrite=False: (
        copied.append(os.path.basename(dst)), real_copy(src, dst, overwrite)))
    serving = "ram://serving_push_test"
    final = push_lib.push_atomically(str(model), serving, 7, {"source_model_uri": "m1"})
    assert final == f"{serving}/7" and layout.versions(serving) == [7]
    assert copied[-1] == "saved_model.pb" and len(copied) == 3
    with tf.io.gfile.GFile(f"{final}/saved_model.pb", "rb") as f:
        assert f.read() == b"graph"
    assert push_lib.already_pushed(serving, "m1") == final and push_lib.already_pushed(serving, "m2") is None
    with pytest.raises(FileExistsError):
        push_lib.push_atomically(str(model), serving, 7, {})


def test_a_new_model_at_a_reused_artifact_uri_is_pushed_again(tmp_path):
    """Deleting the pipeline root and running again reuses artifact URIs (execution ids restart): the push
    record's model fingerprint tells the new model from the one already pushed."""
    models = []
    for name, weights in (("a", b"weights-a"), ("b", b"weights-b")):
        model = tmp_path / name
        (model / "variables").mkdir(parents=True)
        (model / "variables" / "variables.data-00000-of-00001").write_bytes(weights)
        (model / "saved_model.pb").write_bytes(b"graph")
        models.append(str(model))
    first, second = (push_lib.model_fingerprint(m) for m in models)
    assert first != second and first == push_lib.model_fingerprint(models[0])
    serving = str(tmp_path / "serving")
    final = push_lib.push_atomically(models[0], serving, 1, {"source_model_uri": "/root/Trainer/model/7",
                                                            "source_model_fingerprint": first})
    assert push_lib.already_pushed(serving, "/root/Trainer/model/7", first) == final
    assert push_lib.already_pushed(serving, "/root/Trainer/model/7", second) is None
