"""The data gate's checks, as plain functions over TFDV protos (unit-testable without TFX or Beam).

An `Anomaly` names the split, the feature, the kind and a short description. Sources:
  * ExampleValidator's anomalies (TFDV `validate_statistics` of every split against the schema);
  * missing cells: CSV ExampleGen writes an empty cell as a feature with no values, which TFDV's `presence`
    does not count as missing, so the frozen schema carries a `tfxp:max_missing_fraction=X` tag per feature
    and the gate compares it with the statistics' value counts;
  * the config: numeric treatments need numeric columns, a binary label holds only 0 and 1, no label is
    missing (these also hold for an inferred schema);
  * drift (this run's train split vs the last accepted one) and skew (train vs eval split): TFDV comparators
    (L-infinity distance for vocab features, Jensen-Shannon divergence for numeric ones) with per-feature
    thresholds from the config.
"""
from __future__ import annotations

import dataclasses
import json
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

from tensorflow_metadata.proto.v0 import anomalies_pb2, schema_pb2, statistics_pb2

from config import MAX_LISTED, NUMERIC_TREATMENTS, CustomConfig, FeatureConfig
from config.csv_probe import is_number

MISSING_TAG = "tfxp:max_missing_fraction="


@dataclasses.dataclass(frozen=True)
class Anomaly:
    split: str
    feature: str
    kind: str
    description: str

    def line(self) -> str:
        return f"split {self.split}, feature {self.feature}: {self.kind}: {self.description}"


class DataValidationError(RuntimeError):
    """The gate found anomalies: nothing downstream (Transform, Trainer, Pusher) may run."""

    def __init__(self, anomalies: Sequence[Anomaly]):
        self.anomalies = list(anomalies)
        lines = "\n".join(f"  {a.line()}" for a in self.anomalies)
        super().__init__(f"data validation found {len(self.anomalies)} anomal"
                         f"{'y' if len(self.anomalies) == 1 else 'ies'}; nothing was trained or pushed:\n"
                         f"{lines}")


# --------------------------------------------------------------------------------------------------
# Statistics helpers


def feature_stats(dataset: statistics_pb2.DatasetFeatureStatistics) -> Dict[str, Any]:
    return {".".join(f.path.step) or f.name: f for f in dataset.features}


def _common(stats) -> statistics_pb2.CommonStatistics:
    which = stats.WhichOneof("stats")
    return getattr(stats, which).common_stats if which in ("num_stats", "string_stats") else None


def present_fraction(stats, num_examples: int) -> float:
    """Share of examples with at least one value (CSV cells hold at most one)."""
    common = _common(stats)
    if common is None or num_examples == 0:
        return 0.0
    return min(common.tot_num_values, common.num_non_missing) / num_examples


def non_numeric_examples(stats, limit: int = 3) -> List[str]:
    values = [b.label for b in stats.string_stats.rank_histogram.buckets] or \
             [v.value for v in stats.string_stats.top_values]
    return [value for value in values if not is_number(value)][:limit]


def text_examples(stats) -> str:
    examples = non_numeric_examples(stats)
    if examples:
        return "for example " + ", ".join(repr(v) for v in examples)
    return ("the values this split's statistics keep all parse as numbers: the text is in a rarer value or "
            "in another split")


# --------------------------------------------------------------------------------------------------
# Checks

def shorten_value_list(description: str, limit: int = MAX_LISTED) -> str:
    """'<text>: v1, v2, ..., vN.' -> '<text>: v1, ..., v<limit>, and <N - limit> more.': a description that
    lists values ("...: a (<1%), b (<1%), ...") keeps `limit` of them and says how many more."""
    head, sep, listed = description.rpartition(": ")
    if not sep:
        return description
    end = "." if listed.endswith(".") else ""
    values = listed[:len(listed) - len(end)].split(", ")
    if len(values) <= limit:
        return description
    return f"{head}: {', '.join(values[:limit])}, and {len(values) - limit} more{end}"


def from_tfdv(anomalies: anomalies_pb2.Anomalies, split: str, only_kinds: Optional[Iterable[str]] = None
              ) -> List[Anomaly]:
    """TFDV Anomalies -> one Anomaly per reason (a feature can have several)."""
    out = []
    kinds = set(only_kinds) if only_kinds is not None else None
    if anomalies.data_missing and kinds is None:
        out.append(Anomaly(split, "<dataset>", "NO_DATA", "the split has no examples"))
    infos = sorted(anomalies.anomaly_info.items())
    if anomalies.HasField("dataset_anomaly_info"):
        infos.append(("<dataset>", anomalies.dataset_anomaly_info))
    for feature, info in infos:
        reasons = list(info.reason) or [anomalies_pb2.AnomalyInfo.Reason(
            type=anomalies_pb2.AnomalyInfo.UNKNOWN_TYPE, description=info.description)]
        for reason in reasons:
            kind = anomalies_pb2.AnomalyInfo.Type.Name(reason.type)
            if kinds is not None and kind not in kinds:
                continue
            out.append(Anomaly(split, feature, kind,
                               shorten_value_list(reason.description or reason.short_description)))
    return out


