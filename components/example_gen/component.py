"""ColumnarCsvExampleGen: TFX's CsvExampleGen (same spec, inputs, outputs and split logic) with a columnar
executor. Its examples, and so its splits, are byte for byte CsvExampleGen's (tests/example_gen_test.py)."""
from __future__ import annotations

from tfx.components import CsvExampleGen
from tfx.dsl.components.base import executor_spec

from components.example_gen.executor import Executor


class ColumnarCsvExampleGen(CsvExampleGen):
    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(Executor)
