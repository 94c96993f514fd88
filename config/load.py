"""Loading a config: YAML in, a validated PipelineConfig out, every error naming the file and the key.

One loader per section; `base: other.yaml` inheritance; paths resolved against the config's directory
(`package://PKG/dir` inside an installed package). Nothing here imports TensorFlow or TFX: `tfxp --help` and
config errors stay fast.
"""
from __future__ import annotations

import csv
import dataclasses
import os
from typing import Any, Dict, List, Mapping, Tuple

import yaml

from config.cloud import load_cloud
from config.file_probe import probe_columns
from config.schema import (CSV_READERS, DATA_FORMATS, EVALUATORS, METRICS, NUMERIC_TREATMENTS, PARQUET_PAYLOAD, PAYLOADS,
                           PICKLE_LIBRARIES, RUNNING_MODES, TRANSFORM_EXECUTORS,
                           TASK_METRICS, TASKS, TREATMENTS, BeamConfig, DataConfig, EvaluationConfig, FeatureConfig, LabelConfig, ModelCardConfig, ModelConfig, ON_GATE_FAILURE,
                           PipelineConfig, QUANTIZATION_METHODS, QuantizationConfig, TrainingConfig, TransformConfig,
                           ValidationConfig, default_float_serving_dir, default_gates,
                           default_metadata_path, default_report_file, is_remote)
from config.sections import (ConfigError, Section, code_fingerprint, default_setup_file, file_fingerprint,
                             resolve_data_path, resolve_output)
from config.spans import check_pattern
from config.text import listed


def _load_features(root: Section, header: List[str], numeric: Dict[str, bool],
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
        options = Section(root.path, key, spec)
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


def _load_evaluation(section: Section, task: str, columns: List[str]) -> EvaluationConfig:
    metric = section.choice("metric", TASK_METRICS[task], TASK_METRICS[task][0])
    higher_is_better = METRICS[metric].higher_is_better
    threshold = section.get("threshold", float, None)
    max_regression = section.get("max_regression", float, 0.0)
    if max_regression < 0:
        raise section.error("max_regression", f"must be >= 0, got {max_regression}")
    evaluator = section.choice("evaluator", EVALUATORS, EvaluationConfig.evaluator)
    slices = _strings(section, "slices")
    unknown = [name for name in slices if name not in columns]
    if unknown:
        raise section.error("slices", f"{', '.join(unknown)}: not a column of the data "
                                      f"(columns: {listed(columns)})")
    section.finish()
    return EvaluationConfig(metric=metric, higher_is_better=higher_is_better, threshold=threshold,
                            max_regression=max_regression, evaluator=evaluator, slices=slices)


def _thresholds(section: Section, name: str, feature_names) -> Tuple[Tuple[str, float], ...]:
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


def _fraction(section: Section, name: str, default: float) -> float:
    value = section.get(name, float, default)
    if not 0 <= value <= 1:
        raise section.error(name, f"must be a fraction in [0, 1], got {value}")
    return value


def _load_validation(section: Section, base_dir: str, feature_names, schema_must_exist: bool
                     ) -> ValidationConfig:
    schema_file = section.get("schema", str, None)
    fingerprint = ""
    if schema_file is not None:
        schema_file = resolve_output(schema_file, base_dir)
        if not is_remote(schema_file) and (schema_must_exist or os.path.isfile(schema_file)):
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
        max_missing_increase=_fraction(section, "max_missing_increase", ValidationConfig.max_missing_increase),
        one_pass_statistics=section.get("one_pass_statistics", bool, ValidationConfig.one_pass_statistics))
    if validation.range_margin < 0:
        raise section.error("range_margin", f"must be >= 0, got {validation.range_margin}")
    section.finish()
    return validation


def default_schema_file(config_path: str) -> str:
    """Where `tfxp schema freeze` writes when the config names no schema: `<config stem>.schema.pbtxt`."""
    stem = os.path.splitext(config_path)[0]
    return f"{stem}.schema.pbtxt"


def _load_quantization(section: Section) -> QuantizationConfig:
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


