"""StatisticsGen: TFX's component (spec, inputs, outputs, exec properties) with components/statistics_gen's
executor, which reads a Parquet payload without tfx-bsl's per-row read telemetry."""
from __future__ import annotations

from tfx.components import StatisticsGen as TfxStatisticsGen
from tfx.dsl.components.base import executor_spec

from components.statistics_gen.executor import Executor


class StatisticsGen(TfxStatisticsGen):
    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(Executor)
