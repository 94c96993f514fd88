"""ColumnarCsvExampleGen's and ParquetExampleGen's executor: TFX's BaseExampleGenExecutor contract (input and
output configs, hash-bucket splits, output files, artifact properties) with rows handled a block at a time.

Stock ExampleGen builds one Python tf.train.Example per CSV row, then sends every record through Beam on its
own: a Partition, a Reshuffle (a random key and a GroupByKey per record) and a TFRecord write. Here each
file is read a block at a time by pyarrow (csv_blocks.py) and encoded in C++ (cell_encoding.py); every
record goes to its split by TFX's own `_PartitionFn` (sha256 of the serialized example, the same split for
every row), and Beam moves chunks of CHUNK_ROWS records, each a random draw from one pyarrow block:
reshuffled as chunks (deflated, so that the DirectRunner's in-memory shuffle holds ~1/4 of the data) and
written as TFRecord frames (chunk_writes.WriteChunks), with the same file names, gzip and properties as TFX's
WriteSplit. So a split's rows are shuffled within ~130k-row windows and in 4,096-row chunks across them,
where TFX's ExampleGen shuffles row by row.

With output_data_format FORMAT_PARQUET (data.payload: parquet) nothing is encoded: each block becomes a
RecordBatch of list columns (cell_encoding.payload_batch), rows go to their split by a hash of their cells
(cell_encoding.row_hashes), and chunks move through the shuffle as compressed Arrow IPC streams of their
cells (`_PayloadFiles`; chunk_writes' `packed_table` and `WriteParquetChunks`) into
`data_parquet-SSSSS-of-NNNNN.parquet`."""
from __future__ import annotations

import functools
import itertools
import os
import random
import zlib
from typing import Any, Callable, Dict, Iterator, List, Optional

import apache_beam as beam
from tfx.components.example_gen import utils, write_split
from tfx.components.example_gen.base_example_gen_executor import BaseExampleGenExecutor, _PartitionFn
from tfx.components.util import examples_utils
from tfx.dsl.io import fileio
from tfx.proto import example_gen_pb2
from tfx import types
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import proto_utils

from components.example_gen import cell_encoding, chunk_writes, csv_blocks


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


class _PayloadFiles(_ChunkFiles):
    """The Parquet payload's counterpart of _EncodeFiles: each input file's rows as payload batches
    (cell_encoding.payload_batch), each row to its split by cell_encoding.row_hashes (the hash of its cells modulo
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
                split = np.searchsorted(self._buckets, cell_encoding.row_hashes(cells) % np.uint64(self._buckets[-1]),
                                        side="right")[order]
                parts = [order[split == index] for index in range(len(self._buckets))]
            else:
                parts = [order]
            # A chunk travels as its scalar cells, made payload lists only where it is written
            # (chunk_writes._ParquetFileWriter): taking rows of the list columns cost ~4x as much as of the cells (1M
            # taxi rows: ~1.3 s of pyarrow's take), and their offsets would double what the shuffle holds.
            # The block's rows are taken in one gather, split after split, and chunks are slices of it: a
            # take per chunk cost twice as much (1M taxi rows, packing included: ~0.95 s against ~0.45 s).
            taken = cells.take(np.concatenate(parts))
            starts = np.cumsum([0] + [len(part) for part in parts])
            yield from self._chunks([taken.slice(start, len(part)) for start, part in zip(starts, parts)],
                                    lambda rows: chunk_writes.packed_table(rows, kinds, self._codec))


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
    codec = chunk_writes.shuffle_codec(sum(os.path.getsize(path) for path in files))
    return (pipeline
            | "CreateFilenames" >> beam.Create(files)
            | "EncodeBlocks" >> (_payload(functools.partial(csv_blocks.csv_cells, **options), split_config, codec)
                                 if _parquet_payload(exec_properties) else
                                 _encode(functools.partial(cell_encoding.encode_file, **options), split_config)))


@beam.ptransform_fn
def _ParquetToChunks(pipeline: beam.Pipeline, exec_properties: Dict[str, Any], split_pattern: str,
                     split_config: Optional[example_gen_pb2.SplitConfig]):
    files = _input_files(exec_properties, split_pattern)
    return (pipeline | "CreateFilenames" >> beam.Create(files)
            | "EncodeBatches" >> (_payload(functools.partial(csv_blocks.parquet_cells,
                                                             types=csv_blocks.widest_parquet_types(files)),
                                           split_config,
                                           chunk_writes.shuffle_codec(csv_blocks.parquet_data_bytes(files)))
                                  if _parquet_payload(exec_properties) else
                                  _encode(cell_encoding.encode_parquet_file, split_config)))


def _with_split_outputs(do_fn, split_config: Optional[example_gen_pb2.SplitConfig]):
    return do_fn.with_outputs(*map(str, range(len(split_config.splits)))) if split_config else do_fn


def _encode(encode: Callable[[str], Iterator[List[bytes]]], split_config: Optional[example_gen_pb2.SplitConfig]):
    return _with_split_outputs(beam.ParDo(_EncodeFiles(encode, split_config)), split_config)


def _payload(cells: Callable[[str], Iterator], split_config: Optional[example_gen_pb2.SplitConfig], codec: str):
    return _with_split_outputs(beam.ParDo(_PayloadFiles(cells, split_config, codec)), split_config)


def _payload_schema(input_types: Callable[[List[str]], Dict[str, str]], files: List[str]):
    return cell_encoding.payload_schema(input_types(files))


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
                    chunk_writes.WriteParquetChunks(split_uri, empty_schema) if parquet
                    else chunk_writes.WriteChunks(split_uri))
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
