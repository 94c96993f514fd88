"""The typed config: every record and named constant of a tfxp config, and nothing that reads files.

The bottom of tfxp's dependencies: imported by every package, importing nothing of tfxp's but config/.
Loading and validation are in config/load.py, the cloud translation in config/cloud.py, the CSV probe in
config/csv_probe.py, spans in config/spans.py.
"""
from __future__ import annotations

import dataclasses
import os
from typing import Any, Dict, List, Mapping, Optional, Tuple

TASKS = ("binary", "multiclass", "regression")
TREATMENTS = ("zscore", "minmax", "vocab", "passthrough")
NUMERIC_TREATMENTS = ("zscore", "minmax", "passthrough")
# csv, parquet and tfrecord (gzipped or plain tf.train.Example TFRecords) are directories of files, local or
# remote; bigquery is a query, for compiled (Vertex/Kubeflow) pipelines.
DATA_FORMATS = ("csv", "parquet", "tfrecord", "bigquery")
FILE_FORMATS = ("csv", "parquet", "tfrecord")
# How CSV files become tf.Examples: "columnar" (components/example_gen: pyarrow blocks, C++ encoding; the
# same examples and splits) or "stock" (TFX's CsvExampleGen, one Python tf.Example per row).
CSV_READERS = ("columnar", "stock")
# What ExampleGen writes, the Examples artifact's payload: "tf_example" (gzipped TFRecords of tf.Examples,
# which every TFX component reads) or "parquet" (Parquet files of list columns, written by the columnar
# ExampleGens: StatisticsGen and Transform read it as it is; the Trainer, the columnar Evaluator and the
# pusher's gates read it through preprocessing/payload.py; TFX's own Evaluator cannot).
PAYLOADS = ("tf_example", "parquet")
TF_EXAMPLE_PAYLOAD, PARQUET_PAYLOAD = PAYLOADS
# How the Evaluator computes metrics: "columnar" (components/evaluator: a batch at a time with numpy; TFMA's
# config, validation, output files and blessing) or "tfma" (TFX's Evaluator, one example at a time).
EVALUATORS = ("columnar", "tfma")
# Transform's executor: "tfxp" (components/transform: TFX's, with the preprocessing_fn traced once for the
# inspections before the analysis, and a Parquet payload read without tfx-bsl's per-row telemetry) or "tfx".
TRANSFORM_EXECUTORS = ("tfxp", "tfx")
TFXP_TRANSFORM, TFX_TRANSFORM = TRANSFORM_EXECUTORS
RUNNING_MODES = ("in_memory", "multi_threading", "multi_processing")
PICKLE_LIBRARIES = ("cloudpickle", "dill", "default")
LOCAL_TARGET = "local"  # LocalDagRunner
CLOUD_TARGETS = ("vertex", "kubeflow")


@dataclasses.dataclass(frozen=True)
class Metric:
    """An eval metric: TFMA computes `keras_class` in the Evaluator, the quantizing pusher the same class for
    its metric gate, and the summary for the constant predictor."""
    name: str
    task: str
    higher_is_better: bool
    keras_class: str


METRICS: Dict[str, Metric] = {m.name: m for m in (
    Metric("binary_accuracy", "binary", True, "BinaryAccuracy"),
    Metric("auc", "binary", True, "AUC"),
    Metric("sparse_categorical_accuracy", "multiclass", True, "SparseCategoricalAccuracy"),
    Metric("mean_squared_error", "regression", False, "MeanSquaredError"),
    Metric("mean_absolute_error", "regression", False, "MeanAbsoluteError"),
)}
# Per task: the metrics the Evaluator computes, the first being the default gating metric.
TASK_METRICS: Dict[str, Tuple[str, ...]] = {
    "binary": ("binary_accuracy", "auc"),
    "multiclass": ("sparse_categorical_accuracy",),
    "regression": ("mean_squared_error", "mean_absolute_error"),
}


def is_remote(path: str) -> bool:
    """gs://... and other filesystems that TensorFlow's gfile reads, rather than this machine's."""
    return "://" in path


