"""The tfxp DAG, a pure function of the typed config (no I/O: runners decide where and how it runs).

CsvExampleGen -> StatisticsGen -> SchemaGen (inferred) or FrozenSchemaGen (the reviewed schema file)
  -> ExampleValidator -> DataGate (blocks on anomalies; drift baseline: the last accepted statistics)
  -> Transform -> Trainer -> latest-blessed-model Resolver -> Evaluator -> QuantizingPusher (id "Pusher")
"""
from __future__ import annotations

import math
from typing import Any, List

import tensorflow_model_analysis as tfma
# Modules rather than the `tfx.v1` facade: that also imports the Google Cloud extensions (aiplatform),
# ~2.5 s of start-up that a local run does not use.
from tfx.components import CsvExampleGen, ExampleValidator, ImportExampleGen, SchemaGen
from tfx.components import Transform as TfxTransform
from tfx.dsl.components.common.resolver import Resolver
from tfx.dsl.input_resolution.strategies.latest_artifact_strategy import LatestArtifactStrategy
from tfx.dsl.input_resolution.strategies.latest_blessed_model_strategy import LatestBlessedModelStrategy
from tfx.dsl.input_resolution.strategies.span_range_strategy import SpanRangeStrategy
from tfx.orchestration import metadata
from tfx.orchestration import pipeline as tfx_pipeline
from tfx.proto import example_gen_pb2, range_config_pb2, trainer_pb2
from tfx.types import Channel, standard_artifacts

from components import baselines
from components.baselines import LatestBlessedOtherModelStrategy, LatestOtherAcceptedStatisticsStrategy
from components.data_gate.component import AcceptedStatistics, DataGate, FrozenSchemaGen
from components.evaluator.component import ColumnarEvaluator
from components.example_gen.component import ColumnarCsvExampleGen, ParquetExampleGen
from components.quantizer.component import QuantizingPusher
from components.statistics_gen.component import StatisticsGen, TfdvStatisticsGen
from components.trainer.component import Trainer
from components.transform.component import Transform
from config import METRICS, PARQUET_PAYLOAD, TASK_METRICS, TFXP_TRANSFORM, PipelineConfig
from pipeline import nodes
from preprocessing.transform import transformed_name
from serving.layout import EXAMPLES_SIGNATURE

PREPROCESSING_FN = "preprocessing.transform.preprocessing_fn"
RUN_FN = "trainer.task.run_fn"

def eval_config(config: PipelineConfig) -> tfma.EvalConfig:
    """TFMA config: the task's metrics, with a value threshold and a change threshold on the gating metric of
    the overall slice, and the config's slices (reported, not gated)."""
    ev = config.evaluation
    direction = (tfma.MetricDirection.HIGHER_IS_BETTER if ev.higher_is_better
                 else tfma.MetricDirection.LOWER_IS_BETTER)
    threshold = tfma.MetricThreshold(
        # Ignored when no baseline (latest blessed model) exists yet: the first run.
        change_threshold=tfma.GenericChangeThreshold(
            direction=direction,
            absolute={"value": (-ev.max_regression - 1e-10) if ev.higher_is_better
                      else (ev.max_regression + 1e-10)}))
    # Without `evaluation.threshold` any finite value passes the value check, so the first run (which has no
    # baseline, so no change threshold) is blessed; later runs must not regress. With no threshold at all TFMA
    # would report `missing_thresholds` and never bless a first model (tfx#5148). A NaN metric still fails.
    bound = "lower_bound" if ev.higher_is_better else "upper_bound"
    value = ev.threshold if ev.threshold is not None else (-math.inf if ev.higher_is_better else math.inf)
    threshold.value_threshold.CopyFrom(tfma.GenericValueThreshold(**{bound: {"value": value}}))
    metrics = [tfma.MetricConfig(class_name="ExampleCount")]
    for name in dict.fromkeys(TASK_METRICS[config.label.task] + (ev.metric,)):
        # per_slice_thresholds on the overall slice: a plain `threshold` would gate every slice.
        metrics.append(tfma.MetricConfig(
            class_name=METRICS[name].keras_class,
            per_slice_thresholds=[tfma.PerSliceMetricThreshold(slicing_specs=[tfma.SlicingSpec()],
                                                               threshold=threshold)] if name == ev.metric else []))
    return tfma.EvalConfig(
        model_specs=[tfma.ModelSpec(signature_name=EXAMPLES_SIGNATURE,
                                    label_key=transformed_name(config.label.column),
                                    preprocessing_function_names=["transform_features"])],
        slicing_specs=[tfma.SlicingSpec()] + [tfma.SlicingSpec(feature_keys=[name]) for name in ev.slices],
        metrics_specs=[tfma.MetricsSpec(metrics=metrics)])


