"""QuantizingPusher: pushes a blessed model as a quantized SavedModel when the quantized form passes its gates
against the float model on the eval split, else (by default) the float model itself; the float model also
goes beside it to float_serving_dir."""
from __future__ import annotations

import json
from typing import Any, Dict

from tfx.dsl.components.base import base_component, executor_spec
from tfx.types import Channel, standard_artifacts
from tfx.types.component_spec import ChannelParameter, ComponentSpec, ExecutionParameter

from components.quantizer.executor import Executor
from config.sections import code_fingerprint

# The code the pusher runs (the quantizer rebuilds and exports the model with the trainer's code): its hash is
# an exec property, so an upgrade of any of it re-runs the Pusher instead of taking it from cache.
CODE_PACKAGES = ("config", "components.quantizer", "preprocessing", "trainer", "serving")


class QuantizingPusherSpec(ComponentSpec):
    PARAMETERS = {
        "serving_dir": ExecutionParameter(type=str),
        "float_serving_dir": ExecutionParameter(type=str, optional=True),
        "method": ExecutionParameter(type=str),
        "on_gate_failure": ExecutionParameter(type=str),  # push_float | push_nothing
        "gates": ExecutionParameter(type=str),  # JSON of components.quantizer.gates.Gates
        "metric": ExecutionParameter(type=str),
        "custom_config": ExecutionParameter(type=str),  # JSON: config.CustomConfig.to_json()
        "code_fingerprint": ExecutionParameter(type=str),  # of CODE_PACKAGES
    }
    INPUTS = {
        "model": ChannelParameter(type=standard_artifacts.Model),
        "model_blessing": ChannelParameter(type=standard_artifacts.ModelBlessing),
        "transform_graph": ChannelParameter(type=standard_artifacts.TransformGraph),
        "examples": ChannelParameter(type=standard_artifacts.Examples),
    }
    OUTPUTS = {"pushed_model": ChannelParameter(type=standard_artifacts.PushedModel)}


class QuantizingPusher(base_component.BaseComponent):
    SPEC_CLASS = QuantizingPusherSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(Executor)

    def __init__(self, model, model_blessing, transform_graph, examples, serving_dir: str,
                 float_serving_dir: str, method: str, on_gate_failure: str, gates: Dict[str, Any], metric: str,
                 custom_config: Dict[str, Any]):
        super().__init__(spec=QuantizingPusherSpec(
            model=model, model_blessing=model_blessing, transform_graph=transform_graph, examples=examples,
            serving_dir=serving_dir, float_serving_dir=float_serving_dir, method=method,
            on_gate_failure=on_gate_failure,
            gates=json.dumps(gates, sort_keys=True), metric=metric,
            custom_config=json.dumps(custom_config, sort_keys=True),
            code_fingerprint=code_fingerprint(CODE_PACKAGES),
            pushed_model=Channel(type=standard_artifacts.PushedModel)))
