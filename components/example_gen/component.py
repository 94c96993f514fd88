"""ColumnarCsvExampleGen: TFX's CsvExampleGen (same spec, inputs, outputs and split logic) with a columnar
executor. Its examples, and so its splits, are byte for byte CsvExampleGen's (tests/example_gen_test.py).
ParquetExampleGen: the same for Parquet files."""
from __future__ import annotations

from tfx.components import CsvExampleGen
from tfx.components.example_gen.component import FileBasedExampleGen
from tfx.dsl.components.base import executor_spec

from components.example_gen.executor import Executor, ParquetExecutor


class ColumnarCsvExampleGen(CsvExampleGen):
    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(Executor)


class ParquetExampleGen(FileBasedExampleGen):
    """FileBasedExampleGen over Parquet files (pyarrow batches, C++ encoding)."""
    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(ParquetExecutor)
