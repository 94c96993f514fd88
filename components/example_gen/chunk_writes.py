"""How ExampleGen's chunks of rows travel through Beam's shuffle and are written, for both payloads
(components/example_gen/executor.py makes the chunks):

- the Parquet payload: chunks of scalar cells packed as compressed Arrow IPC streams (`packed_table`, codec
  from `shuffle_codec`), buffered by `_ParquetFileWriter` into row groups that are made payload lists
  (cell_encoding.payload_batch) and written on the file's own thread, in `data_parquet-SSSSS-of-NNNNN.parquet`
  (`WriteParquetChunks`);
- tf.Examples: chunks of serialized records framed as TFRecords and deflated for the shuffle
  (`packed_frames`), written as TFX's WriteSplit names its gzipped files (`WriteChunks`)."""
from __future__ import annotations

import concurrent.futures
import os
import struct
import zlib
from typing import Any, Callable, Dict, List, Optional

import apache_beam as beam
from apache_beam.io import filebasedsink
from apache_beam.io.tfrecordio import _TFRecordUtil
from tfx.components.example_gen import write_split

from components.example_gen import cell_encoding, csv_blocks
from preprocessing.payload import PARQUET_SUFFIX


def shuffle_codec(input_bytes: int) -> str:
    """The compression of the chunks that move through the shuffle (packed_table), which the DirectRunner
    holds whole: lz4 while the input takes at most csv_blocks.KEEP_BYTES (1M taxi rows: packing and unpacking
    every chunk ~0.55 s against ~1.25 s with zstd), zstd past it, where memory is what runs out first (10M taxi
    rows, ExampleGen's executor alone: peak RSS 2,951 MB with zstd, 3,808 MB with lz4)."""
    return "lz4" if input_bytes <= csv_blocks.KEEP_BYTES else "zstd"


TYPES_METADATA = b"tfxp_cell_types"  # a packed chunk's column types (csv_blocks' kinds), as JSON


def packed_table(cells, kinds: Dict[str, str], codec: str) -> bytes:
    """A RecordBatch of scalar cells and their types as the bytes of an Arrow IPC stream with buffers
    compressed by `codec` (shuffle_codec): what moves through the shuffle. 1M taxi rows: 80 MB with lz4,
    57 MB with zstd, 177 MB uncompressed (snappy Parquet files of payload lists, before: ~1.7 s to pack and
    unpack, 42 MB)."""
    import json

    import pyarrow as pa

    cells = cells.replace_schema_metadata({TYPES_METADATA: json.dumps(kinds, sort_keys=True).encode()})
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, cells.schema, options=pa.ipc.IpcWriteOptions(compression=codec)) as writer:
        writer.write_batch(cells)
    return sink.getvalue().to_pybytes()


def unpacked_cells(packed: bytes):
    """packed_table's chunk: (Table of its scalar cells, their types)."""
    import json

    import pyarrow as pa

    table = pa.ipc.open_stream(pa.BufferReader(packed)).read_all()
    return table, json.loads(table.schema.metadata[TYPES_METADATA])


def payload_table(cells, kinds: Dict[str, str]):
    """A Table of scalar cells as a Table of the Parquet payload (cell_encoding.payload_batch)."""
    import pyarrow as pa

    return pa.Table.from_batches([cell_encoding.payload_batch(batch, kinds) for batch in cells.to_batches()],
                                 schema=cell_encoding.payload_schema(kinds))


def unpacked_table(packed: bytes):
    """packed_table's chunk as a Table of the Parquet payload."""
    return payload_table(*unpacked_cells(packed))


class _ParquetFileWriter:
    """One output file: chunks of scalar cells buffered into row groups of at least ROW_GROUP_ROWS rows, each
    made payload lists and written on the file's own thread (pyarrow releases the GIL there) while the next
    chunks are unpacked; the Parquet writer opens on the first, with the payload schema of the cells' types
    (every chunk of a split has the same ones). 1M taxi rows: making payload lists a row group at a time
    instead of a chunk at a time, and on that thread, took the executor alone from ~3.3 to ~2.8 s."""
    ROW_GROUP_ROWS = 65_536

    def __init__(self, handle, empty_schema: Callable[[], Any]):
        self.handle, self.empty_schema, self.writer, self.tables, self.rows = handle, empty_schema, None, [], 0
        self.kinds: Optional[Dict[str, str]] = None
        self.thread = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="parquet-writer")
        self.written: Optional[concurrent.futures.Future] = None

    def write(self, cells, kinds: Dict[str, str]) -> None:
        self.tables.append(cells)
        self.kinds = kinds
        self.rows += cells.num_rows
        if self.rows >= self.ROW_GROUP_ROWS:
            self.flush()

    def flush(self) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        if not self.tables:
            return
        cells = pa.concat_tables(self.tables)
        self.tables, self.rows = [], 0
        self.wait()  # row groups in order, one at a time
        self.writer = self.writer or pq.ParquetWriter(self.handle, cell_encoding.payload_schema(self.kinds),
                                                      compression="snappy")
        self.written = self.thread.submit(self._write_row_group, cells.combine_chunks(), self.kinds)

    def _write_row_group(self, cells, kinds: Dict[str, str]) -> None:
        self.writer.write_table(payload_table(cells, kinds), row_group_size=cells.num_rows)

    def wait(self) -> None:
        """Until the row group being written is written; raises what writing it raised."""
        if self.written is not None:
            written, self.written = self.written, None
            written.result()

    def close(self) -> None:
        import pyarrow.parquet as pq

        try:
            self.flush()
            self.wait()
        finally:
            self.thread.shutdown(wait=True)
        if self.writer is None:  # no rows: a valid file with the columns' types
            self.writer = pq.ParquetWriter(self.handle, self.empty_schema(), compression="snappy")
        self.writer.close()
        self.handle.close()