def transform_component(config: PipelineConfig) -> type:
    """transform.executor: "tfxp" (default), TFX's Transform with components/transform's executor; "tfx",
    TFX's own."""
    return Transform if config.transform.executor == TFXP_TRANSFORM else TfxTransform


def statistics_component(config: PipelineConfig) -> type:
    """validation.one_pass_statistics: true (default), StatisticsGen with each split's statistics in one Beam
    combine; false, TFDV's GenerateStatistics per split as TFX runs it."""
    return StatisticsGen if config.validation.one_pass_statistics else TfdvStatisticsGen


def create_pipeline(config: PipelineConfig) -> tfx_pipeline.Pipeline:
    output_config = example_gen_pb2.Output(split_config=example_gen_pb2.SplitConfig(splits=[
        example_gen_pb2.SplitConfig.Split(name=name, hash_buckets=buckets) for name, buckets in config.data.split]))
    spans = config.data.pattern is not None
    # With spans, each run ingests the latest span (ExampleGen's default range); Transform and Trainer get a
    # window. Without, ExampleGen reads every file in the directory (its default input config).
    example_gen = _example_gen(config, output_config, example_gen_pb2.Input(splits=[
        example_gen_pb2.Input.Split(name="single_split", pattern=config.data.pattern)]) if spans else None)
    statistics_gen = statistics_component(config)(examples=example_gen.outputs["examples"]).with_id(
        nodes.STATISTICS_GEN)
    validation = config.validation
    if validation.schema_file:
        schema_gen = FrozenSchemaGen(schema_file=validation.schema_file,
                                     schema_fingerprint=validation.schema_fingerprint)
    else:
        # Features stay VarLen (sparse) so that missing cells are legal; preprocessing fills them explicitly.
        schema_gen = SchemaGen(statistics=statistics_gen.outputs["statistics"], infer_feature_shape=False)
    example_validator = ExampleValidator(statistics=statistics_gen.outputs["statistics"],
                                         schema=schema_gen.outputs["schema"])
    custom_config = config.to_custom_config().to_json()
    statistics_resolver = _baseline_resolver(
        config, "latest_accepted_statistics_resolver", statistics_gen.outputs["statistics"],
        LatestArtifactStrategy, LatestOtherAcceptedStatisticsStrategy,
        **{baselines.STATISTICS: Channel(type=AcceptedStatistics)})
    data_gate = DataGate(
        statistics=statistics_gen.outputs["statistics"], schema=schema_gen.outputs["schema"],
        anomalies=example_validator.outputs["anomalies"],
        baseline_statistics=statistics_resolver.outputs[baselines.STATISTICS],
        custom_config=custom_config, drift=validation.drift, skew=validation.skew)
    extra_nodes: List = []
    training_examples = example_gen.outputs["examples"]
    if config.analyzer_cache:  # with spans
        # The previous run's analyzer cache: analyzers of spans seen before are not computed again.
        analyzer_cache = Resolver(
            strategy_class=LatestArtifactStrategy,
            cache=Channel(type=standard_artifacts.TransformCache)).with_id("latest_transform_cache_resolver")
        extra_nodes.append(analyzer_cache)
        transform_cache = {"analyzer_cache": analyzer_cache.outputs["cache"], "disable_analyzer_cache": False}
        if config.data.rolling_window > 1:
            # The latest `rolling_window` spans ExampleGen has ingested in any run, this run's included: a
            # channel by producer id reads ExampleGen's history (its output channel would hold only this
            # run's span), and the explicit edge makes the resolver wait for this run's ExampleGen.
            span_window = Resolver(
                strategy_class=SpanRangeStrategy,
                config={"range_config": range_config_pb2.RangeConfig(
                    rolling_range=range_config_pb2.RollingRange(num_spans=config.data.rolling_window))},
                examples=Channel(type=standard_artifacts.Examples, producer_component_id=example_gen.id,
                                 output_key="examples")).with_id("span_window_resolver")
            span_window.add_upstream_node(example_gen)
            extra_nodes.append(span_window)
            training_examples = span_window.outputs["examples"]
    else:
        # The analyzer cache pays off only when later runs analyze some of the same input spans again;
        # writing it cost ~2 s per run here.
        transform_cache = {"disable_analyzer_cache": True}
    transform = transform_component(config)(
        examples=training_examples, schema=schema_gen.outputs["schema"],
        preprocessing_fn=PREPROCESSING_FN, custom_config=custom_config,
        # By default (transform.statistics: false) no pre- and post-transform statistics: StatisticsGen
        # already profiles the raw data, and they cost two more TFDV passes inside Transform.
        disable_statistics=not config.transform.statistics,
        # By default (transform.materialize: false) no transformed splits: the Trainer applies the transform
        # graph to the raw examples it reads (trainer/task.py). Writing them took half of Transform's time
        # (150k rows: 20.2 s with, 12.5 s without).
        materialize=config.transform.materialize,
        # transform.tf_compat_v1 (default: on): the preprocessing_fn traced into TF1 graphs (plain graph
        # traces; two with tfxp's executor) instead of nine times as TF2 functions (15k rows: Transform
        # 12-15 s -> 8-9 s).
        force_tf_compat_v1=config.transform.tf_compat_v1, **transform_cache)
    # Transform reads the schema from (Frozen)SchemaGen, so that its cache key does not change when only the
    # gate re-ran; this edge makes it wait for the gate, which fails the run on anomalies.
    transform.add_upstream_node(data_gate)
    blessed_models = {baselines.MODEL: Channel(type=standard_artifacts.Model),
                      baselines.MODEL_BLESSING: Channel(type=standard_artifacts.ModelBlessing)}
    # Warm start: run_fn loads the latest blessed model's weights when the layer shapes match
    # (trainer/task.py). That resolver runs before the Trainer, so it cannot exclude the Trainer's model.
    warm_start_resolver = Resolver(strategy_class=LatestBlessedModelStrategy, **blessed_models).with_id(
        "warm_start_model_resolver") if config.training.warm_start else None
    trainer = _trainer(config)(
        run_fn=RUN_FN,
        examples=training_examples,
        transform_graph=transform.outputs["transform_graph"],
        schema=schema_gen.outputs["schema"],
        base_model=warm_start_resolver.outputs[baselines.MODEL] if warm_start_resolver else None,
        train_args=trainer_pb2.TrainArgs(num_steps=config.training.train_steps),
        eval_args=trainer_pb2.EvalArgs(num_steps=config.training.eval_steps),
        custom_config=dict(custom_config, **_vertex_training_args(config))).with_id(nodes.TRAINER)
    model_resolver = _baseline_resolver(config, "latest_blessed_model_resolver", trainer.outputs["model"],
                                        LatestBlessedModelStrategy, LatestBlessedOtherModelStrategy,
                                        **blessed_models)
    evaluator = _evaluator(config, examples=example_gen.outputs["examples"], example_splits=["eval"],
                           model=trainer.outputs["model"], baseline_model=model_resolver.outputs[baselines.MODEL],
                           eval_config=eval_config(config))
    pusher = QuantizingPusher(
        model=trainer.outputs["model"],
        model_blessing=evaluator.outputs["blessing"],
        transform_graph=transform.outputs["transform_graph"],
        examples=example_gen.outputs["examples"],
        serving_dir=config.serving_dir,
        float_serving_dir=config.float_serving_dir,
        method=config.quantization.method,
        on_gate_failure=config.quantization.on_gate_failure,
        gates=dict(config.quantization.gates),
        metric=config.evaluation.metric,
        custom_config=custom_config,
    ).with_id(nodes.PUSHER)

    components: List = [example_gen, statistics_gen, schema_gen, example_validator, statistics_resolver,
                        data_gate, *extra_nodes, transform, *([warm_start_resolver] if warm_start_resolver else []),
                        trainer, model_resolver, evaluator, pusher]
    return tfx_pipeline.Pipeline(
        pipeline_name=config.name,
        pipeline_root=config.pipeline_root,
        components=components,
        enable_cache=config.enable_cache,
        # Vertex AI / Kubeflow bring their own metadata store.
        metadata_connection_config=(metadata.sqlite_metadata_connection_config(config.metadata_path)
                                    if config.is_local else None),
        beam_pipeline_args=config.beam.pipeline_args())


