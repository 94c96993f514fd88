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

from typing import Dict, List, Optional, Tuple

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems
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


def matched_files(file_patterns: List[str], validate: bool = True) -> List[str]:
    """The files the patterns match (local or remote, through Beam's FileSystems), in order; with `validate`,
    a pattern that matches none is an error naming it, as Beam's Parquet source says at construction."""
    paths = []
    for pattern, result in zip(file_patterns, FileSystems.match(list(file_patterns))):
        found = sorted(metadata.path for metadata in result.metadata_list)
        if validate and not found:
            raise IOError(f"No files found based on the file pattern {pattern}")
        paths.extend(found)
    return paths


# A RecordBatch under its key, or the key's marker (None); typed, so Beam sizes samples with the Arrow coder.
KeyedRecordBatch = Tuple[str, Optional[pa.RecordBatch]]


def _read_file(element: Tuple[str, Optional[str]], columns: Dict[str, Optional[List[str]]],
               batch_size: Optional[int]):
    """A (key, file) pair's rows as (key, RecordBatch) pairs, row group by row group as Beam's Parquet source
    reads them (then cut as ReadRecordBatches cuts them); a (key, None) marker passes as it is."""
    key, path = element
    if path is None:
        yield key, None
        return
    with FileSystems.open(path) as f:  # as Beam's Parquet source opens a file
        parquet_file = pq.ParquetFile(f)
        for index in range(parquet_file.num_row_groups):
            for batch in _to_batches(parquet_file.read_row_group(index, columns[key]), batch_size):
                yield key, batch


@beam.ptransform_fn
def ReadKeyedRecordBatches(root: beam.Pipeline, tfxios: Dict[str, "ParquetPayloadTFXIO"],
                           batch_size: Optional[int] = None) -> beam.PCollection:
    """Several Parquet payloads read in one step, each under its key (StatisticsGen: its splits): (key,
    RecordBatch) pairs, the batches each TFXIO's BeamSource gives, and one (key, None) marker per key, so a
    key with no rows is still seen.

    The files are matched when the pipeline is built and each is read whole by one DoFn call: Beam's Create
    spreads the (key, file) pairs over workers (its reshuffle), so a distributed runner reads files in
    parallel, not parts of one file. On DirectRunner this is one stage for every split, where a
    ReadFromParquetBatched per split is two stages each (the source's split, then its read)."""
    files = [(key, None) for key in tfxios] + [
        (key, path) for key, tfxio in tfxios.items()
        for path in matched_files(tfxio._file_pattern, tfxio._validate)]  # pylint: disable=protected-access
    columns = {key: tfxio._column_names for key, tfxio in tfxios.items()}  # pylint: disable=protected-access
    return (root | "ParquetFiles" >> beam.Create(files)
            | "ReadRowGroups" >> beam.FlatMap(_read_file, columns, batch_size).with_output_types(KeyedRecordBatch))


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

