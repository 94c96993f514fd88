"""DataGate: turns ExampleValidator's anomalies (plus missing-cell, config, drift and skew checks) into a
failed component, so that nothing downstream runs on bad data."""
from __future__ import annotations

import json
from typing import Any, Dict, Sequence, Tuple

from tfx.components.schema_gen.import_schema_gen.component import ImportSchemaGen
from tfx.dsl.components.base import base_component, executor_spec
from tfx.types import Artifact, Channel, standard_artifacts
from tfx.types.component_spec import ChannelParameter, ComponentSpec, ExecutionParameter
from tfx.types.standard_component_specs import ImportSchemaGenSpec

from components.data_gate.executor import Executor
from config.sections import code_fingerprint

# The code the DataGate runs: its hash is an exec property, so an upgrade of it re-runs the gate.
CODE_PACKAGES = ("config", "components.data_gate")


class AcceptedStatistics(Artifact):
    """Statistics of data that passed the gate (`Split-<name>/FeatureStats.pb`, split names in the custom
    property `split_names`): the drift baseline of the next run. No typed properties, so that Kubeflow V2
    compiles it as a generic artifact."""
    TYPE_NAME = "tfxp.AcceptedStatistics"


class DataGateSpec(ComponentSpec):
    PARAMETERS = {
        "custom_config": ExecutionParameter(type=str),  # JSON: config.CustomConfig.to_json()
        "drift": ExecutionParameter(type=str),  # JSON [[feature, threshold], ...]
        "skew": ExecutionParameter(type=str),
        "code_fingerprint": ExecutionParameter(type=str),  # of CODE_PACKAGES
    }
    INPUTS = {
        "statistics": ChannelParameter(type=standard_artifacts.ExampleStatistics),
        "schema": ChannelParameter(type=standard_artifacts.Schema),
        "anomalies": ChannelParameter(type=standard_artifacts.ExampleAnomalies),
        "baseline_statistics": ChannelParameter(type=AcceptedStatistics, optional=True),
    }
    OUTPUTS = {"accepted_statistics": ChannelParameter(type=AcceptedStatistics)}


class DataGate(base_component.BaseComponent):
    SPEC_CLASS = DataGateSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(Executor)

    def __init__(self, statistics, schema, anomalies, custom_config: Dict[str, Any],
                 drift: Sequence[Tuple[str, float]] = (), skew: Sequence[Tuple[str, float]] = (),
                 baseline_statistics=None):
        super().__init__(spec=DataGateSpec(
            statistics=statistics, schema=schema, anomalies=anomalies, baseline_statistics=baseline_statistics,
            custom_config=json.dumps(custom_config, sort_keys=True),
            drift=json.dumps([list(t) for t in drift]), skew=json.dumps([list(t) for t in skew]),
            code_fingerprint=code_fingerprint(CODE_PACKAGES),
            accepted_statistics=Channel(type=AcceptedStatistics)))


class FrozenSchemaGenSpec(ImportSchemaGenSpec):
    PARAMETERS = {**ImportSchemaGenSpec.PARAMETERS, "schema_fingerprint": ExecutionParameter(type=str)}


class FrozenSchemaGen(ImportSchemaGen):
    """ImportSchemaGen (same executor) whose cache key includes the schema file's content hash: the stock
    component's only parameter is the path, so an edited schema file would otherwise come from cache."""
    SPEC_CLASS = FrozenSchemaGenSpec

    def __init__(self, schema_file: str, schema_fingerprint: str):
        base_component.BaseComponent.__init__(self, spec=FrozenSchemaGenSpec(
            schema_file=schema_file, schema_fingerprint=schema_fingerprint,
            schema=Channel(type=standard_artifacts.Schema)))
