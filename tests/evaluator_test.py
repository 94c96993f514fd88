"""The columnar Evaluator (components/evaluator) against TFX's stock Evaluator on the same run's examples and
model: the same metrics, validation result, blessing and output files. Multiclass and regression are compared
in small_tables_test.py (iris, diabetes); the metric arithmetic is also checked here on numbers worked by hand."""
import dataclasses
import hashlib
import os

import numpy as np
import tensorflow as tf
import pytest

from components.evaluator.evaluate import _ScoreBatches
from components.evaluator.metrics import Sums, batch_sums, metric_value
from tfma_compare import assert_same_evaluation, evaluate_both


def test_binary_metrics_validation_and_blessing_match_tfma(taxi_run, tmp_path):
    results = evaluate_both(taxi_run["config"], tmp_path)
    assert_same_evaluation(results)
    metrics = results["columnar"]["metrics"]
    assert metrics[("", "example_count", False)] > 500
    assert 0.5 < metrics[("", "auc", False)] <= 1.0
    assert results["columnar"]["blessed"] == 1


def test_baseline_diffs_and_a_failed_threshold_match_tfma(taxi_run, tmp_path):
    """With a baseline (TFMA's diff metrics and change threshold), and with a value threshold the model
    cannot reach: the same failures in the validation result, and NOT_BLESSED from both."""
    config = taxi_run["config"]
    results = evaluate_both(config, tmp_path / "baseline", with_baseline=True)  # the same model: diffs 0
    assert_same_evaluation(results)
    assert results["columnar"]["metrics"][("candidate", "binary_accuracy", True)] == 0.0
    unreachable = dataclasses.replace(config, evaluation=dataclasses.replace(config.evaluation, threshold=0.999))
    results = evaluate_both(unreachable, tmp_path / "unreachable", with_baseline=True)
    assert_same_evaluation(results)
    assert results["columnar"]["blessed"] == 0 and results["columnar"]["blessing_files"] == ["NOT_BLESSED"]
    [failed] = results["columnar"]["validation"].metric_validations_per_slice
    assert [f.metric_key.name for f in failed.failures] == ["binary_accuracy"]


def test_a_different_baseline_model_is_scored_on_its_own(taxi_run, tmp_path, monkeypatch):
    """The candidate scored against another model (the run's int8 model as the baseline): each batch is scored
    by each model's own serving signature, and the baseline's metrics and the diffs are TFMA's. (The same model
    as both is scored once: the test above.) The two models' metrics may be equal (int8 can keep every
    ranking), so what is checked is the predictions each model gave."""
    calls = []
    predictions = _ScoreBatches._predictions

    def spy(self, name, serialized):
        values = predictions(self, name, serialized)
        calls.append((hashlib.sha1(b"".join(serialized.numpy())).hexdigest(), name, self._paths[name],
                      serialized, values))
        return values

    monkeypatch.setattr(_ScoreBatches, "_predictions", spy)
    baseline_dir = taxi_run["summary"].pushed_quantized_model_dir
    results = evaluate_both(taxi_run["config"], tmp_path, with_baseline=True, baseline_serving_dir=baseline_dir)
    assert_same_evaluation(results)
    by_batch = {}
    for batch, name, path, serialized, values in calls:
        by_batch.setdefault(batch, {})[name] = (path, serialized, values)
    assert by_batch and all(set(scored) == {"candidate", "baseline"} for scored in by_batch.values())
    paths = {name: path for scored in by_batch.values() for name, (path, _, _) in scored.items()}
    assert os.path.realpath(paths["baseline"]) == os.path.realpath(baseline_dir)
    assert paths["candidate"] != paths["baseline"]
    # The baseline's predictions are its own model's: its serving signature called here on the same batch
    # gives them, and they are not the candidate's.
    baseline = tf.saved_model.load(baseline_dir)
    path, serialized, values = next(iter(by_batch.values()))["baseline"]
    [own] = baseline.signatures["serving_default"](examples=serialized).values()
    np.testing.assert_array_equal(values, own.numpy())
    assert any(not np.array_equal(scored["candidate"][2], scored["baseline"][2]) for scored in by_batch.values())


def test_slices_match_tfma(taxi_run, tmp_path):
    """evaluation.slices: a text column and an integer column, each value its own slice, with TFMA's slice
    keys and metrics; the threshold gates the overall slice only."""
    config = taxi_run["config"]
    # The threshold is the model's own overall accuracy (less 1e-9), so that it passes overall whatever the
    # trained model's accuracy is, while some payment_type slice is below it: the payment_type slices
    # partition the eval split, so their accuracies average to the overall one and the lowest is below it
    # unless all are equal.
    overall = evaluate_both(config, tmp_path / "unsliced", engines=("columnar",))["columnar"]["metrics"]
    threshold = overall[("", "binary_accuracy", False)] - 1e-9
    sliced = dataclasses.replace(config, evaluation=dataclasses.replace(
        config.evaluation, slices=("payment_type", "trip_start_hour"), threshold=threshold))
    results = evaluate_both(sliced, tmp_path / "sliced", with_baseline=True)
    assert_same_evaluation(results)
    keys = {key[0] for key in results["columnar"]["sliced_metrics"]}
    assert (("payment_type", b"Cash"),) in keys and (("trip_start_hour", 19),) in keys and () in keys
    counts = {key[0]: value for key, value in results["columnar"]["sliced_metrics"].items()
              if key[1:] == ("candidate", "example_count", False)}
    assert sum(v for k, v in counts.items() if k and k[0][0] == "payment_type") == counts[()]
    # Some slices are below the threshold (cash trips rarely tip by card); the blessing follows the overall
    # slice.
    accuracy = {key[0]: value for key, value in results["columnar"]["sliced_metrics"].items()
                if key[1:] == ("candidate", "binary_accuracy", False)}
    assert min(accuracy.values()) < threshold <= accuracy[()]
    assert results["columnar"]["blessed"] == 1 and results["tfma"]["blessed"] == 1


