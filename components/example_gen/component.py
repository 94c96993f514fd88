"""ColumnarCsvExampleGen: TFX's CsvExampleGen (same spec, inputs, outputs and split logic) with a columnar
executor. Its examples, and so its splits, are byte for byte CsvExampleGen's (tests/example_gen_test.py).
ParquetExampleGen: the same for Parquet files. Both also write a Parquet payload (output_data_format
FORMAT_PARQUET), which CsvExampleGen's constructor does not offer."""
from __future__ import annotations

from typing import Optional

from tfx.components import CsvExampleGen
from tfx.components.example_gen.component import FileBasedExampleGen
from tfx.dsl.components.base import executor_spec
from tfx.proto import example_gen_pb2, range_config_pb2

from components.example_gen.executor import Executor, ParquetExecutor


class ColumnarCsvExampleGen(CsvExampleGen):
    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(Executor)

    def __init__(self, input_base: Optional[str] = None, input_config: Optional[example_gen_pb2.Input] = None,
                 output_config: Optional[example_gen_pb2.Output] = None,
                 range_config: Optional[range_config_pb2.RangeConfig] = None,
                 output_data_format: int = example_gen_pb2.FORMAT_TF_EXAMPLE,
                 output_file_format: int = example_gen_pb2.FORMAT_TFRECORDS_GZIP):
        FileBasedExampleGen.__init__(  # pylint: disable=non-parent-init-called
            self, input_base=input_base, input_config=input_config, output_config=output_config,
            range_config=range_config, output_data_format=output_data_format,
            output_file_format=output_file_format)


class ParquetExampleGen(FileBasedExampleGen):
    """FileBasedExampleGen over Parquet files (pyarrow batches, C++ encoding)."""
    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(ParquetExecutor)
