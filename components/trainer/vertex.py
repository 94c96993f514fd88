"""TFX's Google Cloud (Vertex AI Training) Trainer whose replicas run the multi-worker aware executor.

Imported only for compiled pipelines that train on Vertex AI (it imports the Google Cloud extensions)."""
from tfx.dsl.components.base import executor_spec
from tfx.extensions.google_cloud_ai_platform.trainer import executor as vertex_executor
from tfx.extensions.google_cloud_ai_platform.trainer.component import Trainer as TfxVertexTrainer

from components.trainer.executor import WorkerExecutor


class VertexJobExecutor(vertex_executor.GenericExecutor):
    """Starts the Vertex AI custom job; each of its replicas runs WorkerExecutor."""

    def _GetExecutorClass(self):
        return WorkerExecutor


class VertexTrainer(TfxVertexTrainer):
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(VertexJobExecutor)
