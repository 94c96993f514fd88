"""Transform: TFX's component (spec, inputs, outputs, exec properties) with components/transform's executor,
which traces the preprocessing_fn once for TFX's four inspections instead of four times and
reads a Parquet payload without tfx-bsl's per-row read telemetry."""
from __future__ import annotations

from tfx.components import Transform as TfxTransform
from tfx.dsl.components.base import executor_spec

from components.transform.executor import Executor


class Transform(TfxTransform):
    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(Executor)