def max_missing_fraction(feature: schema_pb2.Feature) -> Optional[float]:
    for tag in feature.annotation.tag:
        if tag.startswith(MISSING_TAG):
            return float(tag[len(MISSING_TAG):])
    return None


def missing_value_checks(dataset: statistics_pb2.DatasetFeatureStatistics, schema: schema_pb2.Schema,
                         split: str) -> List[Anomaly]:
    stats_by_name = feature_stats(dataset)
    out = []
    for feature in schema.feature:
        limit = max_missing_fraction(feature)
        if limit is None or feature.name not in stats_by_name:
            continue  # a column missing altogether is ExampleValidator's SCHEMA_MISSING_COLUMN
        missing = 1.0 - present_fraction(stats_by_name[feature.name], dataset.num_examples)
        if missing > limit + 1e-9:
            out.append(Anomaly(split, feature.name, "MISSING_VALUES_HIGH",
                               f"{missing:.1%} of the cells are empty; the frozen schema allows at most "
                               f"{limit:.1%}"))
    return out


# A passthrough feature enters the model as it is, beside z-scored and min-max scaled inputs of magnitude ~1.
# Measured on wine (13 z-scored features + one passthrough column of value ~c, tfxp's default MLP, 3 seeds):
# accuracy stayed at 0.93-0.98 up to c = PASSTHROUGH_MAX_ABS and fell to the majority class above (README,
# "Writing a config"). Larger passthrough values get a warning, not an error: the data may still be right.
PASSTHROUGH_MAX_ABS = 30.0


def passthrough_warnings(dataset: statistics_pb2.DatasetFeatureStatistics, features: Iterable[FeatureConfig]
                         ) -> List[str]:
    """One warning per passthrough feature whose values reach PASSTHROUGH_MAX_ABS in magnitude."""
    stats_by_name = feature_stats(dataset)
    out = []
    for feature in features:
        stats = stats_by_name.get(feature.name)
        if feature.treatment != "passthrough" or stats is None or not stats.HasField("num_stats"):
            continue
        magnitude = max(abs(stats.num_stats.min), abs(stats.num_stats.max))
        if magnitude > PASSTHROUGH_MAX_ABS:
            out.append(f"feature {feature.name} is passthrough with values up to {magnitude:g} in magnitude "
                       f"(mean {stats.num_stats.mean:g}): unscaled inputs above ~{PASSTHROUGH_MAX_ABS:g} can stall "
                       f"training at a constant prediction; use zscore or minmax")
    return out


def config_checks(dataset: statistics_pb2.DatasetFeatureStatistics, custom_config: CustomConfig,
                  split: str) -> List[Anomaly]:
    """What the config needs of the data, frozen schema or not."""
    stats_by_name = feature_stats(dataset)
    out = []
    for feature in custom_config.features:
        stats = stats_by_name.get(feature.name)
        if stats is None:
            out.append(Anomaly(split, feature.name, "MISSING_COLUMN", "the configured column is absent"))
        elif feature.treatment in NUMERIC_TREATMENTS and stats.type == statistics_pb2.FeatureNameStatistics.STRING:
            out.append(Anomaly(split, feature.name, "TEXT_IN_NUMERIC_COLUMN",
                               f"{feature.treatment} needs numbers, but the column was read as text "
                               f"({text_examples(stats)})"))
    label, task = custom_config.label.column, custom_config.label.task
    stats = stats_by_name.get(label)
    if stats is None:
        return out + [Anomaly(split, label, "MISSING_COLUMN", "the label column is absent")]
    missing = dataset.num_examples - round(present_fraction(stats, dataset.num_examples) * dataset.num_examples)
    if missing > 0:
        out.append(Anomaly(split, label, "LABEL_MISSING", f"{missing} of {dataset.num_examples} examples have "
                                                          f"no label"))
    if task in ("binary", "regression") and stats.type == statistics_pb2.FeatureNameStatistics.STRING:
        out.append(Anomaly(split, label, "LABEL_OUTSIDE_CLASSES",
                           f"a {task} label must be numeric, but the column was read as text "
                           f"({text_examples(stats)})"))
    elif task == "binary" and stats.HasField("num_stats") and (stats.num_stats.min < 0 or stats.num_stats.max > 1):
        out.append(Anomaly(split, label, "LABEL_OUTSIDE_CLASSES",
                           f"a binary label must be 0 or 1, found values from {stats.num_stats.min:g} to "
                           f"{stats.num_stats.max:g}"))
    return out


