"""Everything the run report shows, read back from ML Metadata and the run's artifacts into typed records.

A run is one `pipeline_run` context of the metadata store: its executions (executed, cached, failed or
left running by a crash), their input and output artifacts, and what those artifacts hold (statistics, the
data gate's report, the transform graph, TensorBoard logs, the evaluation, the pushed model's properties).
Whatever a run did not get to is simply absent: a report of a stopped run shows how far it got.
"""
from __future__ import annotations

import dataclasses
import os
from typing import Any, Dict, List, Optional, Tuple

from ml_metadata.proto import metadata_store_pb2

from components.data_gate.checks import Anomaly
from components.properties import PushedModelProperties
from config import PipelineConfig
from pipeline import nodes
from pipeline.report.artifacts import (analyzer_values, read_evaluation, read_features, read_gate_report,
                                       read_training)
from pipeline.report.cache import ChartCache
from pipeline.report.records import AnalyzerValues, ArtifactRef, RunReport, Step
from pipeline.summary import NODE_CONTEXT, open_store

RUN_CONTEXT = "pipeline_run"
PUSHED_MODEL_TYPE = "PushedModel"
RESOLVER_TYPE = "tfx.dsl.components.common.resolver.Resolver"
NOTHING_RESOLVED = "nothing to resolve"

_STATE_NAMES = {metadata_store_pb2.Execution.COMPLETE: "executed", metadata_store_pb2.Execution.CACHED: "cached",
                metadata_store_pb2.Execution.FAILED: "failed", metadata_store_pb2.Execution.RUNNING: "running",
                metadata_store_pb2.Execution.NEW: "new", metadata_store_pb2.Execution.CANCELED: "canceled"}


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
# The whole report


def collect(config: PipelineConfig, run_id: Optional[str] = None, error: Optional[str] = None,
            anomalies: Optional[List[Anomaly]] = None, cache: Optional[ChartCache] = None) -> RunReport:
    """The report of a run (default: the latest) of the config's pipeline. `error` and `anomalies` come from
    the runner when the run it just made failed; for an older run they are read back where recorded. `cache`
    keeps what the transform graph gives (the analyzer values) and what is read from the evaluation for the
    next report."""
    from pipeline.constant_baseline import task_constant_metrics

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
    analyzers = ([AnalyzerValues(**values) for values in (cache or ChartCache(None)).value(
        analyzer_values, list(config.features), transform_graph)] if transform_graph else [])
    model_run = output(nodes.TRAINER, "model_run")
    training = read_training(model_run) if model_run else None

    evaluation = None
    evaluation_uri = output(nodes.EVALUATOR, "evaluation")
    if evaluation_uri:
        examples = output(nodes.EXAMPLE_GEN, "examples")
        constant = (task_constant_metrics(examples, config.label.column, config.label.task, cache)
                    if examples else {})
        step = next(s for s in steps if s.node == nodes.EVALUATOR)
        blessing_ref = step.output("blessing")
        blessing = store.get_artifacts_by_id([blessing_ref.artifact_id])[0] if blessing_ref else None
        evaluation = read_evaluation(config, evaluation_uri, blessing, constant, cache)

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
