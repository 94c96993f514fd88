"""TFX's Trainer with the multi-worker aware executor (executor.py)."""
from tfx.components import Trainer as TfxTrainer
from tfx.dsl.components.base import executor_spec

from components.trainer.executor import WorkerExecutor


class Trainer(TfxTrainer):
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(WorkerExecutor)