@dataclasses.dataclass(frozen=True)
class DataConfig:
    path: str  # resolved directory holding the data files
    format: str = "csv"
    split: Tuple[Tuple[str, int], ...] = (("train", 2), ("eval", 1))
    # Spans (config/spans.py): files under `path` matching this pattern with {SPAN} or {YYYY}-{MM}-{DD};
    # each run ingests the latest span and trains on the latest `rolling_window` spans. None: every file
    # directly in `path`, one dataset.
    pattern: Optional[str] = None
    rolling_window: int = 1
    reader: str = "columnar"  # CSV_READERS
    payload: str = TF_EXAMPLE_PAYLOAD  # PAYLOADS
    query: Optional[str] = None  # format bigquery: the SQL query whose rows are the examples

    def latest(self) -> Tuple[Optional[int], List[str]]:
        """(span, files) a run ingests: the latest span and its files, or (None, every file in the directory)."""
        from config.csv_probe import csv_files
        from config.spans import list_spans

        if self.pattern is None:
            return None, csv_files(self.path)
        spans = list_spans(self.path, self.pattern)
        return (max(spans), spans[max(spans)]) if spans else (None, [])

    def files(self) -> List[str]:
        return self.latest()[1]

    def glob(self) -> str:
        """A glob of every file the pipeline reads over time: every span's files with spans (ExampleGen reads
        them one span a run), else every file in the directory (ExampleGen's default input pattern)."""
        from config.spans import files_glob

        return os.path.join(self.path, files_glob(self.pattern) if self.pattern is not None else "*")


@dataclasses.dataclass(frozen=True)
class LabelConfig:
    column: str
    task: str


@dataclasses.dataclass(frozen=True)
class FeatureConfig:
    name: str
    treatment: str
    # Value used for a missing numeric cell: "mean" (of the training split) or a number.
    fill: Any = "mean"
    top_k: int = 1000  # vocab only
    oov_buckets: int = 1  # vocab only


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    width: int = 64
    depth: int = 2
    learning_rate: float = 0.005


@dataclasses.dataclass(frozen=True)
class TransformConfig:
    # Write the transformed splits, as TFX's Transform does by default. tfxp's Trainer transforms the raw
    # batches it reads itself, so nothing in tfxp reads them: they are for other consumers.
    materialize: bool = False
    # TFX Transform's pre- and post-transform statistics (TFX's default: on); StatisticsGen already profiles
    # the raw data.
    statistics: bool = False
    # Trace the preprocessing_fn into tf.compat.v1 graphs (TFX's force_tf_compat_v1; five plain traces)
    # instead of nine times as TF2 functions (TFX's default), ~5 s less per Transform here. The transform graph is then
    # a TF1 SavedModel, which the Trainer and the serving model load inside TF2 as usual.
    tf_compat_v1: bool = True
    # Count vocabulary tokens per batch in the graph (every token weighted 1.0; the same vocabularies), instead
    # of tf.Transform's one Beam element per token (1M taxi rows: 4.6M elements, ~6 s).
    batch_vocabulary_counts: bool = True
    # Analyze every vocabulary in one pass (preprocessing/vocabularies.py: the same files, 26 Beam stages for the
    # taxi Transform instead of 94). Needs batch_vocabulary_counts; not with spans, where tf.Transform's
    # analyzer cache keeps each per-vocabulary analyzer's accumulators per span (PipelineConfig.analyzer_cache).
    one_pass_vocabularies: bool = True
    executor: str = TFXP_TRANSFORM  # one of TRANSFORM_EXECUTORS


@dataclasses.dataclass(frozen=True)
class TrainingConfig:
    train_steps: int = 500
    eval_steps: int = 50
    batch_size_per_replica: int = 128
    # Start from the latest blessed model's weights when its layer shapes match (default: on with spans).
    warm_start: bool = False
    # Reproducible training: seeds Keras (weights, dropout), the input shuffle and TF's op determinism, so the
    # same data and config train the same model on the same machine. None: a fresh random start each run.
    seed: Optional[int] = None


@dataclasses.dataclass(frozen=True)
class EvaluationConfig:
    metric: str
    higher_is_better: bool
    # Value threshold: a candidate must reach this (lower bound if higher is better, else upper bound).
    threshold: Optional[float]
    # Change threshold vs the latest blessed model: how much worse the candidate may be (absolute, >= 0).
    max_regression: float = 0.0
    evaluator: str = "columnar"  # one of EVALUATORS
    # Columns to slice the eval metrics by (one TFMA slicing spec per column, beside the overall slice). The
    # thresholds gate the overall slice only; the slices are reported, weakest first.
    slices: Tuple[str, ...] = ()


