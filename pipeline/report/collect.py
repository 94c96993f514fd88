"""Everything the run report shows, read back from ML Metadata and the run's artifacts into typed records.

A run is one `pipeline_run` context of the metadata store: its executions (executed, cached, failed or
left running by a crash), their input and output artifacts, and what those artifacts hold (statistics, the
data gate's report, the transform graph, TensorBoard logs, the evaluation, the pushed model's properties).
Whatever a run did not get to is simply absent: a report of a stopped run shows how far it got.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
from typing import Any, Dict, List, Optional, Tuple

from ml_metadata.proto import metadata_store_pb2

from components.data_gate.checks import GATE_REPORT_FILE, Anomaly, Distance, GateReport, present_fraction
from components.properties import BLESSED, PushedModelProperties
from config import METRICS, TASK_METRICS, PipelineConfig
from pipeline import nodes
from pipeline.summary import NODE_CONTEXT, _custom, evaluation_metrics, open_store, validation_failures

RUN_CONTEXT = "pipeline_run"
STATS_FILE = "FeatureStats.pb"
SPLITS = ("train", "eval")
PUSHED_MODEL_TYPE = "PushedModel"
RESOLVER_TYPE = "tfx.dsl.components.common.resolver.Resolver"
NOTHING_RESOLVED = "nothing to resolve"
TOP_VALUES = 10  # per string feature in the data section, and vocabulary entries in the transform section

_STATE_NAMES = {metadata_store_pb2.Execution.COMPLETE: "executed", metadata_store_pb2.Execution.CACHED: "cached",
                metadata_store_pb2.Execution.FAILED: "failed", metadata_store_pb2.Execution.RUNNING: "running",
                metadata_store_pb2.Execution.NEW: "new", metadata_store_pb2.Execution.CANCELED: "canceled"}


@dataclasses.dataclass
class ArtifactRef:
    key: str  # the input or output key (e.g. "examples", "model")
    type_name: str
    uri: str
    artifact_id: int


@dataclasses.dataclass
class Step:
    """One node's execution in the run."""
    node: str
    execution_id: int
    state: str  # executed | cached | failed | running (a crashed run) | ...
    started: float  # seconds since the epoch
    seconds: float
    inputs: List[ArtifactRef]
    outputs: List[ArtifactRef]

    def output(self, key: str) -> Optional[ArtifactRef]:
        return next((a for a in self.outputs if a.key == key), None)

    def input(self, key: str) -> Optional[ArtifactRef]:
        return next((a for a in self.inputs if a.key == key), None)


@dataclasses.dataclass
class FeatureSplitStats:
    """One feature in one split (TFDV's statistics)."""
    kind: str  # numeric | string
    count: int  # examples in the split
    missing_share: float
    mean: Optional[float] = None
    std: Optional[float] = None
    min: Optional[float] = None
    max: Optional[float] = None
    # numeric: TFDV's standard histogram (low, high, count); string: top values (value, count)
    buckets: List[Tuple[float, float, float]] = dataclasses.field(default_factory=list)
    unique: Optional[int] = None
    top_values: List[Tuple[str, float]] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class FeatureData:
    name: str
    role: str  # feature | label
    treatment: str  # zscore | minmax | vocab | passthrough | label
    splits: Dict[str, FeatureSplitStats]  # "train", "eval", and "accepted" (the last accepted train split)
    distances: List[Distance]


