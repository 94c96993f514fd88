"""ColumnarCsvExampleGen's and ParquetExampleGen's executor: TFX's BaseExampleGenExecutor contract (input and
output configs, hash-bucket splits, output files, artifact properties) with rows handled a block at a time.

Stock ExampleGen builds one Python tf.train.Example per CSV row, then sends every record through Beam on its
own: a Partition, a Reshuffle (a random key and a GroupByKey per record) and a TFRecord write. Here each
file is read a block at a time by pyarrow and encoded in C++ (components/example_gen/csv_blocks.py); every
record goes to its split by TFX's own `_PartitionFn` (sha256 of the serialized example, the same split for
every row), and Beam moves chunks of CHUNK_ROWS records, each a random draw from one pyarrow block:
reshuffled as chunks (deflated, so that the DirectRunner's in-memory shuffle holds ~1/4 of the data) and
written as TFRecord frames (`_WriteChunks`), with the same file names, gzip and properties as TFX's
WriteSplit. So a split's rows are shuffled within ~130k-row windows and in 4,096-row chunks across them,
where TFX's ExampleGen shuffles row by row.

With output_data_format FORMAT_PARQUET (data.payload: parquet) nothing is encoded: each block becomes a
RecordBatch of list columns (csv_blocks.payload_batch), rows go to their split by a hash of their cells
(csv_blocks.row_hashes), and chunks move through the shuffle as compressed Arrow IPC streams of their
cells (`_PayloadFiles`, `packed_table`, `_WriteParquetChunks`) into `data_parquet-SSSSS-of-NNNNN.parquet`."""
from __future__ import annotations

import concurrent.futures
import functools
import itertools
import os
import random
import struct
import zlib
from typing import Any, Callable, Dict, Iterator, List, Optional

import apache_beam as beam
from apache_beam.io import filebasedsink
from apache_beam.io.tfrecordio import _TFRecordUtil
from tfx.components.example_gen import utils, write_split
from tfx.components.example_gen.base_example_gen_executor import BaseExampleGenExecutor, _PartitionFn
from tfx.components.util import examples_utils
from tfx.dsl.io import fileio
from tfx.proto import example_gen_pb2
from tfx import types
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import proto_utils

from components.example_gen import csv_blocks
from preprocessing.payload import PARQUET_SUFFIX


def global_types(files: List[str]) -> Dict[str, str]:
    """Column types from a sample of every file, the widest per column (as CsvExampleGen infers them over
    all files)."""
    return csv_blocks.widest_types(csv_blocks.sample_types(path) for path in files)


CHUNK_ROWS = 4096  # records Beam moves as one element


class _ChunkFiles(beam.DoFn):
    """What both payloads' DoFns share: the files are read by `read(path)`, the output split config's hash
    buckets (cumulative), and each split's rows sent on as chunks of at most CHUNK_ROWS, to the tagged output
    of their split (str(split index)) when there is a split config."""

    def __init__(self, read: Callable[[str], Iterator], split_config: Optional[example_gen_pb2.SplitConfig] = None):
        self._read = read
        self._split_config = split_config
        self._buckets = list(itertools.accumulate(s.hash_buckets for s in split_config.splits)) if split_config else []

    def _chunks(self, parts: List, chunk: Callable = lambda rows: rows):
        """parts: each split's rows in their order (a list or a RecordBatch); chunk(rows) makes the element of
        a slice of them."""
        for index, rows in enumerate(parts):
            for start in range(0, len(rows), CHUNK_ROWS):
                element = chunk(rows[start:start + CHUNK_ROWS])
                yield beam.pvalue.TaggedOutput(str(index), element) if self._buckets else element


class _EncodeFiles(_ChunkFiles):
    """Each input file's serialized examples, every record partitioned by TFX's own `_PartitionFn`.
    `read(path)` yields blocks of records."""

    def _parts(self, block: List[bytes]) -> List[List[bytes]]:
        if not self._buckets:
            return [block]
        parts: List[List[bytes]] = [[] for _ in self._buckets]
        for record in block:
            parts[_PartitionFn(record, len(self._buckets), self._buckets, self._split_config)].append(record)
        return parts

    def process(self, path: str):
        for number, block in enumerate(self._read(path)):
            # Rows in a chunk are drawn from the whole block (~130k rows of CSV), in an order fixed by the
            # file and block, so that reruns write the same files; the shuffle then orders the chunks.
            order = random.Random(f"{path}:{number}")
            parts = self._parts(block)
            for part in parts:
                order.shuffle(part)
            yield from self._chunks(parts)


