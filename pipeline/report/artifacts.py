"""What the run's artifacts hold, read into the report's records: statistics and the data gate's report,
the transform graph's analyzer values, the Trainer's summary and TensorBoard curves, the evaluation."""
from __future__ import annotations

import dataclasses
import json
import math
import os
from typing import Any, Dict, List, Optional, Tuple

from components.data_gate.checks import GATE_REPORT_FILE, STATS_FILE, Distance, GateReport, present_fraction
from components.properties import BLESSED
from config import METRICS, FeatureConfig, PipelineConfig
from pipeline.report.records import (AnalyzerValues, EvaluationData, FeatureData, FeatureSplitStats, MetricRow,
                                     SliceRow, TrainingData)
from pipeline.report.cache import ChartCache
from pipeline.summary import _custom, evaluation_metrics, validation_failures

SPLITS = ("train", "eval")
TOP_VALUES = 10  # per string feature in the data section, and vocabulary entries in the transform section


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


def analyzer_values(features: List[FeatureConfig], transform_graph_uri: str) -> List[Dict[str, Any]]:
    """read_analyzers as JSON values (for the report's cache)."""
    return [dataclasses.asdict(values) for values in read_analyzers(features, transform_graph_uri)]


def read_analyzers(features: List[FeatureConfig], transform_graph_uri: str) -> List[AnalyzerValues]:
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
    numeric = [f for f in features if f.treatment in ("zscore", "minmax")]
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
    for feature in features:
        if feature.treatment == "vocab":
            vocabulary = output.vocabulary_by_name(vocab_filename(feature.name))
            out.append(AnalyzerValues(feature.name, "vocab", vocabulary_size=len(vocabulary),
                                      top_entries=[v.decode(errors="replace") if isinstance(v, bytes) else str(v)
                                                   for v in vocabulary[:TOP_VALUES]]))
    order = {f.name: i for i, f in enumerate(features)}
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


def slice_metrics(evaluation_uri: str) -> List[Tuple[str, str, Dict[str, float]]]:
    """(column, value, the candidate's metrics) of each single-column slice of the evaluation."""
    import tensorflow_model_analysis as tfma

    out = []
    for per_slice in tfma.load_metrics(evaluation_uri):
        keys = per_slice.slice_key.single_slice_keys
        if len(keys) != 1:
            continue
        key = keys[0]
        raw = getattr(key, key.WhichOneof("kind"))
        out.append((key.column, raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw),
                    {kv.key.name: kv.value.double_value.value for kv in per_slice.metric_keys_and_values
                     if not kv.key.is_diff and kv.key.model_name in ("", "candidate")}))
    return out


def read_slices(config: PipelineConfig, slices: List[Tuple[str, str, Dict[str, float]]]) -> List[SliceRow]:
    """The candidate's gating metric per slice (`slice_metrics`), weakest first."""
    ev = config.evaluation
    higher = METRICS[ev.metric].higher_is_better
    out = []
    for column, value, values in slices:
        if ev.metric not in values:
            continue
        count = int(values.get("example_count", 0))
        metric = values[ev.metric]
        out.append(SliceRow(
            column=column, value=value, count=count, metric=metric,
            interval=wilson_interval(metric * count, count) if ev.metric in ACCURACY_METRICS else None,
            below_threshold=ev.threshold is not None and (metric < ev.threshold if higher else metric > ev.threshold)))
    return sorted(out, key=lambda r: (r.metric if higher else -r.metric, -r.count))


def read_evaluation(config: PipelineConfig, evaluation_uri: str, blessing: Optional[Any],
                    constant: Dict[str, float], cache: Optional[ChartCache] = None) -> EvaluationData:
    """The evaluation's metrics, slices and TFMA's reasons, read through `cache` when given (the run summary
    reads the same entries)."""
    kept = cache or ChartCache(None)  # ChartCache(None) computes every value
    by_model = kept.value(evaluation_metrics, evaluation_uri)
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
    return EvaluationData(metric=config.evaluation.metric, rows=rows,
                          slices=read_slices(config, kept.value(slice_metrics, evaluation_uri)),
                          blessed=bool(_custom(blessing, BLESSED)) if blessing is not None else None,
                          failures=kept.value(validation_failures, evaluation_uri),
                          max_regression=config.evaluation.max_regression,
                          example_count=int(count) if count is not None else None)