# Method -> how many times smaller its kernels would be without scales (float32 bytes / stored bytes).
IDEAL_SIZE_RATIO = {"int8": 4.0, "float16": 2.0, "dynamic_int8": 4.0, "static_int8": 4.0}
QUANTIZATION_METHODS = tuple(IDEAL_SIZE_RATIO)
# Methods whose kernels are dequantized once, when the SavedModel loads: serving runs float MatMuls.
LOAD_TIME_METHODS = ("int8", "float16")
# Default min_size_ratio: this share of the method's ideal ratio (int8: 3.0, float16: 1.5). The kernels of
# every model measured, from wine (~4 KB) to taxi, quantize to 3.5-3.9x with int8 (README, "Quantized push");
# a ratio below 3.0 means layers were left unquantized.
SIZE_GATE_SHARE_OF_IDEAL = 0.75
# What the pusher does with a blessed model whose quantized form fails a gate (or cannot be made).
ON_GATE_FAILURE = ("push_float", "push_nothing")


def default_gates(method: str) -> Tuple[Tuple[str, Optional[float]], ...]:
    """components.quantizer.gates.Gates fields and their defaults for a method; None disables a gate."""
    return (("max_metric_drop", 0.005), ("max_abs_prediction_diff", 0.05), ("max_label_flip_rate", 0.01),
            ("min_size_ratio", SIZE_GATE_SHARE_OF_IDEAL * IDEAL_SIZE_RATIO[method]), ("max_latency_ratio", 1.10))


@dataclasses.dataclass(frozen=True)
class QuantizationConfig:
    method: str = "int8"
    push_float: bool = True  # also push the float model to float_serving_dir, same version
    on_gate_failure: str = "push_float"
    gates: Tuple[Tuple[str, Optional[float]], ...] = default_gates("int8")


@dataclasses.dataclass(frozen=True)
class ValidationConfig:
    """Data validation: the frozen schema, per-feature drift/skew thresholds, and how `tfxp schema freeze`
    turns observed statistics into a reviewed schema."""
    # Frozen schema (text proto) imported by ImportSchemaGen; None: SchemaGen infers it on every run.
    schema_file: Optional[str] = None
    # sha256 of the schema file: ImportSchemaGen's cache key has only the path, so edits must change this.
    schema_fingerprint: str = ""
    # feature -> threshold: L-infinity distance (vocab features) or Jensen-Shannon divergence (numeric).
    drift: Tuple[Tuple[str, float], ...] = ()  # this run's training data vs the last data that passed the gate
    skew: Tuple[Tuple[str, float], ...] = ()  # training split vs eval split
    # `tfxp schema freeze` settings:
    range_margin: float = 0.1  # numeric domains widened by this fraction of the observed range on each side
    max_new_category_fraction: float = 0.01  # share of values outside a frozen vocabulary that is tolerated
    max_missing_increase: float = 0.05  # missing-cell fraction may exceed the frozen one by this much
    # StatisticsGen: each split's statistics in one Beam combine (components/statistics_gen/one_pass.py: TFDV's
    # generators, the same file); false: TFDV's GenerateStatistics as TFX runs it (~22 Beam stages per split).
    one_pass_statistics: bool = True


@dataclasses.dataclass(frozen=True)
class DataflowConfig:
    """Beam on Dataflow for every Beam-based component of a compiled (Vertex/Kubeflow) pipeline."""
    machine_type: str = "n1-standard-4"
    max_num_workers: int = 4
    disk_size_gb: Optional[int] = None
    temp_location: Optional[str] = None  # default <cloud.pipeline_root>/tmp
    # How workers get tfxp: "image" runs them in cloud.image (--sdk_container_image); "setup_file" installs
    # this package from its setup.py in the image (/tfxp/setup.py) on Beam's default worker image.
    worker_code: str = "image"
    extra_args: Tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class VertexTrainingConfig:
    """The Trainer as a Vertex AI custom training job (TF_CONFIG then names the workers)."""
    machine_type: str = "n1-standard-8"
    accelerator_type: Optional[str] = None  # e.g. NVIDIA_TESLA_T4
    accelerator_count: int = 0
    replica_count: int = 1  # > 1: MultiWorkerMirroredStrategy