class _ParquetChunkSink(filebasedsink.FileBasedSink):
    """Packed chunks (packed_table) written as Parquet files, named as TFX's WriteSplit names a
    Parquet payload's files (<split_uri>/data_parquet-SSSSS-of-NNNNN.parquet). empty_schema(): the columns of
    a file that gets no rows (asked for only then)."""

    def __init__(self, file_path_prefix: str, empty_schema: Callable[[], Any]):
        super().__init__(file_path_prefix, coder=beam.coders.BytesCoder(), file_name_suffix=PARQUET_SUFFIX,
                         num_shards=0, shard_name_template=None, mime_type="application/x-parquet",
                         compression_type=beam.io.filesystem.CompressionTypes.UNCOMPRESSED)
        self._empty_schema = empty_schema

    def open(self, temp_path: str):
        return _ParquetFileWriter(super().open(temp_path), self._empty_schema)

    def write_record(self, file_handle, value: bytes) -> None:
        file_handle.write(*unpacked_cells(value))

    def close(self, file_handle) -> None:
        file_handle.close()


@beam.ptransform_fn
def WriteParquetChunks(chunks: beam.PCollection, split_uri: str,  # pylint: disable=invalid-name
                        empty_schema: Callable[[], Any]) -> beam.pvalue.PDone:
    """A split's packed chunks, in random chunk order, as Parquet files."""
    return (chunks
            | "Shuffle" >> beam.transforms.Reshuffle()
            | "Write" >> beam.io.Write(_ParquetChunkSink(
                os.path.join(split_uri, write_split.DEFAULT_PARQUET_FILE_NAME), empty_schema)))


def tfrecord_frames(records: List[bytes]) -> bytes:
    """The records in TFRecord framing: length, masked CRC-32C of the length, data, masked CRC-32C of it."""
    import google_crc32c  # C implementation; a dependency of the Google Cloud clients Beam[gcp] installs

    def masked_crc(data: bytes) -> bytes:
        return struct.pack("<I", _TFRecordUtil._masked_crc32c(data, crc32c_fn=google_crc32c.value))  # pylint: disable=protected-access

    out = []
    for record in records:
        length = struct.pack("<Q", len(record))
        out += (length, masked_crc(length), record, masked_crc(record))
    return b"".join(out)


class _FramedRecordSink(filebasedsink.FileBasedSink):
    """A TFRecord sink whose elements are already framed chunks of records (gzip from the .gz suffix)."""

    def __init__(self, file_path_prefix: str):
        super().__init__(file_path_prefix, coder=beam.coders.BytesCoder(), file_name_suffix=".gz",
                         num_shards=0, shard_name_template=None, mime_type="application/octet-stream",
                         compression_type=beam.io.filesystem.CompressionTypes.AUTO)

    def write_encoded_record(self, file_handle, value: bytes) -> None:
        file_handle.write(value)


def packed_frames(chunk: List[bytes]) -> bytes:
    """A chunk's TFRecord frames, deflated (zlib level 1: ~4x smaller) for the shuffle."""
    return zlib.compress(tfrecord_frames(chunk), 1)


@beam.ptransform_fn
def WriteChunks(chunks: beam.PCollection, split_uri: str) -> beam.pvalue.PDone:  # pylint: disable=invalid-name
    """A split's chunks, in random chunk order, as TFX's WriteSplit names its files
    (<split_uri>/data_tfrecord-SSSSS-of-NNNNN.gz). The DirectRunner holds a shuffle's input in memory: chunks
    go through it framed and deflated (1M taxi rows: ExampleGen 23.1 s and 3.0 GB peak RSS with raw chunks,
    18.7 s and 1.2 GB deflated; 16.5 s and 1.2 GB with no shuffle at all)."""
    return (chunks
            | "Pack" >> beam.Map(packed_frames)
            | "Shuffle" >> beam.transforms.Reshuffle()
            | "Unpack" >> beam.Map(zlib.decompress)
            | "Write" >> beam.io.Write(_FramedRecordSink(os.path.join(split_uri, write_split.DEFAULT_FILE_NAME))))
