"""The Trainer's executor on every worker of a multi-worker cluster.

TFX's GenericExecutor calls run_fn, then fails unless the model was exported to the Model artifact's URI.
Only the chief exports (trainer/task.py): a non-chief worker, run by the same executor (each Vertex AI
Training replica runs it), failed that check ("run_fn failed to generate model") unless the chief happened
to have exported first, into the shared URI. Found by tests/multi_worker_test.py.
"""
from __future__ import annotations

from typing import Any, Dict, List

from absl import logging
from tfx import types
from tfx.components.trainer import executor as tfx_trainer_executor
from tfx.components.util import udf_utils

from trainer import strategy


class WorkerExecutor(tfx_trainer_executor.GenericExecutor):
    """TFX's GenericExecutor for the chief (or a single worker); a non-chief worker runs run_fn, which trains
    in sync with the chief and exports nothing, and checks nothing."""

    def Do(self, input_dict: Dict[str, List[types.Artifact]], output_dict: Dict[str, List[types.Artifact]],
           exec_properties: Dict[str, Any]) -> None:
        if strategy.is_chief(strategy.tf_config()):
            super().Do(input_dict, output_dict, exec_properties)
            return
        fn_args = self._GetFnArgs(input_dict, output_dict, exec_properties)
        udf_utils.get_fn(exec_properties, "run_fn")(fn_args)
        logging.info("Trainer: non-chief worker finished; the chief exports the model")
