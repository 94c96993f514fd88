"""ColumnarEvaluator's executor: the class TFX's launcher imports for the Evaluator node, cached or not. Its
work (components/evaluator/evaluate.py) imports TFMA's evaluators, metrics and writers (with them nltk,
scikit-learn and scipy.stats, ~0.6 s), and is imported when the executor runs, so a run that takes the
Evaluator from cache does not import them."""
from __future__ import annotations

from typing import Any, Dict, List

from tfx import types
from tfx.dsl.components.base import base_beam_executor


class Executor(base_beam_executor.BaseBeamExecutor):
    """Do(): the Evaluator's inputs, outputs and exec properties (an EvalConfig is required)."""

    def Do(self, input_dict: Dict[str, List[types.Artifact]], output_dict: Dict[str, List[types.Artifact]],
           exec_properties: Dict[str, Any]) -> None:
        from components.evaluator.evaluate import evaluate

        self._log_startup(input_dict, output_dict, exec_properties)
        evaluate(self._make_beam_pipeline, input_dict, output_dict, exec_properties)
