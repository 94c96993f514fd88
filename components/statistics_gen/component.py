"""StatisticsGen: TFX's component (spec, inputs, outputs, exec properties) with components/statistics_gen's
executor: each split's statistics in one Beam combine (one_pass.py), and a Parquet payload read without
tfx-bsl's per-row read telemetry. TfdvStatisticsGen (validation.one_pass_statistics: false) runs TFDV's
GenerateStatistics per split, as TFX does (the pipeline gives it the node id StatisticsGen)."""
from __future__ import annotations

from tfx.components import StatisticsGen as TfxStatisticsGen
from tfx.dsl.components.base import executor_spec

from components.statistics_gen.executor import Executor, TfdvExecutor


class StatisticsGen(TfxStatisticsGen):
    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(Executor)


class TfdvStatisticsGen(TfxStatisticsGen):
    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(TfdvExecutor)
