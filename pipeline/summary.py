"""What a finished run produced, read back from ML Metadata: metrics, blessing, pushed model."""
from __future__ import annotations

import dataclasses
import os
from typing import TYPE_CHECKING, Any, Dict, List, Optional

from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2

from pipeline import nodes
from components.properties import BLESSED, AcceptedStatisticsProperties, PushedModelProperties

if TYPE_CHECKING:
    from pipeline.report.cache import ChartCache

NODE_CONTEXT = "node"


@dataclasses.dataclass
class RunSummary:
    pipeline_name: str
    pushed: bool = False
    pushed_model_dir: Optional[str] = None
    pushed_quantized_model_dir: Optional[str] = None
    pushed_float_model_dir: Optional[str] = None
    # "quantized", or "float" when the quantized form failed a gate (quantization_gate_failures say which).
    pushed_kind: Optional[str] = None
    quantization_gate_failures: List[str] = dataclasses.field(default_factory=list)
    push_blocked_reasons: List[str] = dataclasses.field(default_factory=list)
    quantization: Dict[str, Any] = dataclasses.field(default_factory=dict)
    blessed: Optional[bool] = None
    metrics: Dict[str, float] = dataclasses.field(default_factory=dict)
    # The latest blessed model's metrics on the same eval data (empty on a first run).
    baseline_metrics: Dict[str, float] = dataclasses.field(default_factory=dict)
    # Why the Evaluator did not bless the model, from TFMA's validation result (failed thresholds, missing
    # thresholds or slices).
    validation_failures: List[str] = dataclasses.field(default_factory=list)
    # The eval metrics of a constant predictor (pipeline/constant_baseline.py), beside `metrics`.
    constant_metrics: Dict[str, float] = dataclasses.field(default_factory=dict)
    warnings: List[str] = dataclasses.field(default_factory=list)
    component_seconds: Dict[str, float] = dataclasses.field(default_factory=dict)
    cached_components: List[str] = dataclasses.field(default_factory=list)
    error: Optional[str] = None
    report_file: Optional[str] = None  # the run report (pipeline/report), when it could be written

    def to_json(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)


def open_store(metadata_path: str) -> metadata_store.MetadataStore:
    config = metadata_store_pb2.ConnectionConfig()
    config.sqlite.filename_uri = metadata_path
    config.sqlite.connection_mode = metadata_store_pb2.SqliteMetadataSourceConfig.READONLY
    return metadata_store.MetadataStore(config)


def latest_execution(store, pipeline_name: str, node_id: str) -> Optional[metadata_store_pb2.Execution]:
    context = store.get_context_by_type_and_name(NODE_CONTEXT, f"{pipeline_name}.{node_id}")
    if context is None:
        return None
    executions = store.get_executions_by_context(context.id)
    return max(executions, key=lambda e: e.id) if executions else None


def output_artifacts(store, execution) -> Dict[str, List[metadata_store_pb2.Artifact]]:
    """Output key -> artifacts of one execution (cached executions point at the artifacts they reuse)."""
    by_key: Dict[str, List[int]] = {}
    for event in store.get_events_by_execution_ids([execution.id]):
        if event.type in (metadata_store_pb2.Event.OUTPUT, metadata_store_pb2.Event.DECLARED_OUTPUT):
            key = event.path.steps[0].key if event.path.steps else ""
            by_key.setdefault(key, []).append(event.artifact_id)
    ids = [i for v in by_key.values() for i in v]
    artifacts = {a.id: a for a in store.get_artifacts_by_id(ids)} if ids else {}
    return {k: [artifacts[i] for i in v] for k, v in by_key.items()}


def latest_output_uri(metadata_path: str, pipeline_name: str, node_id: str, key: str) -> str:
    """URI of the single `key` output of a node's latest execution (e.g. the Trainer's model)."""
    store = open_store(metadata_path)
    execution = latest_execution(store, pipeline_name, node_id)
    if execution is None:
        raise LookupError(f"{metadata_path}: no execution of {pipeline_name}.{node_id}")
    [artifact] = output_artifacts(store, execution)[key]
    return artifact.uri


def _custom(artifact, name: str) -> Any:
    if name not in artifact.custom_properties:
        return None
    value = artifact.custom_properties[name]
    return getattr(value, value.WhichOneof("value"))


def evaluation_metrics(evaluation_uri: str) -> Dict[str, Dict[str, float]]:
    """Overall-slice metrics from the Evaluator's output, by model: "candidate", and "baseline" (the latest
    blessed model) when there was one."""
    import tensorflow_model_analysis as tfma  # heavy: only when a run has finished

    metrics: Dict[str, Dict[str, float]] = {"candidate": {}, "baseline": {}}
    for per_slice in tfma.load_metrics(evaluation_uri):
        if per_slice.slice_key.single_slice_keys:
            continue
        for kv in per_slice.metric_keys_and_values:
            key = kv.key
            model = key.model_name or "candidate"
            if key.is_diff or model not in metrics:
                continue
            if kv.value.HasField("double_value"):
                metrics[model][key.name] = kv.value.double_value.value
    return metrics


