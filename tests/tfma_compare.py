"""Runs TFX's stock Evaluator executor and tfxp's ColumnarEvaluator executor on the same examples, model(s)
and EvalConfig (a finished run's artifacts), and returns what each wrote, as TFMA reads it back."""
import os

import pytest

import tensorflow_model_analysis as tfma
from tfx.components.evaluator.executor import Executor as TfmaExecutor
from tfx.types import artifact_utils, standard_artifacts
from tfx.utils import json_utils, proto_utils

from components.evaluator.executor import Executor as ColumnarExecutor
from pipeline import nodes
from pipeline.pipeline import eval_config
from pipeline.summary import latest_output_uri


def _artifact(kind, uri, artifact_id=None, split_names=None):
    a = kind()
    a.uri = str(uri)
    if artifact_id is not None:
        a.id = artifact_id
    if split_names:
        a.split_names = artifact_utils.encode_split_names(split_names)
    return a


def metrics_by_key(evaluation_uri, slices=False):
    """{(model name, metric name, is_diff): value} of the overall slice; with slices=True
    {(slice, model name, metric name, is_diff): value} of every slice (slice: ((column, value), ...))."""
    out = {}
    for per_slice in tfma.load_metrics(evaluation_uri):
        slice_key = tuple((k.column, k.WhichOneof("kind") and getattr(k, k.WhichOneof("kind")))
                          for k in per_slice.slice_key.single_slice_keys)
        if slice_key and not slices:
            continue
        for kv in per_slice.metric_keys_and_values:
            key = (kv.key.model_name, kv.key.name, kv.key.is_diff)
            out[(slice_key, *key) if slices else key] = kv.value.double_value.value
    return out


def evaluate_both(config, out_dir, with_baseline=False, baseline_serving_dir=None, engines=("tfma", "columnar"),
                  examples=None):
    """{"tfma": result, "columnar": result}; result: metrics (metrics_by_key), validation (the
    ValidationResult), blessed (the blessing's `blessed` property) and files (the evaluation's files).
    with_baseline: the run's model is also the baseline, or the SavedModel at baseline_serving_dir is.
    engines: which of the two to run. examples: an Examples artifact with an eval split, instead of the
    run's."""
    metadata, name = config.metadata_path, config.name
    examples_uri = latest_output_uri(metadata, name, nodes.EXAMPLE_GEN, "examples")
    model_uri = latest_output_uri(metadata, name, nodes.TRAINER, "model")
    props = {"eval_config": proto_utils.proto_to_json(eval_config(config)),
             "example_splits": json_utils.dumps(["eval"]), "task": config.label.task}
    baseline_uri = model_uri
    if baseline_serving_dir:  # a Model artifact whose Format-Serving is that SavedModel
        baseline_uri = os.path.join(out_dir, "baseline_model")
        os.makedirs(baseline_uri, exist_ok=True)
        os.symlink(baseline_serving_dir, os.path.join(baseline_uri, "Format-Serving"))
    results = {}
    for engine, executor in (("tfma", TfmaExecutor), ("columnar", ColumnarExecutor)):
        if engine not in engines:
            continue
        inputs = {"examples": [examples or _artifact(standard_artifacts.Examples, examples_uri,
                                                     split_names=["train", "eval"])],
                  "model": [_artifact(standard_artifacts.Model, model_uri, 1)]}
        if with_baseline:
            inputs["baseline_model"] = [_artifact(standard_artifacts.Model, baseline_uri, 2)]
        evaluation = _artifact(standard_artifacts.ModelEvaluation, os.path.join(out_dir, engine, "evaluation"))
        blessing = _artifact(standard_artifacts.ModelBlessing, os.path.join(out_dir, engine, "blessing"))
        executor().Do(inputs, {"evaluation": [evaluation], "blessing": [blessing]}, dict(props))
        results[engine] = {"metrics": metrics_by_key(evaluation.uri),
                           "sliced_metrics": metrics_by_key(evaluation.uri, slices=True),
                           "validation": tfma.load_validation_result(evaluation.uri),
                           "blessed": blessing.get_int_custom_property("blessed"),
                           "blessing_files": sorted(os.listdir(blessing.uri)),
                           "files": sorted(os.listdir(evaluation.uri))}
    return results


def assert_same_evaluation(results, tolerance=1e-6):
    tfma_result, columnar = results["tfma"], results["columnar"]
    assert set(columnar["metrics"]) == set(tfma_result["metrics"])
    for key, value in tfma_result["metrics"].items():
        assert columnar["metrics"][key] == pytest.approx(value, rel=tolerance, abs=tolerance), key
    assert set(columnar["sliced_metrics"]) == set(tfma_result["sliced_metrics"])
    for key, value in tfma_result["sliced_metrics"].items():
        assert columnar["sliced_metrics"][key] == pytest.approx(value, rel=tolerance, abs=tolerance, nan_ok=True), key
    assert columnar["validation"] == tfma_result["validation"]
    assert columnar["blessed"] == tfma_result["blessed"]
    assert columnar["blessing_files"] == tfma_result["blessing_files"]
    assert columnar["files"] == tfma_result["files"]