@dataclasses.dataclass
class AnalyzerValues:
    """What tf.Transform computed over the training split for one feature, read from the transform graph."""
    name: str
    treatment: str
    mean: Optional[float] = None
    std: Optional[float] = None
    min: Optional[float] = None
    max: Optional[float] = None
    vocabulary_size: Optional[int] = None
    top_entries: List[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class TrainingData:
    summary: Dict[str, Any]  # trainer/task.py's training_summary.json
    curves: Dict[str, Dict[str, List[Tuple[int, float]]]]  # tag -> {"train"|"validation": [(step, value)]}


@dataclasses.dataclass
class MetricRow:
    name: str
    value: float
    baseline: Optional[float]
    constant: Optional[float]
    threshold: Optional[float]  # the config's value threshold, for the gating metric
    interval: Optional[Tuple[float, float]]  # 95% Wilson interval, for accuracy metrics
    higher_is_better: bool


@dataclasses.dataclass
class SliceRow:
    """The candidate's gating metric on one slice of the eval split (evaluation.slices)."""
    column: str
    value: str
    count: int
    metric: float
    interval: Optional[Tuple[float, float]]
    below_threshold: bool


@dataclasses.dataclass
class EvaluationData:
    metric: str  # the gating metric
    rows: List[MetricRow]
    blessed: Optional[bool]
    failures: List[str]  # TFMA's reasons for not blessing
    max_regression: float
    example_count: Optional[int]
    slices: List[SliceRow]  # weakest first


@dataclasses.dataclass
class RunReport:
    config: PipelineConfig
    run_id: str
    started: Optional[float]
    seconds: Optional[float]
    steps: List[Step]
    error: Optional[str]  # why the run stopped, when it failed
    anomalies: List[Anomaly]
    drift_baseline: Optional[str]
    features: List[FeatureData]
    analyzers: List[AnalyzerValues]
    training: Optional[TrainingData]
    evaluation: Optional[EvaluationData]
    pushed: Optional[PushedModelProperties]
    spans: List[int] = dataclasses.field(default_factory=list)  # the data spans the Trainer trained on

    def step(self, node: str) -> Optional[Step]:
        return next((s for s in self.steps if s.node == node), None)

    @property
    def outcome(self) -> str:
        if self.error:
            return "failed"
        if self.pushed is not None and self.pushed.pushed:
            return "pushed"
        if self.evaluation is not None and self.evaluation.blessed is False:
            return "not blessed"
        return "not pushed" if self.pushed is not None else "incomplete"

    def why_not_pushed(self) -> List[str]:
        reasons = []
        if self.error:
            reasons.append(self.error)
        if self.evaluation is not None and self.evaluation.blessed is False:
            reasons += [f"not blessed: {f}" for f in self.evaluation.failures] or ["not blessed"]
        if self.pushed is not None:
            reasons += self.pushed.push_blocked_reasons
        return reasons


# ------------------------------------------------------------------------------------------------------
# The run and its steps


def run_ids(store, pipeline_name: str) -> List[str]:
    """The pipeline's run ids, oldest first."""
    pipeline = store.get_context_by_type_and_name("pipeline", pipeline_name)
    if pipeline is None:
        return []
    mine = {e.id for e in store.get_executions_by_context(pipeline.id)}
    runs = [c for c in store.get_contexts_by_type(RUN_CONTEXT)
            if any(e.id in mine for e in store.get_executions_by_context(c.id))]
    return [c.name for c in sorted(runs, key=lambda c: (c.create_time_since_epoch, c.id))]


def _node_of(store, execution_id: int, pipeline_name: str) -> Optional[str]:
    for context in store.get_contexts_by_execution(execution_id):
        if context.type == NODE_CONTEXT and context.name.startswith(f"{pipeline_name}."):
            return context.name[len(pipeline_name) + 1:]
    return None


def _artifact_refs(store, execution_ids: List[int]) -> Dict[int, Tuple[List[ArtifactRef], List[ArtifactRef]]]:
    events = store.get_events_by_execution_ids(execution_ids)
    artifacts = {a.id: a for a in store.get_artifacts_by_id(list({e.artifact_id for e in events}))} if events else {}
    types = {t.id: t.name for t in store.get_artifact_types()}
    out: Dict[int, Tuple[List[ArtifactRef], List[ArtifactRef]]] = {i: ([], []) for i in execution_ids}
    for event in events:
        artifact = artifacts.get(event.artifact_id)
        if artifact is None:
            continue
        ref = ArtifactRef(key=event.path.steps[0].key if event.path.steps else "",
                          type_name=types.get(artifact.type_id, ""), uri=artifact.uri, artifact_id=artifact.id)
        is_input = event.type in (metadata_store_pb2.Event.INPUT, metadata_store_pb2.Event.DECLARED_INPUT)
        out[event.execution_id][0 if is_input else 1].append(ref)
    return out


def read_steps(store, pipeline_name: str, run_id: str) -> List[Step]:
    context = store.get_context_by_type_and_name(RUN_CONTEXT, run_id)
    if context is None:
        raise LookupError(f"no run {run_id!r} of pipeline {pipeline_name!r} in the metadata store")
    executions = sorted(store.get_executions_by_context(context.id), key=lambda e: (e.create_time_since_epoch, e.id))
    refs = _artifact_refs(store, [e.id for e in executions])
    steps = []
    for execution in executions:
        node = _node_of(store, execution.id, pipeline_name)
        if node is None:
            continue
        inputs, outputs = refs[execution.id]
        state = _STATE_NAMES.get(execution.last_known_state, "unknown")
        if execution.type == RESOLVER_TYPE and state == "failed":
            # A resolver with nothing to resolve (a first run has no accepted statistics or blessed model yet)
            # is recorded FAILED, and the run goes on without that input.
            state = NOTHING_RESOLVED
        steps.append(Step(node=node, execution_id=execution.id, state=state,
                          started=execution.create_time_since_epoch / 1000.0,
                          seconds=max(execution.last_update_time_since_epoch - execution.create_time_since_epoch,
                                      0) / 1000.0,
                          inputs=inputs, outputs=outputs))
    return steps


# ------------------------------------------------------------------------------------------------------
# Data


def read_statistics(uri: str, split: str):
    """A split's DatasetFeatureStatistics (the first dataset of TFDV's list), or None."""
    from tensorflow_metadata.proto.v0 import statistics_pb2

    import tensorflow as tf

    path = os.path.join(uri, f"Split-{split}", STATS_FILE)
    if not tf.io.gfile.exists(path):
        return None
    with tf.io.gfile.GFile(path, "rb") as f:
        stats = statistics_pb2.DatasetFeatureStatisticsList.FromString(f.read())
    return stats.datasets[0] if stats.datasets else None


def feature_split_stats(stats, num_examples: int) -> FeatureSplitStats:
    from tensorflow_metadata.proto.v0 import statistics_pb2

    missing = 1.0 - present_fraction(stats, num_examples)
    if stats.HasField("num_stats"):
        num = stats.num_stats
        standard = [h for h in num.histograms if h.type == statistics_pb2.Histogram.STANDARD]
        buckets = [(b.low_value, b.high_value, b.sample_count) for b in standard[0].buckets] if standard else []
        return FeatureSplitStats(kind="numeric", count=num_examples, missing_share=missing, mean=num.mean,
                                 std=num.std_dev, min=num.min, max=num.max, buckets=buckets)
    string = stats.string_stats
    top = [(v.value, v.frequency) for v in string.top_values[:TOP_VALUES]]
    if not top and string.rank_histogram.buckets:
        top = [(b.label, b.sample_count) for b in string.rank_histogram.buckets[:TOP_VALUES]]
    return FeatureSplitStats(kind="string", count=num_examples, missing_share=missing, unique=string.unique,
                             top_values=top)


def read_features(config: PipelineConfig, statistics_uri: Optional[str], accepted_uri: Optional[str],
                  distances: List[Distance]) -> List[FeatureData]:
    from components.data_gate.checks import feature_stats

    datasets = {split: read_statistics(statistics_uri, split) for split in SPLITS} if statistics_uri else {}
    if accepted_uri:
        datasets["accepted"] = read_statistics(accepted_uri, "train")
    by_split = {split: (feature_stats(d), d.num_examples) for split, d in datasets.items() if d is not None}
    roles = [(f.name, "feature", f.treatment) for f in config.features] + [(config.label.column, "label", "label")]
    out = []
    for name, role, treatment in roles:
        splits = {split: feature_split_stats(stats[name], count)
                  for split, (stats, count) in by_split.items() if name in stats}
        out.append(FeatureData(name=name, role=role, treatment=treatment, splits=splits,
                               distances=[d for d in distances if d.feature == name]))
    return out


def read_gate_report(accepted_uri: Optional[str]) -> Optional[GateReport]:
    if not accepted_uri:
        return None
    import tensorflow as tf

    path = os.path.join(accepted_uri, GATE_REPORT_FILE)
    if not tf.io.gfile.exists(path):
        return None
    with tf.io.gfile.GFile(path) as f:
        return GateReport.from_json(f.read())


# ------------------------------------------------------------------------------------------------------
# Transform


def read_analyzers(config: PipelineConfig, transform_graph_uri: str) -> List[AnalyzerValues]:
    """Per feature, what the transform graph holds from the analysis. Vocabularies are files of the graph;
    the scaling constants are read back through the graph itself: a z-score maps x to (x - mean) / std, so
    transforming x = 0 and x = 1 gives mean and std (min-max: min and max), exactly as serving applies them
    (x = 2 checks that the map is linear: a constant column's is not, and gets no values)."""
    import numpy as np
    import tensorflow as tf
    import tensorflow_transform as tft

    from preprocessing.transform import transformed_name, vocab_filename

    output = tft.TFTransformOutput(transform_graph_uri)
    out: List[AnalyzerValues] = []
    numeric = [f for f in config.features if f.treatment in ("zscore", "minmax")]
    if numeric:
        raw_spec = output.raw_feature_spec()
        examples = []
        for x in (0.0, 1.0, 2.0):
            example = tf.train.Example()
            for feature in numeric:
                spec = raw_spec[feature.name]
                values = example.features.feature[feature.name]
                if spec.dtype == tf.int64:
                    values.int64_list.value.append(int(x))
                else:
                    values.float_list.value.append(x)
            examples.append(example.SerializeToString())
        parsed = tf.io.parse_example(tf.constant(examples), {f.name: raw_spec[f.name] for f in numeric})
        layer = output.transform_features_layer()
        transformed = layer(parsed)
        for feature in numeric:
            y0, y1, y2 = (float(v) for v in np.asarray(transformed[transformed_name(feature.name)]).reshape(-1)[:3])
            slope = y1 - y0
            if not math.isclose(y2 - y1, slope, rel_tol=1e-3, abs_tol=1e-9):
                # not a linear map: a constant column, which TFT passes through a sigmoid (min-max) instead
                out.append(AnalyzerValues(feature.name, feature.treatment))
                continue
            if feature.treatment == "zscore":
                std = 1.0 / slope if slope else None
                out.append(AnalyzerValues(feature.name, feature.treatment, mean=-y0 * std if std else None,
                                          std=std))
            else:
                span = 1.0 / slope if slope else None
                low = -y0 * span if span else None
                out.append(AnalyzerValues(feature.name, feature.treatment, min=low,
                                          max=low + span if span else None))
    for feature in config.features:
        if feature.treatment == "vocab":
            vocabulary = output.vocabulary_by_name(vocab_filename(feature.name))
            out.append(AnalyzerValues(feature.name, "vocab", vocabulary_size=len(vocabulary),
                                      top_entries=[v.decode(errors="replace") if isinstance(v, bytes) else str(v)
                                                   for v in vocabulary[:TOP_VALUES]]))
    order = {f.name: i for i, f in enumerate(config.features)}
    return sorted(out, key=lambda a: order[a.name])


# ------------------------------------------------------------------------------------------------------
# Training


def read_training(model_run_uri: str) -> TrainingData:
    """training_summary.json and the scalar curves of the TensorBoard logs under the model run directory."""
    import tensorflow as tf
    from tensorboard.backend.event_processing import event_accumulator

    from trainer.task import SUMMARY_FILE

    summary_path = os.path.join(model_run_uri, SUMMARY_FILE)
    summary = {}
    if tf.io.gfile.exists(summary_path):
        with tf.io.gfile.GFile(summary_path) as f:
            summary = json.load(f)
    curves: Dict[str, Dict[str, List[Tuple[int, float]]]] = {}
    for phase in ("train", "validation"):
        directory = os.path.join(model_run_uri, phase)
        if not tf.io.gfile.isdir(directory):
            continue
        accumulator = event_accumulator.EventAccumulator(directory, size_guidance={"tensors": 0, "scalars": 0})
        accumulator.Reload()
        for tag in accumulator.Tags().get("tensors", []):
            points = [(e.step, float(tf.make_ndarray(e.tensor_proto))) for e in accumulator.Tensors(tag)
                      if e.tensor_proto.dtype in (tf.float32.as_datatype_enum, tf.float64.as_datatype_enum)]
            if points:
                curves.setdefault(tag, {})[phase] = points
        for tag in accumulator.Tags().get("scalars", []):
            curves.setdefault(tag, {})[phase] = [(e.step, e.value) for e in accumulator.Scalars(tag)]
    return TrainingData(summary=summary, curves=curves)


# ------------------------------------------------------------------------------------------------------
# Evaluation


def wilson_interval(successes: float, n: float, z: float = 1.96) -> Optional[Tuple[float, float]]:
    """95% Wilson score interval of a proportion (cheap, and sound near 0 and 1)."""
    if n <= 0:
        return None
    p = successes / n
    denominator = 1 + z * z / n
    center = (p + z * z / (2 * n)) / denominator
    half = z * ((p * (1 - p) / n + z * z / (4 * n * n)) ** 0.5) / denominator
    return max(0.0, center - half), min(1.0, center + half)


ACCURACY_METRICS = ("binary_accuracy", "sparse_categorical_accuracy")


def read_slices(config: PipelineConfig, evaluation_uri: str) -> List[SliceRow]:
    """The candidate's gating metric per slice, weakest first."""
    import tensorflow_model_analysis as tfma

    ev = config.evaluation
    higher = METRICS[ev.metric].higher_is_better
    out = []
    for per_slice in tfma.load_metrics(evaluation_uri):
        keys = per_slice.slice_key.single_slice_keys
        if len(keys) != 1:
            continue
        values = {kv.key.name: kv.value.double_value.value for kv in per_slice.metric_keys_and_values
                  if not kv.key.is_diff and kv.key.model_name in ("", "candidate")}
        if ev.metric not in values:
            continue
        key = keys[0]
        raw = getattr(key, key.WhichOneof("kind"))
        count = int(values.get("example_count", 0))
        metric = values[ev.metric]
        out.append(SliceRow(
            column=key.column, value=raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw),
            count=count, metric=metric,
            interval=wilson_interval(metric * count, count) if ev.metric in ACCURACY_METRICS else None,
            below_threshold=ev.threshold is not None and (metric < ev.threshold if higher else metric > ev.threshold)))
    return sorted(out, key=lambda r: (r.metric if higher else -r.metric, -r.count))


