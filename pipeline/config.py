"""Typed tfxp configuration: loaded from one YAML file, validated once, then the single source of truth.

Nothing here imports TensorFlow or TFX: `tfxp --help` and config errors stay fast.

Relative paths in a config file are resolved against the directory that holds the file. A data path of
the form ``package://PKG/sub/dir`` names a directory inside an installed Python package (for example the
Chicago taxi data that ships in the ``tfx`` wheel) and is resolved at run time.
"""
from __future__ import annotations

import csv
import dataclasses
import hashlib
import importlib.util
import os
import re
from typing import Any, Dict, List, Mapping, Optional, Tuple

import yaml

TASKS = ("binary", "multiclass", "regression")
TREATMENTS = ("zscore", "minmax", "vocab", "passthrough")
NUMERIC_TREATMENTS = ("zscore", "minmax", "passthrough")
DATA_FORMATS = ("csv",)
RUNNING_MODES = ("in_memory", "multi_threading", "multi_processing")
PICKLE_LIBRARIES = ("cloudpickle", "dill", "default")

# Default metric per task: (TFMA/Keras metric name, higher_is_better).
DEFAULT_METRIC = {
    "binary": "binary_accuracy",
    "multiclass": "sparse_categorical_accuracy",
    "regression": "mean_squared_error",
}
# metric name -> (task, higher_is_better, Keras metric class): TFMA computes that class in the Evaluator,
# and the quantizing pusher computes the same one for its metric gate.
METRICS = {
    "binary_accuracy": ("binary", True, "BinaryAccuracy"),
    "auc": ("binary", True, "AUC"),
    "sparse_categorical_accuracy": ("multiclass", True, "SparseCategoricalAccuracy"),
    "mean_squared_error": ("regression", False, "MeanSquaredError"),
    "mean_absolute_error": ("regression", False, "MeanAbsoluteError"),
}
# How many data rows are read at config time to check column types.
TYPE_SNIFF_ROWS = 2000


class ConfigError(ValueError):
    """A config problem, named by file and key."""

    def __init__(self, path: str, key: str, message: str):
        self.path, self.key = path, key
        super().__init__(f"{path}: {key}: {message}")


@dataclasses.dataclass(frozen=True)
class DataConfig:
    path: str  # resolved directory holding the data files
    format: str = "csv"
    split: Tuple[Tuple[str, int], ...] = (("train", 2), ("eval", 1))
    # Spans (pipeline/spans.py): files under `path` matching this pattern with {SPAN} or {YYYY}-{MM}-{DD};
    # each run ingests the latest span and trains on the latest `rolling_window` spans. None: every file
    # directly in `path`, one dataset.
    pattern: Optional[str] = None
    rolling_window: int = 1

    def latest(self) -> Tuple[Optional[int], List[str]]:
        """(span, files) a run ingests: the latest span and its files, or (None, every file in the directory)."""
        if self.pattern is None:
            return None, csv_files(self.path)
        from pipeline.spans import list_spans

        spans = list_spans(self.path, self.pattern)
        return (max(spans), spans[max(spans)]) if spans else (None, [])

    def files(self) -> List[str]:
        return self.latest()[1]


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
class TrainingConfig:
    train_steps: int = 500
    eval_steps: int = 50
    batch_size_per_replica: int = 128
    # Start from the latest blessed model's weights when its layer shapes match (default: on with spans).
    warm_start: bool = False


@dataclasses.dataclass(frozen=True)
class EvaluationConfig:
    metric: str
    higher_is_better: bool
    # Value threshold: a candidate must reach this (lower bound if higher is better, else upper bound).
    threshold: Optional[float]
    # Change threshold vs the latest blessed model: how much worse the candidate may be (absolute, >= 0).
    max_regression: float = 0.0