def _load_data(section: Section, base_dir: str) -> DataConfig:
    data_format = section.choice("format", DATA_FORMATS, "csv")
    query = section.get("query", str, None)
    if data_format == "bigquery":
        if query is None:
            raise section.error("query", "is required with format: bigquery (the SQL query of the examples)")
        data_dir = section.get("path", str, "")
    else:
        if query is not None:
            raise section.error("query", f"is for format: bigquery, not {data_format}")
        try:
            data_dir = resolve_data_path(section.get("path", str), base_dir)
        except FileNotFoundError as e:
            raise section.error("path", str(e)) from None
        if not os.path.isdir(data_dir):
            raise section.error("path", f"{data_dir} is not a directory holding {data_format} files")
    split_section = section.section("split")
    split = tuple((k, split_section.positive_int(k)) for k in list(split_section.raw)) or DataConfig.split
    split_section.finish()
    if {k for k, _ in split} != {"train", "eval"}:
        raise section.error("split", f"must name exactly the splits train and eval, got {[k for k, _ in split]}")
    pattern = section.get("pattern", str, None)
    if pattern is not None:
        problem = check_pattern(pattern)
        if problem:
            raise section.error("pattern", problem)
    rolling_window = section.positive_int("rolling_window", DataConfig.rolling_window)
    if pattern is None and "rolling_window" in section.raw:
        raise section.error("rolling_window", "needs data.pattern: a window of spans")
    reader = section.choice("reader", CSV_READERS, DataConfig.reader)
    payload = section.choice("payload", PAYLOADS, DataConfig.payload)
    if payload == PARQUET_PAYLOAD and (data_format not in ("csv", "parquet") or reader == "stock"):
        raise section.error("payload", "parquet is written by the columnar ExampleGens: format csv (reader "
                                       f"columnar) or parquet, not format {data_format} with reader {reader}")
    section.finish()
    return DataConfig(path=data_dir, format=data_format, split=split, pattern=pattern,
                      rolling_window=rolling_window, reader=reader, query=query, payload=payload)


def _load_label(section: Section, header: List[str], numeric: Dict[str, bool], data_file: str) -> LabelConfig:
    label = LabelConfig(column=section.get("column", str), task=section.choice("task", TASKS))
    section.finish()
    if label.column not in header:
        raise section.error("column", f"label {label.column!r} is not a column of {data_file} "
                                      f"(columns: {', '.join(header)})")
    if label.task in ("binary", "regression") and not numeric[label.column]:
        raise section.error("task", f"{label.task} needs a numeric label, but {label.column!r} holds "
                                    f"text in {data_file}")
    return label


def _load_model(section: Section) -> ModelConfig:
    model = ModelConfig(width=section.positive_int("width", ModelConfig.width),
                        depth=section.positive_int("depth", ModelConfig.depth),
                        learning_rate=section.get("learning_rate", float, ModelConfig.learning_rate))
    section.finish()
    return model


def _load_transform(section: Section) -> TransformConfig:
    transform = TransformConfig(materialize=section.get("materialize", bool, TransformConfig.materialize),
                                statistics=section.get("statistics", bool, TransformConfig.statistics),
                                tf_compat_v1=section.get("tf_compat_v1", bool, TransformConfig.tf_compat_v1),
                                batch_vocabulary_counts=section.get("batch_vocabulary_counts", bool,
                                                                    TransformConfig.batch_vocabulary_counts),
                                one_pass_vocabularies=section.get("one_pass_vocabularies", bool,
                                                                  TransformConfig.one_pass_vocabularies),
                                executor=section.choice("executor", TRANSFORM_EXECUTORS, TransformConfig.executor))
    section.finish()
    return transform


def _load_training(section: Section, spans: bool) -> TrainingConfig:
    training = TrainingConfig(
        train_steps=section.positive_int("train_steps", TrainingConfig.train_steps),
        eval_steps=section.positive_int("eval_steps", TrainingConfig.eval_steps),
        batch_size_per_replica=section.positive_int("batch_size_per_replica",
                                                    TrainingConfig.batch_size_per_replica),
        warm_start=section.get("warm_start", bool, spans),
        seed=section.get("seed", int, None))
    if training.seed is not None and not 0 <= training.seed < 2 ** 31:
        raise section.error("seed", f"must be an integer in [0, 2**31), got {training.seed}")
    section.finish()
    return training


@dataclasses.dataclass(frozen=True)
class _Outputs:
    pipeline_root: str
    serving_dir: str
    metadata_path: str
    float_serving_dir: str
    report_file: str


def _load_outputs(section: Section, name: str, base_dir: str) -> _Outputs:
    pipeline_root = resolve_output(section.get("pipeline_root", str, f"runs/{name}/pipeline_root"), base_dir)
    serving_dir = resolve_output(section.get("serving_dir", str, f"runs/{name}/serving"), base_dir)
    outputs = _Outputs(
        pipeline_root=pipeline_root, serving_dir=serving_dir,
        metadata_path=resolve_output(section.get("metadata_path", str, default_metadata_path(pipeline_root)),
                                      base_dir),
        float_serving_dir=resolve_output(section.get("float_serving_dir", str,
                                                      default_float_serving_dir(serving_dir)), base_dir),
        report_file=resolve_output(section.get("report_file", str, default_report_file(pipeline_root)), base_dir))
    section.finish()
    return outputs