@dataclasses.dataclass(frozen=True)
class CloudConfig:
    project: str
    region: str
    pipeline_root: str  # gs://...
    image: str  # the pipeline image (Dockerfile): every component runs in it
    data_path: Optional[str]  # gs://... with the same layout as data.path (and data.pattern); not for bigquery
    serving_dir: str  # gs://...
    service_account: Optional[str] = None
    dataflow: DataflowConfig = DataflowConfig()
    training: Optional[VertexTrainingConfig] = None
    image_workdir: str = "/tfxp"  # where the Dockerfile puts this repository


@dataclasses.dataclass(frozen=True)
class BeamConfig:
    direct_running_mode: str = "in_memory"
    direct_num_workers: int = 1
    pickle_library: str = "cloudpickle"
    extra_args: Tuple[str, ...] = ()
    # This package's setup.py: remote Beam workers install tfxp from it, and TFX then skips building
    # an ephemeral tfx sdist before every Beam component.
    setup_file: Optional[str] = None
    # Set by for_cloud(): the complete DataflowRunner arguments, used instead of the DirectRunner ones.
    dataflow_args: Tuple[str, ...] = ()

    @property
    def payloads_stay_in_process(self) -> bool:
        """Whether a local run processes every Beam bundle in its own process, so that pickled payloads never
        travel: the DirectRunner in in_memory or multi_threading mode, with no Dataflow arguments and no extra
        argument that picks another runner, running mode or worker environment."""
        if self.dataflow_args or self.direct_running_mode == "multi_processing":
            return False
        return not any(arg.startswith(("--runner", "--direct_running_mode", "--environment_type"))
                       for arg in self.extra_args)

    def pipeline_args(self) -> List[str]:
        if self.dataflow_args:
            return list(self.dataflow_args)
        args = [f"--direct_running_mode={self.direct_running_mode}",
                f"--direct_num_workers={self.direct_num_workers}",
                f"--pickle_library={self.pickle_library}"]
        if self.setup_file and not any(a.startswith("--setup_file") for a in self.extra_args):
            args.append(f"--setup_file={self.setup_file}")
        return args + list(self.extra_args)


@dataclasses.dataclass(frozen=True)
class CustomConfig:
    """The part of the config the components' code reads, passed through TFX as JSON (`custom_config`) and
    read back into these records with from_json."""
    label: LabelConfig
    features: Tuple[FeatureConfig, ...]
    model: ModelConfig
    training: TrainingConfig
    code_fingerprint: str = ""
    batch_vocabulary_counts: bool = TransformConfig.batch_vocabulary_counts  # transform.batch_vocabulary_counts
    # transform.one_pass_vocabularies where it applies (PipelineConfig.to_custom_config)
    one_pass_vocabularies: bool = False

    def to_json(self) -> Dict[str, Any]:
        return {"label": dataclasses.asdict(self.label), "features": [dataclasses.asdict(f) for f in self.features],
                "model": dataclasses.asdict(self.model), "training": dataclasses.asdict(self.training),
                "code_fingerprint": self.code_fingerprint, "batch_vocabulary_counts": self.batch_vocabulary_counts,
                "one_pass_vocabularies": self.one_pass_vocabularies}

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> "CustomConfig":
        """From to_json's output; other keys (the Vertex Trainer's arguments) are ignored."""
        return cls(label=LabelConfig(**raw["label"]), features=tuple(FeatureConfig(**f) for f in raw["features"]),
                   model=ModelConfig(**raw["model"]), training=TrainingConfig(**raw["training"]),
                   code_fingerprint=raw.get("code_fingerprint", ""),
                   batch_vocabulary_counts=raw.get("batch_vocabulary_counts", TransformConfig.batch_vocabulary_counts),
                   one_pass_vocabularies=raw.get("one_pass_vocabularies", cls.one_pass_vocabularies))

    def feature_names(self) -> List[str]:
        return [f.name for f in self.features]