# Method -> how many times smaller its kernels would be without scales (float32 bytes / stored bytes).
IDEAL_SIZE_RATIO = {"int8": 4.0, "float16": 2.0, "dynamic_int8": 4.0, "static_int8": 4.0}
QUANTIZATION_METHODS = tuple(IDEAL_SIZE_RATIO)
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
    data_path: str  # gs://... with the same layout as data.path (and data.pattern)
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
    cloud: Optional[CloudConfig] = None
    # "local" (LocalDagRunner), or "vertex" / "kubeflow" for a config made by for_cloud().
    target: str = "local"
    enable_cache: bool = True
    # Hash of the preprocessing/ and trainer/ sources: part of Transform's and Trainer's exec properties so
    # that a code change invalidates their cached results (functions are referenced by dotted path).
    code_fingerprint: str = ""

    def with_overrides(self, pipeline_root: Optional[str] = None,
                       serving_dir: Optional[str] = None) -> "PipelineConfig":
        """Command-line overrides; the metadata store follows the pipeline root unless set explicitly."""
        changes: Dict[str, Any] = {}
        if pipeline_root:
            changes["pipeline_root"] = os.path.abspath(pipeline_root)
            if self.metadata_path == default_metadata_path(self.pipeline_root):
                changes["metadata_path"] = default_metadata_path(changes["pipeline_root"])
        if serving_dir:
            changes["serving_dir"] = os.path.abspath(serving_dir)
            if self.float_serving_dir == default_float_serving_dir(self.serving_dir):
                changes["float_serving_dir"] = default_float_serving_dir(changes["serving_dir"])
        return dataclasses.replace(self, **changes)

    def for_cloud(self, target: str) -> "PipelineConfig":
        """The same pipeline for Vertex AI Pipelines / Kubeflow: cloud paths, Beam on Dataflow, no local
        metadata store (the orchestrator's), the frozen schema read from the pipeline image."""
        if target not in CLOUD_TARGETS:
            raise ValueError(f"target must be one of {', '.join(CLOUD_TARGETS)}, got {target!r}")
        cloud = self.cloud
        if cloud is None:
            raise ConfigError(self.source, "cloud", "is required to compile for Vertex AI or Kubeflow")
        if self.data.rolling_window > 1:
            raise ConfigError(self.source, "data.rolling_window",
                              f"{self.data.rolling_window} spans cannot be compiled for {target}: TFX 1.16's "
                              "KubeflowV2DagRunner compiles only resolvers of the single latest artifact. Use "
                              "rolling_window: 1 there (each run trains on the newest span, warm-started from "
                              "the latest blessed model)")
        validation = self.validation
        if validation.schema_file and "://" not in validation.schema_file:
            validation = dataclasses.replace(validation, schema_file=_path_in_image(
                validation.schema_file, cloud.image_workdir, self.source))
        return dataclasses.replace(
            self, target=target, data=dataclasses.replace(self.data, path=cloud.data_path),
            pipeline_root=cloud.pipeline_root, metadata_path="", serving_dir=cloud.serving_dir,
            float_serving_dir=default_float_serving_dir(cloud.serving_dir) if self.float_serving_dir else "",
            validation=validation,
            beam=dataclasses.replace(self.beam, setup_file=None, dataflow_args=tuple(dataflow_args(cloud))))

    def to_custom_config(self) -> Dict[str, Any]:
        """The JSON-serializable part that Transform and Trainer receive as `custom_config`."""
        return {
            "label": dataclasses.asdict(self.label),
            "features": [dataclasses.asdict(f) for f in self.features],
            "model": dataclasses.asdict(self.model),
            "training": dataclasses.asdict(self.training),
            "code_fingerprint": self.code_fingerprint,
        }


CLOUD_TARGETS = ("vertex", "kubeflow")


def repo_root() -> Optional[str]:
    """The checkout holding this package (what the Dockerfile copies into the image)."""
    root = package_dir("pipeline")
    return os.path.dirname(root) if root else None


def _path_in_image(path: str, image_workdir: str, source: str) -> str:
    root = repo_root()
    relative = os.path.relpath(path, root) if root else ".."
    if relative.startswith(".."):
        raise ConfigError(source, "validation.schema", f"{path} is outside this repository, so it is not in the "
                                                       f"pipeline image: put it in the repository or on GCS")
    return f"{image_workdir.rstrip('/')}/{relative}"


