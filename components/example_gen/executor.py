"""ColumnarCsvExampleGen's executor: TFX's BaseExampleGenExecutor (splits, output formats, writing) with
CSV files read a block at a time by pyarrow and encoded in C++ (components/example_gen/csv_blocks.py),
instead of one Python tf.train.Example per row."""
from __future__ import annotations

import functools
import os
from typing import Any, Callable, Dict, Iterator, List

import apache_beam as beam
from tfx.components.example_gen.base_example_gen_executor import BaseExampleGenExecutor
from tfx.dsl.io import fileio
from tfx.types import standard_component_specs

from components.example_gen import csv_blocks


def global_types(files: List[str]) -> Dict[str, str]:
    """Column types from a sample of every file, the widest per column (as CsvExampleGen infers them over
    all files)."""
    types: Dict[str, str] = {}
    for path in files:
        for name, kind in csv_blocks.sample_types(path).items():
            if csv_blocks.rank(kind) > csv_blocks.rank(types.get(name, csv_blocks.UNKNOWN)):
                types[name] = kind
            types.setdefault(name, kind)
    return types


class _EncodeFiles(beam.DoFn):
    """Each input file's serialized examples; `encode(path)` yields them a block at a time."""

    def __init__(self, encode: Callable[[str], Iterator[List[bytes]]]):
        self._encode = encode

    def process(self, path: str):
        for block in self._encode(path):
            yield from block


def _input_files(exec_properties: Dict[str, Any], split_pattern: str) -> List[str]:
    pattern = os.path.join(exec_properties[standard_component_specs.INPUT_BASE_KEY], split_pattern)
    files = sorted(fileio.glob(pattern))
    if not files:
        raise RuntimeError(f"Split pattern {pattern} does not match any files.")
    return files


@beam.ptransform_fn
@beam.typehints.with_input_types(beam.Pipeline)
@beam.typehints.with_output_types(bytes)
def _ColumnarCsvToExample(pipeline: beam.Pipeline, exec_properties: Dict[str, Any],
                          split_pattern: str) -> beam.pvalue.PCollection:
    files = _input_files(exec_properties, split_pattern)
    pattern = os.path.join(exec_properties[standard_component_specs.INPUT_BASE_KEY], split_pattern)
    header = csv_blocks.header_of(files[0])
    for path in files[1:]:
        if csv_blocks.header_of(path) != header:
            raise RuntimeError(f"Files in same split {pattern} have different header: {path}")
    types = global_types(files)
    return (pipeline
            | "CreateFilenames" >> beam.Create(files)
            | "EncodeBlocks" >> beam.ParDo(_EncodeFiles(functools.partial(
                csv_blocks.encode_file, types=types, allow_promotion=len(files) == 1))))


class Executor(BaseExampleGenExecutor):
    def GetInputSourceToExamplePTransform(self) -> beam.PTransform:
        return _ColumnarCsvToExample


@beam.ptransform_fn
@beam.typehints.with_input_types(beam.Pipeline)
@beam.typehints.with_output_types(bytes)
def _ParquetToExample(pipeline: beam.Pipeline, exec_properties: Dict[str, Any],
                      split_pattern: str) -> beam.pvalue.PCollection:
    files = _input_files(exec_properties, split_pattern)
    return pipeline | "CreateFilenames" >> beam.Create(files) | "EncodeBatches" >> beam.ParDo(
        _EncodeFiles(csv_blocks.encode_parquet_file))


class ParquetExecutor(BaseExampleGenExecutor):
    """Parquet files to tf.Examples, a batch of rows at a time, typed by each file's schema."""

    def GetInputSourceToExamplePTransform(self) -> beam.PTransform:
        return _ParquetToExample
