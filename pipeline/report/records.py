"""The typed records of a run report (pipeline/report): what collect.py reads from ML Metadata and
artifacts.py from the run's artifacts, and what render.py and model_card.py show."""
from __future__ import annotations

import dataclasses
from typing import Any, Dict, List, Optional, Tuple

from components.data_gate.checks import Anomaly, Distance
from components.properties import PushedModelProperties
from config import PipelineConfig


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