def _baseline_resolver(config: PipelineConfig, node_id: str, candidate, cloud_strategy, local_strategy,
                       **baseline_channels) -> Resolver:
    """The latest baseline other than this run's candidate (components/baselines.py). Kubeflow V2 / Vertex
    compile only TFX's LatestArtifactStrategy and LatestBlessedModelStrategy: compiled pipelines use those,
    without the candidate (where a re-run of the same data compares a model with itself)."""
    if not config.is_local:
        return Resolver(strategy_class=cloud_strategy, **baseline_channels).with_id(node_id)
    return Resolver(strategy_class=local_strategy, **baseline_channels,
                    **{baselines.CANDIDATE: candidate}).with_id(node_id)


def _example_gen(config: PipelineConfig, output_config, input_config):
    """The ExampleGen of the data format: CSV (columnar or TFX's), Parquet, tf.Example TFRecords
    (ImportExampleGen) or a BigQuery query (BigQueryExampleGen, for compiled pipelines)."""
    data = config.data
    if data.format == "bigquery":
        from tfx.extensions.google_cloud_big_query.example_gen.component import BigQueryExampleGen

        return BigQueryExampleGen(query=data.query, output_config=output_config).with_id(nodes.EXAMPLE_GEN)
    component = {"csv": ColumnarCsvExampleGen if data.reader == "columnar" else CsvExampleGen,
                 "parquet": ParquetExampleGen, "tfrecord": ImportExampleGen}[data.format]
    payload = {}
    if data.payload == PARQUET_PAYLOAD:  # config allows it with the columnar ExampleGens only
        payload = dict(output_data_format=example_gen_pb2.FORMAT_PARQUET,
                       output_file_format=example_gen_pb2.FILE_FORMAT_PARQUET)
    return component(input_base=data.path, output_config=output_config, input_config=input_config,
                     **payload).with_id(nodes.EXAMPLE_GEN)