def test_batch_sums_merge_to_the_metrics_of_the_whole():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 1000)
    scores = np.clip(labels * 0.3 + rng.random(1000) * 0.7, 0, 1)[:, None]
    whole = batch_sums("binary", labels, scores)
    merged = Sums()
    for start in range(0, 1000, 300):
        merged.merge(batch_sums("binary", labels[start:start + 300], scores[start:start + 300]))
    for name in ("ExampleCount", "BinaryAccuracy", "AUC"):
        assert metric_value(name, merged) == pytest.approx(metric_value(name, whole))
    # AUC is the probability that a positive outscores a negative (ties at 10,000 thresholds aside).
    positives, negatives = scores[labels == 1, 0], scores[labels == 0, 0]
    exact = np.mean(positives[:, None] > negatives[None, :])
    assert metric_value("AUC", whole) == pytest.approx(exact, abs=1e-3)


def test_metrics_on_numbers_worked_by_hand():
    binary = batch_sums("binary", np.array([1, 0, 1, 0]), np.array([[0.9], [0.6], [0.4], [0.1]]))
    assert metric_value("BinaryAccuracy", binary) == 0.5
    assert metric_value("AUC", binary) == pytest.approx(0.75)  # 3 of 4 positive-negative pairs ordered
    multiclass = batch_sums("multiclass", np.array([2, 0, 1]), np.array([[0.1, 0.2, 0.7], [0.5, 0.4, 0.1],
                                                                         [0.6, 0.3, 0.1]]))
    assert metric_value("SparseCategoricalAccuracy", multiclass) == pytest.approx(2 / 3)
    regression = batch_sums("regression", np.array([1.0, 3.0]), np.array([[2.0], [1.0]]))
    assert metric_value("MeanSquaredError", regression) == pytest.approx(2.5)
    assert metric_value("MeanAbsoluteError", regression) == pytest.approx(1.5)
    assert np.isnan(metric_value("MeanSquaredError", Sums()))


def test_unsupported_metric_or_slicing_is_refused_by_name():
    import tensorflow_model_analysis as tfma

    from components.evaluator.evaluate import _metric_classes
    from components.evaluator.slices import slice_columns

    config = tfma.EvalConfig(metrics_specs=[tfma.MetricsSpec(metrics=[tfma.MetricConfig(class_name="Precision")])])
    with pytest.raises(ValueError, match="'Precision'.*evaluator: tfma|'Precision'.*stock TFMA"):
        _metric_classes(config)
    assert slice_columns(tfma.EvalConfig(slicing_specs=[tfma.SlicingSpec(), tfma.SlicingSpec(feature_keys=["company"])
                                                        ])) == ["company"]
    for spec in (tfma.SlicingSpec(feature_keys=["company", "payment_type"]),
                 tfma.SlicingSpec(feature_values={"company": "Flash Cab"}),
                 tfma.SlicingSpec(slice_keys_sql="SELECT 1")):
        with pytest.raises(ValueError, match="feature_keys|feature_values|slice_keys_sql"):
            slice_columns(tfma.EvalConfig(slicing_specs=[spec]))


def test_slices_are_the_same_from_parquet_columns_and_from_tf_examples():
    """A batch's slices (text, integer and float columns; several values, none, a value repeated in a row; a
    column the first rows lack; a column no row has) from a Parquet payload's columns and from the same rows
    as tf.Examples, and both as TFMA keys them: one slice per value, text decoded, a row in a slice once."""
    import pyarrow as pa

    from components.evaluator.slices import ExampleCells, arrow_cells, slices_of
    from preprocessing.payload import encode_examples

    batch = pa.RecordBatch.from_arrays([
        pa.array([[b"Cash"], [b"Card", b"Cash"], [], None, [b"Card"], [b"Cash", b"Cash"]], pa.large_list(pa.large_binary())),
        pa.array([[3], [3], [19], [7], None, [19]], pa.large_list(pa.int64())),
        pa.array([None, None, [0.5], [0.25], [0.5], None], pa.large_list(pa.float32())),
        pa.array([None] * 6, pa.large_list(pa.int64())),
    ], ["payment_type", "hour", "score", "absent"])
    columns = ["payment_type", "hour", "score", "absent", "not_a_column"]
    expected = {(): [0, 1, 2, 3, 4, 5],
                (("payment_type", "Cash"),): [0, 1, 5], (("payment_type", "Card"),): [1, 4],
                (("hour", 3),): [0, 1], (("hour", 7),): [3], (("hour", 19),): [2, 5],
                (("score", 0.25),): [3], (("score", 0.5),): [2, 4]}
    serialized = encode_examples(batch)
    for cells in (arrow_cells(batch, columns), ExampleCells(columns)(serialized, tf.constant(serialized))):
        slices = slices_of(6, cells)
        assert {key: list(rows) for key, rows in slices.items()} == expected
        assert all(type(key[0][1]) in (str, int, float) for key in slices if key)