def validation_failures(evaluation_uri: str) -> List[str]:
    """TFMA's reasons for not blessing, in words; empty when validation passed."""
    import tensorflow_model_analysis as tfma

    result = tfma.load_validation_result(evaluation_uri)
    failures = []
    for per_slice in result.metric_validations_per_slice:
        for failure in per_slice.failures:
            failures.append(f"{failure.metric_key.name}"
                            f"{' (vs baseline)' if failure.metric_key.is_diff else ''}: "
                            f"{failure.metric_value.double_value.value:.4f} fails {failure.metric_threshold}"
                            .replace("\n", " ").strip())
    if result.missing_thresholds:
        failures.append("missing_thresholds: TFMA had no threshold to check (no value threshold, and no "
                        "baseline model for the change threshold)")
    for spec in list(result.missing_slices) + list(result.missing_cross_slices):
        failures.append(f"missing slice: no eval examples for {spec}".replace("\n", " ").strip())
    if not result.validation_ok and not failures:
        failures.append("TFMA's validation result is not ok and names no failed threshold")
    return failures


def no_better_than_constant(metrics: Dict[str, float], constant: Dict[str, float]) -> List[str]:
    """Warnings for each metric where the model does not beat the constant predictor."""
    from config import METRICS

    warnings = []
    for name, value in constant.items():
        if name not in metrics:
            continue
        model = metrics[name]
        if (model <= value) if METRICS[name].higher_is_better else (model >= value):
            warnings.append(f"the model is no better than a constant predictor: {name} {model:.4f} vs "
                            f"{value:.4f} for always predicting the training label distribution (check "
                            f"the features' treatments, e.g. a large passthrough feature, and training.train_steps)")
    return warnings


def read_summary(metadata_path: str, pipeline_name: str, label: Optional[str] = None,
                 task: Optional[str] = None, cache: Optional["ChartCache"] = None) -> RunSummary:
    """What the latest executions produced; with the label column and task, also the constant predictor's
    metrics (and a warning when the model does not beat it). What is read from the evaluation and the
    constant predictor's metrics are kept in `cache` (the run report's) when given: an artifact's files never
    change, and a run whose Evaluator came from cache then reads them without importing TFMA's readers
    (model_eval_lib imports its evaluators, metrics and notebook views)."""
    from pipeline.report.cache import ChartCache

    kept = cache or ChartCache(None)  # ChartCache(None) computes every value
    summary = RunSummary(pipeline_name=pipeline_name)
    store = open_store(metadata_path)
    gate = latest_execution(store, pipeline_name, nodes.DATA_GATE)
    if gate is not None:
        for accepted in output_artifacts(store, gate).get("accepted_statistics", []):
            summary.warnings += AcceptedStatisticsProperties.read(accepted).warnings
    evaluator = latest_execution(store, pipeline_name, nodes.EVALUATOR)
    if evaluator is not None:
        outputs = output_artifacts(store, evaluator)
        for evaluation in outputs.get("evaluation", []):
            by_model = kept.value(evaluation_metrics, evaluation.uri)
            summary.metrics, summary.baseline_metrics = by_model["candidate"], by_model["baseline"]
            summary.validation_failures = kept.value(validation_failures, evaluation.uri)
        for blessing in outputs.get("blessing", []):
            summary.blessed = bool(_custom(blessing, BLESSED))
        example_gen = latest_execution(store, pipeline_name, nodes.EXAMPLE_GEN)
        if label and task and summary.metrics and example_gen is not None:
            from pipeline.constant_baseline import task_constant_metrics

            for examples in output_artifacts(store, example_gen).get("examples", []):
                constant = task_constant_metrics(examples.uri, label, task, kept)
                summary.constant_metrics = {name: constant[name] for name in summary.metrics if name in constant}
            summary.warnings += no_better_than_constant(summary.metrics, summary.constant_metrics)
    pusher = latest_execution(store, pipeline_name, nodes.PUSHER)
    if pusher is not None:
        for pushed in output_artifacts(store, pusher).get("pushed_model", []):
            outcome = PushedModelProperties.read(pushed)
            summary.pushed = outcome.pushed
            if outcome.pushed:
                summary.pushed_model_dir = (os.path.abspath(outcome.pushed_destination)
                                            if outcome.pushed_destination else None)
                summary.pushed_quantized_model_dir = outcome.pushed_quantized_model_dir
                summary.pushed_float_model_dir = outcome.pushed_float_model_dir
                summary.pushed_kind = outcome.pushed_kind
            summary.quantization_gate_failures = outcome.quantization_gate_failures
            summary.push_blocked_reasons = outcome.push_blocked_reasons
            summary.quantization = {"method": outcome.quantization_method, **outcome.quantization_results}
    return summary
