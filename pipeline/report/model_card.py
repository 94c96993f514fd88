"""The model card of a run: the config's `model_card:` section (what no run can measure) plus what the run
measured (data, features and their treatments, metrics, limitations found). The report shows it, and
`model_card.md` (the same card in Markdown) goes beside the report and into the pushed model's
assets.extra/, where TF Serving ignores it."""
from __future__ import annotations

import dataclasses
from typing import List, Optional, Tuple

from config import listed
from pipeline.report.records import MetricRow, RunReport, SliceRow

# Slices in the card: the weakest ones; and at most this many named among the limitations.
CARD_SLICES = 5
# A feature counts as drifted or skewed for the card when its distance reaches this share of the threshold
# (the gate itself blocks only above the threshold).
NEAR_THRESHOLD = 0.5


@dataclasses.dataclass
class ModelCard:
    name: str
    version: Optional[str]
    kind: Optional[str]  # quantized | float
    overview: str
    intended_use: str
    owners: Tuple[str, ...]
    ethical_considerations: str
    data_source: str
    splits: List[Tuple[str, int]]  # (split, examples)
    features: List[Tuple[str, str]]  # (feature, treatment as a sentence)
    label: str
    task: str
    metrics: List[MetricRow]
    weakest_slices: List[SliceRow]
    slice_count: int
    limitations: List[str]  # the config's, then the measured ones


def _treatment(report: RunReport, name: str, treatment: str) -> str:
    analyzer = next((a for a in report.analyzers if a.name == name), None)
    if treatment == "zscore":
        return (f"z-score ((x - {analyzer.mean:.4g}) / {analyzer.std:.4g})" if analyzer and analyzer.std
                else "z-score")
    if treatment == "minmax":
        return (f"min-max to [0, 1] over [{analyzer.min:.4g}, {analyzer.max:.4g}]"
                if analyzer and analyzer.min is not None else "min-max to [0, 1]")
    if treatment == "vocab":
        return (f"vocabulary of {analyzer.vocabulary_size} values" if analyzer and analyzer.vocabulary_size
                is not None else "vocabulary")
    return "passed through"


def measured_limitations(report: RunReport) -> List[str]:
    out = []
    evaluation = report.evaluation
    if evaluation is not None:
        for row in evaluation.rows:
            if row.threshold is not None and (row.value < row.threshold if row.higher_is_better
                                              else row.value > row.threshold):
                out.append(f"{row.name} {row.value:.4f} is below the threshold {row.threshold}")
            if row.constant is not None and (row.value <= row.constant if row.higher_is_better
                                             else row.value >= row.constant):
                out.append(f"{row.name} {row.value:.4f} is no better than a constant predictor ({row.constant:.4f})")
        below = [s for s in evaluation.slices if s.below_threshold]
        if below:
            named = listed(f"{s.column}={s.value} ({s.metric:.3f}, {s.count} examples)" for s in below)
            out.append(f"{len(below)} slice(s) below the {evaluation.metric} threshold: {named}")
        if evaluation.example_count is not None and evaluation.example_count < 1000:
            out.append(f"evaluated on {evaluation.example_count} examples only: metrics are uncertain "
                       f"(see the intervals)")
    for feature in report.features:
        for distance in feature.distances:
            if distance.value >= NEAR_THRESHOLD * distance.threshold:
                what = ("drifted from the last accepted data" if distance.comparison == "drift"
                        else "differs between the train and eval splits")
                out.append(f"{feature.name} {what}: {distance.measure} {distance.value:.3f} "
                           f"(gate threshold {distance.threshold})")
    if report.pushed is not None:
        out += [f"quantized model failed a gate, the float model was pushed: {f}"
                for f in report.pushed.quantization_gate_failures]
    return out


def build(report: RunReport) -> ModelCard:
    config, card = report.config, report.config.model_card
    counts = {}
    for feature in report.features:
        for split, stats in feature.splits.items():
            if split != "accepted":
                counts[split] = stats.count
    data = config.data
    source = data.query if data.format == "bigquery" else data.path
    if data.pattern:
        source += f" (files matching {data.pattern}, rolling window {data.rolling_window})"
    if report.spans and data.pattern:
        source += f"; trained on span{'s' if len(report.spans) > 1 else ''} {', '.join(map(str, report.spans))}"
    pushed = report.pushed if report.pushed is not None and report.pushed.pushed else None
    return ModelCard(
        name=config.name, version=pushed.pushed_version if pushed else None,
        kind=pushed.pushed_kind if pushed else None, overview=card.overview, intended_use=card.intended_use,
        owners=card.owners, ethical_considerations=card.ethical_considerations,
        data_source=f"{data.format}: {source}", splits=sorted(counts.items()),
        features=[(f.name, _treatment(report, f.name, f.treatment)) for f in config.features],
        label=config.label.column, task=config.label.task,
        metrics=report.evaluation.rows if report.evaluation else [],
        weakest_slices=report.evaluation.slices[:CARD_SLICES] if report.evaluation else [],
        slice_count=len(report.evaluation.slices) if report.evaluation else 0,
        limitations=list(card.limitations) + measured_limitations(report))