def _strings(section: Section, name: str) -> Tuple[str, ...]:
    value = section.get(name, (list, str), [])
    values = [value] if isinstance(value, str) else value
    if not all(isinstance(v, str) and v.strip() for v in values):
        raise section.error(name, f"must be a text or a list of texts, got {value!r}")
    return tuple(v.strip() for v in values)


def _load_model_card(section: Section) -> ModelCardConfig:
    card = ModelCardConfig(overview=section.get("overview", str, "").strip(),
                           intended_use=section.get("intended_use", str, "").strip(),
                           owners=_strings(section, "owners"), limitations=_strings(section, "limitations"),
                           ethical_considerations=section.get("ethical_considerations", str, "").strip())
    section.finish()
    return card


def _load_beam(section: Section) -> BeamConfig:
    extra_args = section.get("extra_args", list, [])
    if not all(isinstance(a, str) for a in extra_args):
        raise section.error("extra_args", "must be a list of strings")
    beam = BeamConfig(
        direct_running_mode=section.choice("direct_running_mode", RUNNING_MODES, BeamConfig.direct_running_mode),
        direct_num_workers=section.get("direct_num_workers", int, BeamConfig.direct_num_workers),
        pickle_library=section.choice("pickle_library", PICKLE_LIBRARIES, BeamConfig.pickle_library),
        extra_args=tuple(extra_args),
        setup_file=default_setup_file())
    section.finish()
    return beam


class _AnyNumeric(dict):
    """numeric-by-column for a query's columns: not known before it runs (the DataGate checks the types)."""

    def __getitem__(self, name: str) -> bool:
        return True


def _query_columns(root: Section) -> List[str]:
    """A bigquery config's columns: the features and the label it names (checked when the query runs)."""
    features = root.raw.get("features") or {}
    label = (root.raw.get("label") or {}).get("column")
    return list(features) + ([label] if label else [])


def _read_yaml(path: str) -> Any:
    try:
        with open(path) as f:
            return yaml.safe_load(f)
    except FileNotFoundError:
        raise ConfigError(path, "<file>", "config file does not exist") from None
    except yaml.YAMLError as e:
        raise ConfigError(path, "<file>", f"not valid YAML: {e}") from None


def load_config(path: str, schema_must_exist: bool = True) -> PipelineConfig:
    """Loads and validates a config file; raises ConfigError naming the file and key.

    schema_must_exist=False is for `tfxp schema freeze`, which writes the schema file the config names."""
    path = os.path.abspath(path)
    base_dir = os.path.dirname(path)
    root = Section(path, "", _with_base(_read_yaml(path), path))
    name = root.get("name", str)
    data_section = root.section("data")
    data = _load_data(data_section, base_dir)
    if data.format == "bigquery":  # the columns are the query's, known only where it runs
        data_file, header, numeric = "the query", _query_columns(root), _AnyNumeric()
    else:
        try:
            data_file, header, numeric = probe_columns(data)
        except (OSError, ValueError, csv.Error) as e:
            raise data_section.error("path", str(e)) from None
    label = _load_label(root.section("label"), header, numeric, data_file)
    features = _load_features(root, header, numeric, data_file)
    if label.column in {f.name for f in features}:
        raise root.error(f"features.{label.column}", "the label column cannot also be a feature")
    model = _load_model(root.section("model"))
    transform = _load_transform(root.section("transform"))
    training = _load_training(root.section("training"), data.pattern is not None)
    evaluation = _load_evaluation(root.section("evaluation"), label.task, header)
    if data.payload == PARQUET_PAYLOAD and evaluation.evaluator == "tfma":
        raise root.error("evaluation.evaluator", "tfma (TFX's Evaluator) reads tf.Examples only; with "
                                                 "data.payload: parquet use the columnar Evaluator")
    outputs = _load_outputs(root.section("outputs"), name, base_dir)
    quantization = _load_quantization(root.section("quantization"))
    validation = _load_validation(root.section("validation"), base_dir,
                                  [f.name for f in features] + [label.column], schema_must_exist)
    beam = _load_beam(root.section("beam"))
    cloud = load_cloud(root.section("cloud"))
    enable_cache = root.get("enable_cache", bool, True)
    model_card = _load_model_card(root.section("model_card"))
    root.finish()
    return PipelineConfig(
        name=name, source=path, data=data, label=label, features=features, model=model, training=training,
        evaluation=evaluation, pipeline_root=outputs.pipeline_root, serving_dir=outputs.serving_dir,
        metadata_path=outputs.metadata_path, beam=beam, enable_cache=enable_cache,
        code_fingerprint=code_fingerprint(),
        float_serving_dir=outputs.float_serving_dir if quantization.push_float else "",
        quantization=quantization, validation=validation, transform=transform, cloud=cloud,
        model_card=model_card, report_file=outputs.report_file)