@dataclasses.dataclass(frozen=True)
class ModelCardConfig:
    """The optional `model_card:` section: what a run cannot measure about its model. The run report's model
    card (and model_card.md beside the pushed model) adds what it can: data, features, metrics, measured
    limitations."""
    overview: str = ""
    intended_use: str = ""
    owners: Tuple[str, ...] = ()
    limitations: Tuple[str, ...] = ()  # known to the authors; the report appends the measured ones
    ethical_considerations: str = ""


@dataclasses.dataclass(frozen=True)
class PipelineConfig:
    name: str
    source: str  # the YAML file this came from
    data: DataConfig
    label: LabelConfig
    features: Tuple[FeatureConfig, ...]
    model: ModelConfig
    training: TrainingConfig
    evaluation: EvaluationConfig
    pipeline_root: str
    serving_dir: str
    metadata_path: str
    beam: BeamConfig
    float_serving_dir: str = ""
    quantization: QuantizationConfig = QuantizationConfig()
    validation: ValidationConfig = ValidationConfig()
    transform: TransformConfig = TransformConfig()
    cloud: Optional[CloudConfig] = None
    model_card: ModelCardConfig = ModelCardConfig()
    report_file: str = ""  # the run report (HTML) every local run writes; default beside the pipeline root
    # LOCAL_TARGET (LocalDagRunner), or "vertex" / "kubeflow" for a config made by for_cloud().
    target: str = LOCAL_TARGET
    enable_cache: bool = True
    # Hash of the code Transform and Trainer run (config/load.py TRAINING_CODE): part of their custom_config,
    # so that a code change invalidates their cached results (functions are referenced by dotted path).
    code_fingerprint: str = ""

    def with_overrides(self, pipeline_root: Optional[str] = None,
                       serving_dir: Optional[str] = None) -> "PipelineConfig":
        """Command-line overrides; the metadata store follows the pipeline root unless set explicitly."""
        changes: Dict[str, Any] = {}
        if pipeline_root:
            changes["pipeline_root"] = os.path.abspath(pipeline_root)
            if self.metadata_path == default_metadata_path(self.pipeline_root):
                changes["metadata_path"] = default_metadata_path(changes["pipeline_root"])
            if self.report_file == default_report_file(self.pipeline_root):
                changes["report_file"] = default_report_file(changes["pipeline_root"])
        if serving_dir:
            changes["serving_dir"] = os.path.abspath(serving_dir)
            if self.float_serving_dir == default_float_serving_dir(self.serving_dir):
                changes["float_serving_dir"] = default_float_serving_dir(changes["serving_dir"])
        return dataclasses.replace(self, **changes)

    @property
    def is_local(self) -> bool:
        return self.target == LOCAL_TARGET

    def for_cloud(self, target: str) -> "PipelineConfig":
        """The same pipeline for Vertex AI Pipelines / Kubeflow (config/cloud.py)."""
        from config.cloud import for_cloud

        return for_cloud(self, target)

    def to_custom_config(self) -> "CustomConfig":
        """What Transform, Trainer, DataGate and the pusher receive as `custom_config` (as JSON)."""
        return CustomConfig(label=self.label, features=self.features, model=self.model, training=self.training,
                            code_fingerprint=self.code_fingerprint,
                            batch_vocabulary_counts=self.transform.batch_vocabulary_counts,
                            one_pass_vocabularies=(self.transform.one_pass_vocabularies
                                                   and self.transform.batch_vocabulary_counts
                                                   and not self.analyzer_cache))

    @property
    def analyzer_cache(self) -> bool:
        """Whether Transform keeps tf.Transform's analyzer cache across runs: with spans only (a later run
        analyzes some of the same spans again; without spans writing it cost ~2 s a run for nothing)."""
        return self.data.pattern is not None


def default_metadata_path(pipeline_root: str) -> str:
    return os.path.join(pipeline_root, "metadata.sqlite")


def default_report_file(pipeline_root: str) -> str:
    """runs/<name>/report.html for the default runs/<name>/pipeline_root."""
    return os.path.join(os.path.dirname(pipeline_root.rstrip("/")), "report.html")


def default_float_serving_dir(serving_dir: str) -> str:
    """Beside the serving dir, not inside it: TF Serving would take a float version there for the newest."""
    return serving_dir.rstrip("/") + "_float"