def _evaluator(config: PipelineConfig, **inputs):
    """The columnar Evaluator (batch-at-a-time metrics, TFMA's outputs and blessing), or TFX's own."""
    if config.evaluation.evaluator == "tfma":
        # Imported only here: its executor module imports TFMA's evaluators and metrics, and TFX's launcher
        # imports the executor of every node in the DAG (pipeline/deferred_imports.py).
        from tfx.components import Evaluator

        return Evaluator(**inputs).with_id(nodes.EVALUATOR)
    return ColumnarEvaluator(task=config.label.task, **inputs).with_id(nodes.EVALUATOR)


def _on_vertex_training(config: PipelineConfig) -> bool:
    return not config.is_local and config.cloud is not None and config.cloud.training is not None


def _trainer(config: PipelineConfig):
    """The stock Trainer, or, when the config asks for Vertex AI Training in a compiled pipeline, TFX's
    Google Cloud Trainer (same run_fn, run as a Vertex AI custom job)."""
    if not _on_vertex_training(config):
        return Trainer
    from components.trainer.vertex import VertexTrainer

    return VertexTrainer


def _vertex_training_args(config: PipelineConfig):
    if not _on_vertex_training(config):
        return {}
    from tfx.extensions.google_cloud_ai_platform import constants
    from tfx.extensions.google_cloud_ai_platform.trainer import executor as vertex_trainer

    cloud, training = config.cloud, config.cloud.training
    machine = {"machine_type": training.machine_type}
    if training.accelerator_type:
        machine.update(accelerator_type=training.accelerator_type, accelerator_count=training.accelerator_count)
    pools = [{"machine_spec": machine, "replica_count": 1, "container_spec": {"image_uri": cloud.image}}]
    if training.replica_count > 1:  # the chief, then the workers: Vertex sets TF_CONFIG for all of them
        pools.append(dict(pools[0], replica_count=training.replica_count - 1))
    args = {"project": cloud.project, "worker_pool_specs": pools}
    if cloud.service_account:
        args["service_account"] = cloud.service_account
    return {constants.ENABLE_VERTEX_KEY: True, constants.VERTEX_REGION_KEY: cloud.region,
            vertex_trainer.TRAINING_ARGS_KEY: args}


def pipeline_node(config: PipelineConfig, node_id: str) -> Any:
    """The node with id `node_id` (pipeline/nodes.py) of the pipeline for `config`: its class, exec properties
    and executor, e.g. for running Transform's executor as the pipeline runs it (bench/floors,
    tests/transform_executor_test.py) or checking what a setting picks (tests/config_test.py)."""
    [node] = [component for component in create_pipeline(config).components if component.id == node_id]
    return node