def with_comparators(schema: schema_pb2.Schema, thresholds: Sequence[Tuple[str, float]], kind: str,
                     statistics: statistics_pb2.DatasetFeatureStatistics) -> schema_pb2.Schema:
    """A copy of `schema` whose features carry only the given drift or skew comparators.

    Features with string statistics (vocabularies) use the L-infinity distance between value frequencies;
    numeric features the Jensen-Shannon divergence between histograms.
    """
    schema = schema_pb2.Schema.FromString(schema.SerializeToString())
    stats_by_name = feature_stats(statistics)
    wanted = dict(thresholds)
    field = "drift_comparator" if kind == "drift" else "skew_comparator"
    for feature in schema.feature:
        feature.ClearField("drift_comparator")
        feature.ClearField("skew_comparator")
        if feature.name not in wanted or feature.name not in stats_by_name:
            continue
        comparator = getattr(feature, field)
        if stats_by_name[feature.name].HasField("string_stats"):
            comparator.infinity_norm.threshold = wanted[feature.name]
        else:
            comparator.jensen_shannon_divergence.threshold = wanted[feature.name]
    return schema


COMPARATOR_KINDS = ("COMPARATOR_L_INFTY_HIGH", "COMPARATOR_JENSEN_SHANNON_DIVERGENCE_HIGH",
                    "COMPARATOR_NORMALIZED_ABSOLUTE_DIFFERENCE_HIGH")


@dataclasses.dataclass(frozen=True)
class Distance:
    """One drift or skew measurement TFDV made, with the threshold it was held to (the run report shows them
    all, the passing ones too)."""
    comparison: str  # "drift" (train vs the last accepted train split) or "skew" (train vs eval)
    feature: str
    measure: str  # TFDV's measurement type: L_INFTY, JENSEN_SHANNON_DIVERGENCE
    value: float
    threshold: float


def _distances(result: anomalies_pb2.Anomalies, comparison: str) -> List[Distance]:
    from tensorflow_metadata.proto.v0 import anomalies_pb2 as pb

    out = []
    for info in result.drift_skew_info:
        measurements = info.drift_measurements if comparison == "drift" else info.skew_measurements
        out += [Distance(comparison, ".".join(info.path.step), pb.DriftSkewInfo.Measurement.Type.Name(m.type),
                         m.value, m.threshold) for m in measurements]
    return out


def comparator_checks(validate, schema: schema_pb2.Schema, train: statistics_pb2.DatasetFeatureStatisticsList,
                      baseline_train: Optional[statistics_pb2.DatasetFeatureStatisticsList],
                      eval_: Optional[statistics_pb2.DatasetFeatureStatisticsList],
                      drift: Sequence[Tuple[str, float]], skew: Sequence[Tuple[str, float]]
                      ) -> Tuple[List[Anomaly], List[Distance]]:
    """Drift (train vs the last accepted train split) and skew (train vs eval) through TFDV: the anomalies,
    and every distance measured.

    `validate` is `tfdv.validate_statistics` (injected so that this module imports no TFDV).
    """
    out: List[Anomaly] = []
    distances: List[Distance] = []
    if drift and baseline_train is not None:
        result = validate(train, with_comparators(schema, drift, "drift", train.datasets[0]),
                          previous_statistics=baseline_train)
        out += [dataclasses.replace(a, kind=f"DRIFT ({a.kind})")
                for a in from_tfdv(result, "train vs last accepted data", COMPARATOR_KINDS)]
        distances += _distances(result, "drift")
    if skew and eval_ is not None:
        result = validate(train, with_comparators(schema, skew, "skew", train.datasets[0]),
                          serving_statistics=eval_)
        out += [dataclasses.replace(a, kind=f"SKEW ({a.kind})")
                for a in from_tfdv(result, "train vs eval", COMPARATOR_KINDS)]
        distances += _distances(result, "skew")
    return out, distances


# Written into the AcceptedStatistics artifact's directory by every DataGate execution, passed or failed
# (a failed one's directory is not published to ML Metadata, but it is there: the run report reads it).
GATE_REPORT_FILE = "gate_report.json"
# StatisticsGen's statistics file in each split directory (TFX: stats_artifact_utils.BINARY_PB_BASENAME).
STATS_FILE = "FeatureStats.pb"


@dataclasses.dataclass(frozen=True)
class GateReport:
    anomalies: List[Anomaly]
    distances: List[Distance]
    baseline_statistics: Optional[str]  # the last accepted statistics' URI (the drift baseline)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2)

    @classmethod
    def from_json(cls, text: str) -> "GateReport":
        raw = json.loads(text)
        return cls(anomalies=[Anomaly(**a) for a in raw.get("anomalies", [])],
                   distances=[Distance(**d) for d in raw.get("distances", [])],
                   baseline_statistics=raw.get("baseline_statistics"))