def dataflow_args(cloud: CloudConfig) -> List[str]:
    """DataflowRunner options for every Beam-based component."""
    dataflow = cloud.dataflow
    args = ["--runner=DataflowRunner", f"--project={cloud.project}", f"--region={cloud.region}",
            f"--temp_location={dataflow.temp_location or cloud.pipeline_root.rstrip('/') + '/tmp'}",
            f"--machine_type={dataflow.machine_type}", f"--max_num_workers={dataflow.max_num_workers}",
            "--experiments=use_runner_v2"]
    if dataflow.disk_size_gb:
        args.append(f"--disk_size_gb={dataflow.disk_size_gb}")
    if dataflow.worker_code == "image":
        args += [f"--sdk_container_image={cloud.image}", "--sdk_location=container"]
    else:
        args.append(f"--setup_file={cloud.image_workdir.rstrip('/')}/setup.py")
    if cloud.service_account:
        args.append(f"--service_account_email={cloud.service_account}")
    return args + list(dataflow.extra_args)


def default_metadata_path(pipeline_root: str) -> str:
    return os.path.join(pipeline_root, "metadata.sqlite")


def default_float_serving_dir(serving_dir: str) -> str:
    """Beside the serving dir, not inside it: TF Serving would take a float version there for the newest."""
    return serving_dir.rstrip("/") + "_float"


# --------------------------------------------------------------------------------------------------
# Loading


class _Section:
    """Reads keys of one mapping, remembering which were used so that unknown keys are errors."""

    def __init__(self, path: str, prefix: str, raw: Any):
        self.path, self.prefix = path, prefix
        if raw is None:
            raw = {}
        if not isinstance(raw, Mapping):
            raise ConfigError(path, prefix or "<top level>", f"must be a mapping, got {type(raw).__name__}")
        self.raw = dict(raw)
        self.used: set = set()

    def key(self, name: str) -> str:
        return f"{self.prefix}.{name}" if self.prefix else name

    def error(self, name: str, message: str) -> ConfigError:
        return ConfigError(self.path, self.key(name), message)

    def get(self, name: str, kind, default: Any = dataclasses.MISSING) -> Any:
        self.used.add(name)
        if name not in self.raw or self.raw[name] is None:
            if default is dataclasses.MISSING:
                raise self.error(name, "is required")
            return default
        value = self.raw[name]
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if kind is not None and (not isinstance(value, kind) or (kind is int and isinstance(value, bool))):
            raise self.error(name, f"must be {getattr(kind, '__name__', kind)}, got {value!r}")
        return value

    def positive_int(self, name: str, default: Any = dataclasses.MISSING) -> int:
        value = self.get(name, int, default)
        if value <= 0:
            raise self.error(name, f"must be > 0, got {value}")
        return value

    def choice(self, name: str, choices, default: Any = dataclasses.MISSING) -> str:
        value = self.get(name, str, default)
        if value not in choices:
            raise self.error(name, f"must be one of {', '.join(choices)}; got {value!r}")
        return value

    def section(self, name: str) -> "_Section":
        self.used.add(name)
        return _Section(self.path, self.key(name), self.raw.get(name))

    def finish(self) -> None:
        unknown = sorted(set(self.raw) - self.used)
        if unknown:
            known = ", ".join(sorted(self.used))
            raise self.error(unknown[0], f"unknown key (known keys here: {known})")


def resolve_data_path(value: str, base_dir: str) -> str:
    """`package://pkg/sub/dir` -> directory inside an installed package; else relative to base_dir."""
    if value.startswith("package://"):
        package, _, sub = value[len("package://"):].partition("/")
        location = package_dir(package)
        if location is None:
            raise FileNotFoundError(f"package {package!r} is not installed")
        return os.path.join(location, sub)
    return _resolve_output(value, base_dir)  # gs:// and friends: checked by the pipeline when it reads them


def package_dir(package: str) -> Optional[str]:
    spec = importlib.util.find_spec(package)  # does not import the package
    return list(spec.submodule_search_locations)[0] if spec and spec.submodule_search_locations else None


def code_fingerprint(packages=("preprocessing", "trainer")) -> str:
    digest = hashlib.sha256()
    for package in packages:
        root = package_dir(package)
        for dirpath, dirnames, filenames in os.walk(root or ""):
            dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
            for name in sorted(f for f in filenames if f.endswith(".py")):
                path = os.path.join(dirpath, name)
                digest.update(os.path.relpath(path, root).encode())
                with open(path, "rb") as f:
                    digest.update(f.read())
    return digest.hexdigest()[:16]


def default_setup_file() -> Optional[str]:
    """setup.py beside the installed (editable or source) packages, if there is one."""
    root = repo_root()
    path = os.path.join(root, "setup.py") if root else None
    return path if path and os.path.isfile(path) else None