def read_evaluation(config: PipelineConfig, evaluation_uri: str, blessing: Optional[Any],
                    constant: Dict[str, float]) -> EvaluationData:
    by_model = evaluation_metrics(evaluation_uri)
    candidate, baseline = by_model["candidate"], by_model["baseline"]
    count = candidate.get("example_count")
    rows = []
    for name, value in candidate.items():
        if name == "example_count":
            continue
        metric = METRICS.get(name)
        rows.append(MetricRow(
            name=name, value=value, baseline=baseline.get(name), constant=constant.get(name),
            threshold=config.evaluation.threshold if name == config.evaluation.metric else None,
            interval=wilson_interval(value * count, count) if name in ACCURACY_METRICS and count else None,
            higher_is_better=metric.higher_is_better if metric else True))
    rows.sort(key=lambda r: r.name != config.evaluation.metric)
    return EvaluationData(metric=config.evaluation.metric, rows=rows, slices=read_slices(config, evaluation_uri),
                          blessed=bool(_custom(blessing, BLESSED)) if blessing is not None else None,
                          failures=validation_failures(evaluation_uri),
                          max_regression=config.evaluation.max_regression,
                          example_count=int(count) if count is not None else None)


# ------------------------------------------------------------------------------------------------------
# The whole report


def collect(config: PipelineConfig, run_id: Optional[str] = None, error: Optional[str] = None,
            anomalies: Optional[List[Anomaly]] = None) -> RunReport:
    """The report of a run (default: the latest) of the config's pipeline. `error` and `anomalies` come from
    the runner when the run it just made failed; for an older run they are read back where recorded."""
    from pipeline.constant_baseline import constant_metrics_of_examples

    store = open_store(config.metadata_path)
    ids = run_ids(store, config.name)
    if run_id is None:
        if not ids:
            raise LookupError(f"{config.metadata_path}: no runs of pipeline {config.name!r} yet")
        run_id = ids[-1]
    steps = read_steps(store, config.name, run_id)
    if error is None:
        failed = [s for s in steps if s.state in ("failed", "running")]
        if failed:
            error = f"component {failed[0].node} {'failed' if failed[0].state == 'failed' else 'did not finish'}"

    def output(node: str, key: str) -> Optional[str]:
        step = next((s for s in steps if s.node == node), None)
        ref = step.output(key) if step else None
        return ref.uri if ref else None

    gate_dir = output(nodes.DATA_GATE, "accepted_statistics")
    if gate_dir is None:
        gate_dir = _failed_gate_dir(config, steps)
    gate_report = read_gate_report(gate_dir)
    if anomalies is None:
        anomalies = gate_report.anomalies if gate_report else []
    distances = gate_report.distances if gate_report else []
    drift_baseline = gate_report.baseline_statistics if gate_report else None
    features = read_features(config, output(nodes.STATISTICS_GEN, "statistics"), drift_baseline, distances)

    transform_graph = output(nodes.TRANSFORM, "transform_graph")
    analyzers = read_analyzers(config, transform_graph) if transform_graph else []
    model_run = output(nodes.TRAINER, "model_run")
    training = read_training(model_run) if model_run else None

    evaluation = None
    evaluation_uri = output(nodes.EVALUATOR, "evaluation")
    if evaluation_uri:
        examples = output(nodes.EXAMPLE_GEN, "examples")
        constant = (constant_metrics_of_examples(examples, config.label.column, config.label.task,
                                                 TASK_METRICS[config.label.task]) if examples else {})
        step = next(s for s in steps if s.node == nodes.EVALUATOR)
        blessing_ref = step.output("blessing")
        blessing = store.get_artifacts_by_id([blessing_ref.artifact_id])[0] if blessing_ref else None
        evaluation = read_evaluation(config, evaluation_uri, blessing, constant)

    pushed = None
    pusher = next((s for s in steps if s.node == nodes.PUSHER), None)
    if pusher is not None and pusher.output("pushed_model"):
        [artifact] = store.get_artifacts_by_id([pusher.output("pushed_model").artifact_id])
        pushed = PushedModelProperties.read(artifact)
        if pushed.already_pushed:  # the quantization and gates of the run that pushed this version
            pushed = dataclasses.replace(pushed, **_first_push(store, pushed))

    spans: List[int] = []
    trainer = next((s for s in steps if s.node == nodes.TRAINER), None)
    example_refs = [a.artifact_id for a in (trainer.inputs if trainer else []) if a.key == "examples"]
    for artifact in store.get_artifacts_by_id(example_refs) if example_refs else []:
        for properties in (artifact.properties, artifact.custom_properties):  # TFX 1.16: a custom property
            if "span" in properties:
                spans.append(properties["span"].int_value)
                break

    started = min((s.started for s in steps), default=None)
    ended = max((s.started + s.seconds for s in steps), default=None)
    return RunReport(config=config, run_id=run_id, started=started,
                     seconds=(ended - started) if started is not None else None, steps=steps, error=error,
                     anomalies=list(anomalies), drift_baseline=drift_baseline, features=features,
                     analyzers=analyzers, training=training, evaluation=evaluation, pushed=pushed,
                     spans=sorted(set(spans)))


