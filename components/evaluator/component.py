"""ColumnarEvaluator: TFX's Evaluator (the same EvalConfig, inputs, outputs, TFMA output files and blessing)
with batch-at-a-time metrics (components/evaluator/evaluate.py). `evaluation.evaluator: tfma` uses the stock
Evaluator instead."""
from __future__ import annotations

from typing import Optional

import tensorflow_model_analysis as tfma
from tfx.dsl.components.base import base_component, executor_spec
from tfx.types import Channel, standard_artifacts, standard_component_specs
from tfx.types.component_spec import ExecutionParameter
from tfx.utils import json_utils

from components.evaluator.executor import Executor
from config.sections import code_fingerprint

CODE_PACKAGES = ("config", "components.evaluator")


class ColumnarEvaluatorSpec(standard_component_specs.EvaluatorSpec):
    PARAMETERS = {
        **standard_component_specs.EvaluatorSpec.PARAMETERS,
        "task": ExecutionParameter(type=str),  # binary | multiclass | regression: how predictions are read
        "code_fingerprint": ExecutionParameter(type=str),  # of CODE_PACKAGES: a code change re-evaluates
    }


class ColumnarEvaluator(base_component.BaseComponent):
    SPEC_CLASS = ColumnarEvaluatorSpec
    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(Executor)

    def __init__(self, examples, model, eval_config: tfma.EvalConfig, task: str, baseline_model=None,
                 example_splits: Optional[list] = None):
        super().__init__(spec=ColumnarEvaluatorSpec(
            examples=examples, model=model, baseline_model=baseline_model, eval_config=eval_config,
            example_splits=json_utils.dumps(example_splits), task=task,
            code_fingerprint=code_fingerprint(CODE_PACKAGES),
            evaluation=Channel(type=standard_artifacts.ModelEvaluation),
            blessing=Channel(type=standard_artifacts.ModelBlessing)))