def _resolve_output(value: str, base_dir: str) -> str:
    if "://" in value:
        return value
    return os.path.normpath(os.path.join(base_dir, os.path.expanduser(value)))


def csv_files(data_dir: str) -> List[str]:
    """The files CsvExampleGen reads (its default input pattern is `*` in the input directory)."""
    return sorted(os.path.join(data_dir, name) for name in os.listdir(data_dir)
                  if not name.startswith(".") and os.path.isfile(os.path.join(data_dir, name)))


def is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


# A header cell that holds any of these is data, not a column name: the file is probably not a CSV table.
_NOT_A_NAME = re.compile(r'[{}\[\]"<>]|^\s*$')


def read_header(reader, path: str) -> List[str]:
    """The header line of a csv.reader over `path`; ValueError naming the file if it has none."""
    try:
        header = next(reader, None)
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: not a text CSV file: byte 0x{e.object[e.start]:02x} is not UTF-8 "
                         f"(is it Parquet, gzip or TFRecord?)") from None
    if not header:
        raise ValueError(f"{path}: empty file: expected a CSV header line")
    if any(_NOT_A_NAME.search(name) for name in header):
        raise ValueError(f"{path}, line 1: not a CSV header of column names: {','.join(header)[:120]!r}")
    return header


def sniff_csv_columns(data: DataConfig) -> Tuple[str, List[str], Dict[str, bool]]:
    """The first data file's header and, per column, whether its first non-empty values all parse as numbers.

    Returns (first file, header, numeric-by-column). The other files are checked by pipeline/preflight.py.
    """
    files = data.files()
    if not files:
        raise FileNotFoundError(f"{data.path}: no data files" +
                                (f" match the pattern {data.pattern!r}" if data.pattern else ""))
    with open(files[0], newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = read_header(reader, files[0])
        numeric = {name: True for name in header}
        try:
            for _, row in zip(range(TYPE_SNIFF_ROWS), reader):
                for name, cell in zip(header, row):
                    if cell and numeric[name] and not is_number(cell):
                        numeric[name] = False
        except UnicodeDecodeError as e:
            raise ValueError(f"{files[0]}: not a text CSV file: {e}") from None
    return files[0], header, numeric


def _load_features(root: _Section, header: List[str], numeric: Dict[str, bool],
                   data_file: str) -> Tuple[FeatureConfig, ...]:
    section = root.section("features")
    if not section.raw:
        raise root.error("features", "must map at least one column to a treatment "
                                     f"({', '.join(TREATMENTS)})")
    features = []
    for name, spec in section.raw.items():
        section.used.add(name)
        key = section.key(name)
        if name not in header:
            raise ConfigError(root.path, key, f"feature {name!r} is not a column of {data_file} "
                                              f"(columns: {', '.join(header)})")
        if isinstance(spec, str):
            spec = {"treatment": spec}
        options = _Section(root.path, key, spec)
        treatment = options.choice("treatment", TREATMENTS)
        fill = options.get("fill", None, "mean")
        if not (fill == "mean" or (isinstance(fill, (int, float)) and not isinstance(fill, bool))):
            raise options.error("fill", f"must be 'mean' or a number, got {fill!r}")
        if treatment in NUMERIC_TREATMENTS and not numeric[name]:
            raise options.error("treatment", f"{treatment} needs a numeric column, but {name!r} holds "
                                             f"text in {data_file}; use vocab")
        feature = FeatureConfig(
            name=name, treatment=treatment, fill=fill,
            top_k=options.positive_int("top_k", FeatureConfig.top_k),
            oov_buckets=options.positive_int("oov_buckets", FeatureConfig.oov_buckets))
        options.finish()
        features.append(feature)
    return tuple(features)


def _load_evaluation(section: _Section, task: str) -> EvaluationConfig:
    metric = section.choice("metric", [m for m, (t, _, _) in METRICS.items() if t == task], DEFAULT_METRIC[task])
    higher_is_better = METRICS[metric][1]
    threshold = section.get("threshold", float, None)
    max_regression = section.get("max_regression", float, 0.0)
    if max_regression < 0:
        raise section.error("max_regression", f"must be >= 0, got {max_regression}")
    section.finish()
    return EvaluationConfig(metric=metric, higher_is_better=higher_is_better, threshold=threshold,
                            max_regression=max_regression)


def file_fingerprint(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()[:16]


def _thresholds(section: _Section, name: str, feature_names) -> Tuple[Tuple[str, float], ...]:
    raw = section.get(name, Mapping, {})
    out = []
    for feature, value in raw.items():
        key = f"{name}.{feature}"
        if feature not in feature_names:
            raise section.error(key, f"{feature!r} is not a configured feature or the label "
                                     f"(known: {', '.join(feature_names)})")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1:
            raise section.error(key, f"must be a threshold in (0, 1], got {value!r}")
        out.append((feature, float(value)))
    return tuple(out)


def _fraction(section: _Section, name: str, default: float) -> float:
    value = section.get(name, float, default)
    if not 0 <= value <= 1:
        raise section.error(name, f"must be a fraction in [0, 1], got {value}")
    return value


def _load_validation(section: _Section, base_dir: str, feature_names, schema_must_exist: bool
                     ) -> ValidationConfig:
    schema_file = section.get("schema", str, None)
    fingerprint = ""
    if schema_file is not None:
        schema_file = _resolve_output(schema_file, base_dir)
        if "://" not in schema_file and (schema_must_exist or os.path.isfile(schema_file)):
            if not os.path.isfile(schema_file):
                raise section.error("schema", f"{schema_file} does not exist; write it with "
                                              f"`tfxp schema freeze --config {section.path}`")
            fingerprint = file_fingerprint(schema_file)
    validation = ValidationConfig(
        schema_file=schema_file, schema_fingerprint=fingerprint,
        drift=_thresholds(section, "drift", feature_names), skew=_thresholds(section, "skew", feature_names),
        range_margin=section.get("range_margin", float, ValidationConfig.range_margin),
        max_new_category_fraction=_fraction(section, "max_new_category_fraction",
                                            ValidationConfig.max_new_category_fraction),
        max_missing_increase=_fraction(section, "max_missing_increase", ValidationConfig.max_missing_increase))
    if validation.range_margin < 0:
        raise section.error("range_margin", f"must be >= 0, got {validation.range_margin}")
    section.finish()
    return validation


def default_schema_file(config_path: str) -> str:
    """Where `tfxp schema freeze` writes when the config names no schema: `<config stem>.schema.pbtxt`."""
    stem = os.path.splitext(config_path)[0]
    return f"{stem}.schema.pbtxt"


def _remote(section: _Section, name: str) -> str:
    value = section.get(name, str)
    if "://" not in value:
        raise section.error(name, f"must be a cloud storage URI (gs://bucket/...), got {value!r}")
    return value


def _load_cloud(section: _Section) -> Optional[CloudConfig]:
    if not section.raw:
        section.finish()
        return None
    dataflow_section = section.section("dataflow")
    extra = dataflow_section.get("extra_args", list, [])
    if not all(isinstance(a, str) for a in extra):
        raise dataflow_section.error("extra_args", "must be a list of strings")
    disk = dataflow_section.get("disk_size_gb", int, None)
    dataflow = DataflowConfig(
        machine_type=dataflow_section.get("machine_type", str, DataflowConfig.machine_type),
        max_num_workers=dataflow_section.positive_int("max_num_workers", DataflowConfig.max_num_workers),
        disk_size_gb=disk, temp_location=dataflow_section.get("temp_location", str, None),
        worker_code=dataflow_section.choice("worker_code", ("image", "setup_file"), DataflowConfig.worker_code),
        extra_args=tuple(extra))
    dataflow_section.finish()
    training = None
    if "training" in section.raw:
        training_section = section.section("training")
        accelerator = training_section.get("accelerator_type", str, None)
        count = training_section.get("accelerator_count", int, 1 if accelerator else 0)
        if accelerator and count <= 0:
            raise training_section.error("accelerator_count", "must be > 0 with an accelerator_type")
        training = VertexTrainingConfig(
            machine_type=training_section.get("machine_type", str, VertexTrainingConfig.machine_type),
            accelerator_type=accelerator, accelerator_count=count if accelerator else 0,
            replica_count=training_section.positive_int("replica_count", VertexTrainingConfig.replica_count))
        training_section.finish()
    else:
        section.used.add("training")
    cloud = CloudConfig(
        project=section.get("project", str), region=section.get("region", str),
        pipeline_root=_remote(section, "pipeline_root"), image=section.get("image", str),
        data_path=_remote(section, "data_path"), serving_dir=_remote(section, "serving_dir"),
        service_account=section.get("service_account", str, None), dataflow=dataflow, training=training,
        image_workdir=section.get("image_workdir", str, CloudConfig.image_workdir))
    section.finish()
    return cloud


def _load_quantization(section: _Section) -> QuantizationConfig:
    method = section.choice("method", QUANTIZATION_METHODS, QuantizationConfig.method)
    push_float = section.get("push_float", bool, QuantizationConfig.push_float)
    on_gate_failure = section.choice("on_gate_failure", ON_GATE_FAILURE, QuantizationConfig.on_gate_failure)
    gates_section = section.section("gates")
    gates = []
    for key, default in default_gates(method):
        gates_section.used.add(key)
        # An absent key keeps the default; `key: null` disables the gate.
        value = gates_section.raw[key] if key in gates_section.raw else default
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0):
            raise gates_section.error(key, f"must be a number >= 0, or null to disable the gate; got {value!r}")
        gates.append((key, None if value is None else float(value)))
    gates_section.finish()
    section.finish()
    return QuantizationConfig(method=method, push_float=push_float, on_gate_failure=on_gate_failure,
                              gates=tuple(gates))


def _merged(base: Any, override: Any) -> Any:
    if isinstance(base, Mapping) and isinstance(override, Mapping):
        out = dict(base)
        for key, value in override.items():
            out[key] = _merged(base.get(key), value) if key in base else value
        return out
    return override


def _with_base(raw: Any, path: str, seen: Tuple[str, ...] = ()) -> Any:
    """`base: other.yaml` (a file in the same directory): that config, with this file's keys merged over it
    (mappings key by key, anything else replaced). Relative paths still resolve against this directory."""
    if not isinstance(raw, Mapping) or "base" not in raw:
        return raw
    name = raw["base"]
    if not isinstance(name, str) or os.path.dirname(name):
        raise ConfigError(path, "base", f"must name a config file in the same directory, got {name!r}")
    base_path = os.path.join(os.path.dirname(path), name)
    if base_path in seen or base_path == path:
        raise ConfigError(path, "base", f"{name} includes itself")
    try:
        with open(base_path) as f:
            base = yaml.safe_load(f)
    except FileNotFoundError:
        raise ConfigError(path, "base", f"{base_path} does not exist") from None
    except yaml.YAMLError as e:
        raise ConfigError(base_path, "<file>", f"not valid YAML: {e}") from None
    base = _with_base(base, base_path, seen + (path,))
    return _merged(base, {k: v for k, v in raw.items() if k != "base"})


def load_config(path: str, schema_must_exist: bool = True) -> PipelineConfig:
    """Loads and validates a config file; raises ConfigError naming the file and key.

    schema_must_exist=False is for `tfxp schema freeze`, which writes the schema file the config names."""
    path = os.path.abspath(path)
    try:
        with open(path) as f:
            raw = yaml.safe_load(f)
    except FileNotFoundError:
        raise ConfigError(path, "<file>", "config file does not exist") from None
    except yaml.YAMLError as e:
        raise ConfigError(path, "<file>", f"not valid YAML: {e}") from None
    base_dir = os.path.dirname(path)
    raw = _with_base(raw, path)
    root = _Section(path, "", raw)

    name = root.get("name", str)
    data = root.section("data")
    data_format = data.choice("format", DATA_FORMATS, "csv")
    try:
        data_dir = resolve_data_path(data.get("path", str), base_dir)
    except FileNotFoundError as e:
        raise data.error("path", str(e)) from None
    if not os.path.isdir(data_dir):
        raise data.error("path", f"{data_dir} is not a directory holding {data_format} files")
    split_section = data.section("split")
    split = tuple((k, split_section.positive_int(k)) for k in list(split_section.raw)) or DataConfig.split
    split_section.finish()
    if {k for k, _ in split} != {"train", "eval"}:
        raise data.error("split", f"must name exactly the splits train and eval, got {[k for k, _ in split]}")
    pattern = data.get("pattern", str, None)
    if pattern is not None:
        from pipeline.spans import check_pattern

        problem = check_pattern(pattern)
        if problem:
            raise data.error("pattern", problem)
    rolling_window = data.positive_int("rolling_window", DataConfig.rolling_window)
    if pattern is None and "rolling_window" in data.raw:
        raise data.error("rolling_window", "needs data.pattern: a window of spans")
    data.finish()
    data_config = DataConfig(path=data_dir, format=data_format, split=split, pattern=pattern,
                             rolling_window=rolling_window)
    try:
        data_file, header, numeric = sniff_csv_columns(data_config)
    except (OSError, ValueError, csv.Error) as e:
        raise data.error("path", str(e)) from None

    label_section = root.section("label")
    label = LabelConfig(column=label_section.get("column", str), task=label_section.choice("task", TASKS))
    label_section.finish()
    if label.column not in header:
        raise label_section.error("column", f"label {label.column!r} is not a column of {data_file} "
                                            f"(columns: {', '.join(header)})")
    if label.task in ("binary", "regression") and not numeric[label.column]:
        raise label_section.error("task", f"{label.task} needs a numeric label, but {label.column!r} holds "
                                          f"text in {data_file}")
    features = _load_features(root, header, numeric, data_file)
    if label.column in {f.name for f in features}:
        raise root.error(f"features.{label.column}", "the label column cannot also be a feature")

    model_section = root.section("model")
    model = ModelConfig(width=model_section.positive_int("width", ModelConfig.width),
                        depth=model_section.positive_int("depth", ModelConfig.depth),
                        learning_rate=model_section.get("learning_rate", float, ModelConfig.learning_rate))
    model_section.finish()
    training_section = root.section("training")
    training = TrainingConfig(
        train_steps=training_section.positive_int("train_steps", TrainingConfig.train_steps),
        eval_steps=training_section.positive_int("eval_steps", TrainingConfig.eval_steps),
        batch_size_per_replica=training_section.positive_int("batch_size_per_replica",
                                                             TrainingConfig.batch_size_per_replica),
        warm_start=training_section.get("warm_start", bool, pattern is not None))
    training_section.finish()
    evaluation = _load_evaluation(root.section("evaluation"), label.task)

    outputs = root.section("outputs")
    pipeline_root = _resolve_output(outputs.get("pipeline_root", str, f"runs/{name}/pipeline_root"), base_dir)
    serving_dir = _resolve_output(outputs.get("serving_dir", str, f"runs/{name}/serving"), base_dir)
    metadata_path = _resolve_output(outputs.get("metadata_path", str, default_metadata_path(pipeline_root)),
                                    base_dir)
    float_serving_dir = _resolve_output(outputs.get("float_serving_dir", str,
                                                    default_float_serving_dir(serving_dir)), base_dir)
    outputs.finish()
    quantization = _load_quantization(root.section("quantization"))
    validation = _load_validation(root.section("validation"), base_dir,
                                  [f.name for f in features] + [label.column], schema_must_exist)
    if not quantization.push_float:
        float_serving_dir = ""

    beam_section = root.section("beam")
    extra_args = beam_section.get("extra_args", list, [])
    if not all(isinstance(a, str) for a in extra_args):
        raise beam_section.error("extra_args", "must be a list of strings")
    beam = BeamConfig(
        direct_running_mode=beam_section.choice("direct_running_mode", RUNNING_MODES,
                                                BeamConfig.direct_running_mode),
        direct_num_workers=beam_section.get("direct_num_workers", int, BeamConfig.direct_num_workers),
        pickle_library=beam_section.choice("pickle_library", PICKLE_LIBRARIES, BeamConfig.pickle_library),
        extra_args=tuple(extra_args),
        setup_file=default_setup_file())
    beam_section.finish()
    cloud = _load_cloud(root.section("cloud"))
    enable_cache = root.get("enable_cache", bool, True)
    root.finish()

    return PipelineConfig(
        name=name, source=path,
        data=data_config,
        label=label, features=features, model=model, training=training, evaluation=evaluation,
        pipeline_root=pipeline_root, serving_dir=serving_dir, metadata_path=metadata_path,
        beam=beam, enable_cache=enable_cache, code_fingerprint=code_fingerprint(),
        float_serving_dir=float_serving_dir, quantization=quantization, validation=validation, cloud=cloud)