def _first_push(store, pushed: PushedModelProperties) -> Dict[str, Any]:
    """The quantization fields of the PushedModel that first pushed the same version."""
    for artifact in sorted(store.get_artifacts_by_type(PUSHED_MODEL_TYPE), key=lambda a: a.id):
        earlier = PushedModelProperties.read(artifact)
        if earlier.pushed_destination == pushed.pushed_destination and not earlier.already_pushed:
            return {"quantization_results": earlier.quantization_results,
                    "quantization_gate_failures": earlier.quantization_gate_failures,
                    "quantization_method": earlier.quantization_method}
    return {}


def not_started(config: PipelineConfig, error: str) -> RunReport:
    """The report of a run stopped before any component ran (bad input files found by the pre-flight check)."""
    return RunReport(config=config, run_id="(not started)", started=None, seconds=None, steps=[], error=error,
                     anomalies=[], drift_baseline=None, features=[], analyzers=[], training=None,
                     evaluation=None, pushed=None)


def _failed_gate_dir(config: PipelineConfig, steps: List[Step]) -> Optional[str]:
    """A failed DataGate's output directory: its outputs are not published to ML Metadata, but the executor
    wrote its report where TFX put the output, <pipeline_root>/DataGate/accepted_statistics/<execution id>."""
    step = next((s for s in steps if s.node == nodes.DATA_GATE and s.state in ("failed", "running")), None)
    if step is None:
        return None
    return os.path.join(config.pipeline_root, nodes.DATA_GATE, "accepted_statistics", str(step.execution_id))