def shuffle_codec(input_bytes: int) -> str:
    """The compression of the chunks that move through the shuffle (packed_table), which the DirectRunner
    holds whole: lz4 while the input takes at most csv_blocks.KEEP_BYTES (1M taxi rows: packing and unpacking
    every chunk ~0.55 s against ~1.25 s with zstd), zstd past it, where memory is what runs out first (10M taxi
    rows, ExampleGen's executor alone: peak RSS 2,951 MB with zstd, 3,808 MB with lz4)."""
    return "lz4" if input_bytes <= csv_blocks.KEEP_BYTES else "zstd"


class _PayloadFiles(_ChunkFiles):
    """The Parquet payload's counterpart of _EncodeFiles: each input file's rows as payload batches
    (csv_blocks.payload_batch), each row to its split by csv_blocks.row_hashes (the hash of its cells modulo
    the hash buckets, split by split as TFX's _PartitionFn assigns buckets), chunks of cells packed as Arrow
    IPC bytes (packed_table, compressed with `codec`). `read(path)` yields (RecordBatch of cells, types)."""

    def __init__(self, read: Callable[[str], Iterator], split_config: Optional[example_gen_pb2.SplitConfig],
                 codec: str):
        super().__init__(read, split_config)
        self._codec = codec

    def process(self, path: str):
        import numpy as np

        for number, (cells, kinds) in enumerate(self._read(path)):
            order = np.random.default_rng(zlib.crc32(f"{path}:{number}".encode())).permutation(cells.num_rows)
            if self._buckets:
                split = np.searchsorted(self._buckets, csv_blocks.row_hashes(cells) % np.uint64(self._buckets[-1]),
                                        side="right")[order]
                parts = [order[split == index] for index in range(len(self._buckets))]
            else:
                parts = [order]
            # A chunk travels as its scalar cells, made payload lists only where it is written
            # (_ParquetFileWriter): taking rows of the list columns cost ~4x as much as of the cells (1M
            # taxi rows: ~1.3 s of pyarrow's take), and their offsets would double what the shuffle holds.
            # The block's rows are taken in one gather, split after split, and chunks are slices of it: a
            # take per chunk cost twice as much (1M taxi rows, packing included: ~0.95 s against ~0.45 s).
            taken = cells.take(np.concatenate(parts))
            starts = np.cumsum([0] + [len(part) for part in parts])
            yield from self._chunks([taken.slice(start, len(part)) for start, part in zip(starts, parts)],
                                    lambda rows: packed_table(rows, kinds, self._codec))


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
    """A Table of scalar cells as a Table of the Parquet payload (csv_blocks.payload_batch)."""
    import pyarrow as pa

    return pa.Table.from_batches([csv_blocks.payload_batch(batch, kinds) for batch in cells.to_batches()],
                                 schema=csv_blocks.payload_schema(kinds))


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
        self.writer = self.writer or pq.ParquetWriter(self.handle, csv_blocks.payload_schema(self.kinds),
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
def _WriteParquetChunks(chunks: beam.PCollection, split_uri: str,  # pylint: disable=invalid-name
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
def _WriteChunks(chunks: beam.PCollection, split_uri: str) -> beam.pvalue.PDone:  # pylint: disable=invalid-name
    """A split's chunks, in random chunk order, as TFX's WriteSplit names its files
    (<split_uri>/data_tfrecord-SSSSS-of-NNNNN.gz). The DirectRunner holds a shuffle's input in memory: chunks
    go through it framed and deflated (1M taxi rows: ExampleGen 23.1 s and 3.0 GB peak RSS with raw chunks,
    18.7 s and 1.2 GB deflated; 16.5 s and 1.2 GB with no shuffle at all)."""
    return (chunks
            | "Pack" >> beam.Map(packed_frames)
            | "Shuffle" >> beam.transforms.Reshuffle()
            | "Unpack" >> beam.Map(zlib.decompress)
            | "Write" >> beam.io.Write(_FramedRecordSink(os.path.join(split_uri, write_split.DEFAULT_FILE_NAME))))


def _input_files(exec_properties: Dict[str, Any], split_pattern: str) -> List[str]:
    pattern = os.path.join(exec_properties[standard_component_specs.INPUT_BASE_KEY], split_pattern)
    files = sorted(fileio.glob(pattern))
    if not files:
        raise RuntimeError(f"Split pattern {pattern} does not match any files.")
    return files


def _parquet_payload(exec_properties: Dict[str, Any]) -> bool:
    payload_format = exec_properties.get(standard_component_specs.OUTPUT_DATA_FORMAT_KEY)
    if payload_format not in (None, example_gen_pb2.FORMAT_TF_EXAMPLE, example_gen_pb2.FORMAT_PARQUET):
        raise ValueError(f"the columnar ExampleGen writes tf.Examples or Parquet, not payload format "
                         f"{example_gen_pb2.PayloadFormat.Name(payload_format)}")
    return payload_format == example_gen_pb2.FORMAT_PARQUET


@beam.ptransform_fn
def _ColumnarCsvToChunks(pipeline: beam.Pipeline, exec_properties: Dict[str, Any], split_pattern: str,
                         split_config: Optional[example_gen_pb2.SplitConfig]):
    files = _input_files(exec_properties, split_pattern)
    pattern = os.path.join(exec_properties[standard_component_specs.INPUT_BASE_KEY], split_pattern)
    header = csv_blocks.header_of(files[0])
    for path in files[1:]:
        if csv_blocks.header_of(path) != header:
            raise RuntimeError(f"Files in same split {pattern} have different header: {path}")
    types = global_types(files)
    options = dict(types=types, allow_promotion=len(files) == 1)
    codec = shuffle_codec(sum(os.path.getsize(path) for path in files))
    return (pipeline
            | "CreateFilenames" >> beam.Create(files)
            | "EncodeBlocks" >> (_payload(functools.partial(csv_blocks.csv_cells, **options), split_config, codec)
                                 if _parquet_payload(exec_properties) else
                                 _encode(functools.partial(csv_blocks.encode_file, **options), split_config)))


@beam.ptransform_fn
def _ParquetToChunks(pipeline: beam.Pipeline, exec_properties: Dict[str, Any], split_pattern: str,
                     split_config: Optional[example_gen_pb2.SplitConfig]):
    files = _input_files(exec_properties, split_pattern)
    return (pipeline | "CreateFilenames" >> beam.Create(files)
            | "EncodeBatches" >> (_payload(functools.partial(csv_blocks.parquet_cells,
                                                             types=csv_blocks.widest_parquet_types(files)),
                                           split_config, shuffle_codec(csv_blocks.parquet_data_bytes(files)))
                                  if _parquet_payload(exec_properties) else
                                  _encode(csv_blocks.encode_parquet_file, split_config)))


def _with_split_outputs(do_fn, split_config: Optional[example_gen_pb2.SplitConfig]):
    return do_fn.with_outputs(*map(str, range(len(split_config.splits)))) if split_config else do_fn


def _encode(encode: Callable[[str], Iterator[List[bytes]]], split_config: Optional[example_gen_pb2.SplitConfig]):
    return _with_split_outputs(beam.ParDo(_EncodeFiles(encode, split_config)), split_config)


def _payload(cells: Callable[[str], Iterator], split_config: Optional[example_gen_pb2.SplitConfig], codec: str):
    return _with_split_outputs(beam.ParDo(_PayloadFiles(cells, split_config, codec)), split_config)


def _payload_schema(input_types: Callable[[List[str]], Dict[str, str]], files: List[str]):
    return csv_blocks.payload_schema(input_types(files))


def _configs(exec_properties: Dict[str, Any]):
    """The executor's input and output configs (example_gen_pb2.Input, .Output)."""
    input_config, output_config = example_gen_pb2.Input(), example_gen_pb2.Output()
    proto_utils.json_to_proto(exec_properties[standard_component_specs.INPUT_CONFIG_KEY], input_config)
    proto_utils.json_to_proto(exec_properties[standard_component_specs.OUTPUT_CONFIG_KEY], output_config)
    return input_config, output_config


class _ChunkedExampleGenExecutor(BaseExampleGenExecutor):
    """GenerateExamplesByBeam gives each split's chunks of records; Do writes them (the base Do's contract:
    split names, files, payload and file format properties). input_types(files): the columns' types."""
    input_types: Callable[[List[str]], Dict[str, str]]

    def GenerateExamplesByBeam(self, pipeline: beam.Pipeline,
                               exec_properties: Dict[str, Any]) -> Dict[str, beam.PCollection]:
        input_config, output_config = _configs(exec_properties)
        split_names = utils.generate_output_split_names(input_config, output_config)
        to_chunks = self.GetInputSourceToExamplePTransform()
        splits = output_config.split_config
        if not splits.splits:  # the input's own splits
            return {name: pipeline | f"InputToChunks[{name}]" >> to_chunks(exec_properties, split.pattern, None)
                    for name, split in zip(split_names, input_config.splits)}
        if len(input_config.splits) != 1:
            raise ValueError("input must have only one split when output splits are specified")
        if splits.HasField("partition_feature_name"):
            raise ValueError("output_config.split_config.partition_feature_name is not supported by the "
                             "columnar ExampleGen; use data.reader: stock")
        chunks = pipeline | "InputToChunks" >> to_chunks(exec_properties, input_config.splits[0].pattern, splits)
        return {name: chunks[str(index)] for index, name in enumerate(split_names)}

    def Do(self, input_dict: Dict[str, List[types.Artifact]], output_dict: Dict[str, List[types.Artifact]],
           exec_properties: Dict[str, Any]) -> None:
        self._log_startup(input_dict, output_dict, exec_properties)
        input_config, output_config = _configs(exec_properties)
        examples = output_dict[standard_component_specs.EXAMPLES_KEY]
        artifact_utils.get_single_instance(examples).split_names = artifact_utils.encode_split_names(
            utils.generate_output_split_names(input_config, output_config))
        payload_format = exec_properties.get(standard_component_specs.OUTPUT_DATA_FORMAT_KEY)
        parquet = _parquet_payload(exec_properties)
        if parquet:  # the columns of an output file that gets no rows: the input's types, read only then
            empty_schema = functools.partial(_payload_schema, self.input_types,
                                             _input_files(exec_properties, input_config.splits[0].pattern))
        with self._make_beam_pipeline() as pipeline:
            for name, chunks in self.GenerateExamplesByBeam(pipeline, exec_properties).items():
                split_uri = artifact_utils.get_split_uri(examples, name)
                _ = chunks | f"WriteSplit[{name}]" >> (  # pylint: disable=no-value-for-parameter
                    _WriteParquetChunks(split_uri, empty_schema) if parquet else _WriteChunks(split_uri))
        file_format = exec_properties.get(standard_component_specs.OUTPUT_FILE_FORMAT_KEY)
        for artifact in examples:
            if payload_format:
                examples_utils.set_payload_format(artifact, payload_format)
            if parquet:  # TFX 1.16's to_file_format_str knows TFRecords only; Transform reads this name
                examples_utils.set_file_format(artifact, example_gen_pb2.FileFormat.Name(
                    example_gen_pb2.FILE_FORMAT_PARQUET))
            elif file_format:
                examples_utils.set_file_format(artifact, write_split.to_file_format_str(file_format))


class Executor(_ChunkedExampleGenExecutor):
    """CSV files, a pyarrow block at a time."""
    input_types = staticmethod(global_types)

    def GetInputSourceToExamplePTransform(self) -> beam.PTransform:
        return _ColumnarCsvToChunks


class ParquetExecutor(_ChunkedExampleGenExecutor):
    """Parquet files to tf.Examples (typed by each file's schema) or to the Parquet payload (typed by the
    widest type of each column over the files), a batch of rows at a time."""
    input_types = staticmethod(csv_blocks.widest_parquet_types)

    def GetInputSourceToExamplePTransform(self) -> beam.PTransform:
        return _ParquetToChunks
