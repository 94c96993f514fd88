"""Reading a Parquet payload (ExampleGen's `data.payload: parquet`) as Arrow RecordBatches in Beam, for
StatisticsGen (components/statistics_gen) and Transform (components/transform).

tfx-bsl's ParquetTFXIO.BeamSource ends with its read telemetry, `ProfileRecordBatches`: for a random 10% of the
RecordBatches it walks every row in Python to update Beam distributions (values per cell, columns per row).
On the taxi table that cost ~1.4 s per sampled 65k-row row group, so StatisticsGen over 1M rows took anywhere
from 4.4 to 8.9 s depending on how many row groups the coin picked (README, "What each step does").
ParquetPayloadTFXIO is ParquetTFXIO with the same read, columns, schema, arrow schema, tensor
representations and projection, and a BeamSource without that telemetry. Nothing that the steps compute
from the batches changes (tests/payload_test.py compares the batches and the statistics).

TFX's Transform reads through the same ParquetTFXIO, made inside a TransformProcessor that Executor.Do
instantiates by its module name; components/transform's executor has it make a ParquetPayloadTFXIO instead.

The read's PCollections are typed (pa.Table row groups, then pa.RecordBatch), with coders that encode them
as Arrow IPC streams and estimate their size from the Arrow buffers. Beam sizes a sample of every
PCollection's elements with its coder (the first ten of each, fewer after): an untyped row group was pickled
whole (~36 MB per 65k-row taxi row group), and TFDV's RecordBatch coder, which has no estimate of its own,
wrote each sampled batch out as an IPC stream. ArrowRecordBatchCoder encodes exactly as TFDV's does
(`tensorflow_data_validation.types`) and replaces its registration, for every pa.RecordBatch PCollection.
"""
from __future__ import annotations

from typing import List, Optional

import apache_beam as beam
import pyarrow as pa
import tensorflow_data_validation.types  # noqa: F401 - registers TFDV's RecordBatch coder, replaced below
from tfx_bsl.tfxio import parquet_tfxio
from tfx_bsl.tfxio import tfxio as tfxio_module


_IPC_OPTIONS = pa.ipc.IpcWriteOptions(use_threads=False)  # as TFDV's coder writes


class _ArrowStreamCoder(beam.coders.Coder):
    """An Arrow value as an Arrow IPC stream; its size estimated from its buffers (`nbytes`)."""
    arrow_type: type

    def _write(self, writer: pa.ipc.RecordBatchStreamWriter, value) -> None:
        raise NotImplementedError

    def encode(self, value) -> bytes:
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, value.schema, options=_IPC_OPTIONS) as writer:
            self._write(writer, value)
        return sink.getvalue().to_pybytes()

    def estimate_size(self, value) -> int:
        return value.nbytes

    def to_type_hint(self):
        return self.arrow_type


class ArrowRecordBatchCoder(_ArrowStreamCoder):
    """A RecordBatch as a one-batch stream: TFDV's encoding, byte for byte."""
    arrow_type = pa.RecordBatch

    def _write(self, writer: pa.ipc.RecordBatchStreamWriter, value: pa.RecordBatch) -> None:
        writer.write_batch(value)

    def decode(self, encoded: bytes) -> pa.RecordBatch:
        reader = pa.ipc.open_stream(encoded)
        batch = reader.read_next_batch()
        try:
            reader.read_next_batch()
        except StopIteration:
            return batch
        raise ValueError("expected one RecordBatch in the encoded stream")


class ArrowTableCoder(_ArrowStreamCoder):
    """A Table (a Parquet row group)."""
    arrow_type = pa.Table

    def _write(self, writer: pa.ipc.RecordBatchStreamWriter, value: pa.Table) -> None:
        writer.write_table(value)

    def decode(self, encoded: bytes) -> pa.Table:
        return pa.ipc.open_stream(encoded).read_all()


# After TFDV's own registration (made when tensorflow_data_validation.types is imported), which this replaces.
beam.coders.registry.register_coder(pa.RecordBatch, ArrowRecordBatchCoder)
beam.coders.registry.register_coder(pa.Table, ArrowTableCoder)


def _to_batches(table: pa.Table, batch_size: Optional[int]) -> List[pa.RecordBatch]:
    return table.to_batches(batch_size)


@beam.ptransform_fn
def ReadRecordBatches(root: beam.Pipeline, file_patterns: List[str], columns: Optional[List[str]] = None,
                      batch_size: Optional[int] = None, min_bundle_size: int = 0,
                      validate: bool = True) -> beam.PCollection:
    """The Parquet files' rows as RecordBatches of at most `batch_size` rows (None: a row group each) of
    `columns` (None: all), read as ParquetTFXIO reads them."""
    reads = [root | f"ReadFromParquetBatched[{index}]" >> beam.io.ReadFromParquetBatched(
        file_pattern=pattern, min_bundle_size=min_bundle_size, validate=validate, columns=columns
    ).with_output_types(pa.Table) for index, pattern in enumerate(file_patterns)]
    return (reads | "FlattenPCollsFromPatterns" >> beam.Flatten().with_output_types(pa.Table)
            | "ToRecordBatch" >> beam.FlatMap(_to_batches, batch_size).with_output_types(pa.RecordBatch))


class ParquetPayloadTFXIO(parquet_tfxio.ParquetTFXIO):
    """ParquetTFXIO whose BeamSource reads without the per-row telemetry (see the module docstring)."""

    def BeamSource(self, batch_size: Optional[int] = None) -> beam.PTransform:
        return ReadRecordBatches(self._file_pattern, self._column_names, batch_size,  # pylint: disable=protected-access
                                 self._min_bundle_size, self._validate)


def without_read_telemetry(tfxio: tfxio_module.TFXIO) -> tfxio_module.TFXIO:
    """`tfxio` itself, unless it is tfx-bsl's ParquetTFXIO: then a ParquetPayloadTFXIO of the same files,
    columns, schema and telemetry descriptors."""
    if type(tfxio) is not parquet_tfxio.ParquetTFXIO:  # pylint: disable=unidiomatic-typecheck
        return tfxio
    # pylint: disable=protected-access
    return ParquetPayloadTFXIO(tfxio._file_pattern, column_names=tfxio._column_names,
                               min_bundle_size=tfxio._min_bundle_size, schema=tfxio._schema,
                               validate=tfxio._validate, telemetry_descriptors=tfxio.telemetry_descriptors)

