"""The custom properties our components record on their output artifacts in ML Metadata, as typed records.

The executors write them (`record.write(artifact)`) and pipeline/summary.py reads them back from the store
(`Record.read(mlmd_artifact)`): each name is a field here and nowhere else. Lists and mappings are stored as
JSON strings, booleans as 0/1, and None is not stored.
"""
from __future__ import annotations

import dataclasses
import json
from typing import Any, Dict, List, Optional

# The Evaluator's ModelBlessing property (TFX's name).
BLESSED = "blessed"
# Written by TFX's pusher executor methods (_MarkPushed / _MarkNotPushed), read like ours.
TFX_PUSH_PROPERTIES = ("pushed", "pushed_destination", "pushed_version")


class _Record:
    """write/read for a dataclass of custom properties."""

    def write(self, artifact, skip=()) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if field.name in skip or value is None:
                continue
            if isinstance(value, bool):
                artifact.set_int_custom_property(field.name, int(value))
            elif isinstance(value, int):
                artifact.set_int_custom_property(field.name, value)
            elif isinstance(value, float):
                artifact.set_float_custom_property(field.name, value)
            elif isinstance(value, str):
                artifact.set_string_custom_property(field.name, value)
            else:
                artifact.set_string_custom_property(field.name, json.dumps(value, sort_keys=True))

    @classmethod
    def read(cls, mlmd_artifact) -> "_Record":
        """From a metadata_store_pb2.Artifact; properties it lacks keep their defaults."""
        values: Dict[str, Any] = {}
        defaults = cls()
        for field in dataclasses.fields(cls):
            if field.name not in mlmd_artifact.custom_properties:
                continue
            stored = mlmd_artifact.custom_properties[field.name]
            value = getattr(stored, stored.WhichOneof("value"))
            default = getattr(defaults, field.name)
            if isinstance(default, bool):
                value = bool(value)
            elif isinstance(default, (list, dict)):
                value = json.loads(value)
            values[field.name] = value
        return cls(**values)


@dataclasses.dataclass
class PushedModelProperties(_Record):
    """The QuantizingPusher's PushedModel artifact."""
    pushed: bool = False
    pushed_destination: Optional[str] = None
    pushed_version: Optional[str] = None
    pushed_kind: Optional[str] = None  # serving.layout.QUANTIZED or FLOAT
    already_pushed: bool = False
    pushed_quantized_model_dir: Optional[str] = None
    pushed_float_model_dir: Optional[str] = None
    quantization_method: Optional[str] = None
    quantization_results: Dict[str, Any] = dataclasses.field(default_factory=dict)  # gates.Comparison.to_json()
    quantization_gate_failures: List[str] = dataclasses.field(default_factory=list)
    push_blocked_reasons: List[str] = dataclasses.field(default_factory=list)
    # Flat copies of the main results, to query ML Metadata by.
    size_ratio: Optional[float] = None
    metric_drop: Optional[float] = None
    max_abs_prediction_diff: Optional[float] = None
    label_flip_rate: Optional[float] = None
    latency_ratio_batch_1: Optional[float] = None
    latency_ratio_batch_256: Optional[float] = None


@dataclasses.dataclass
class AcceptedStatisticsProperties(_Record):
    """The DataGate's AcceptedStatistics artifact."""
    split_names: Optional[str] = None  # TFX's split-names encoding
    statistics_id: Optional[int] = None  # the ExampleStatistics artifact accepted (components/baselines.py)
    warnings: List[str] = dataclasses.field(default_factory=list)
