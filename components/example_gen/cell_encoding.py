"""Cells to what ExampleGen writes: serialized tf.Examples, the Parquet payload's list columns, and the hash
of each row's cells that picks its split. Plain functions (no Beam, no TFX); the cells come from
components/example_gen/csv_blocks.py, which reads and types CSV and Parquet input.

The bytes are those of `tf.train.Example.SerializeToString(deterministic=True)` of CsvExampleGen's examples:
features in sorted-name order, an empty cell as an empty value list of the column's type. ExampleGen splits
by a hash of those bytes, so both ExampleGens put every row in the same split.

The Parquet payload (`payload_batch`) holds the same rows as list columns in sorted-name order, typed as
tfx-bsl types schema features (preprocessing/payload.py); it is split by `row_hashes`, a hash of the cells.
"""
from __future__ import annotations

from typing import Dict, Iterator, List, Optional

from components.example_gen.csv_blocks import (BLOCK_BYTES, FLOAT, INT, STRING, UNKNOWN, csv_cells,
                                               parquet_cells)
from preprocessing.payload import arrow_value_type


def _feature_lists(column, kind: str, large: bool = False):
    """A column of cells -> list<value> per row: one value, or none for an empty cell. large: the Parquet
    payload's large_list of int64, float32 or large_binary."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    list_type, offset_type = (pa.large_list, np.int64) if large else (pa.list_, np.int32)
    if kind == UNKNOWN:  # no value anywhere: tf.train.Feature() with no kind, as CsvExampleGen writes
        return pa.array([None] * len(column), type=list_type(pa.int64()))
    if kind == FLOAT:
        column = pc.cast(column, pa.float32())
    elif kind == STRING and large:
        column = pc.cast(column, pa.large_binary())
    offsets = np.zeros(len(column) + 1, dtype=offset_type)
    if column.null_count:
        np.cumsum(column.is_valid().to_numpy(zero_copy_only=False), out=offsets[1:])
    else:
        offsets[1:] = np.arange(1, len(column) + 1, dtype=offset_type)
    array_type = pa.LargeListArray if large else pa.ListArray
    return array_type.from_arrays(pa.array(offsets), column.drop_null())


def encode_record_batch(batch, types: Dict[str, str]) -> List[bytes]:
    """Serialized tf.Examples of a RecordBatch of scalar cells (null = empty cell), typed by `types`."""
    import pyarrow as pa
    from tensorflow.core.example.example_pb2 import Example
    from tfx_bsl.coders import example_coder

    names = list(types)
    columns = [_feature_lists(batch.column(batch.schema.get_field_index(n)), types[n]) for n in names]
    encoded = example_coder.RecordBatchToExamples(pa.RecordBatch.from_arrays(columns, names=names))
    # The encoder's feature order is not the sorted one: parse and serialize deterministically (upb, in C:
    # ~5 µs an example), so the bytes and the split of every row are CsvExampleGen's.
    return [Example.FromString(b).SerializeToString(deterministic=True) for b in encoded]


_PAYLOAD_KINDS = {INT: "int", FLOAT: "float", STRING: "bytes", UNKNOWN: "int"}


def payload_schema(types: Dict[str, str]):
    """The Arrow schema of the Parquet payload of columns of these types: list columns in sorted-name order,
    typed as tfx-bsl types schema features (a column with no value anywhere as int64 lists)."""
    import pyarrow as pa

    return pa.schema([(name, arrow_value_type(_PAYLOAD_KINDS[types[name]])) for name in sorted(types)])


def payload_batch(batch, types: Dict[str, str]):
    """The Parquet payload (payload_schema) of a RecordBatch of scalar cells."""
    import pyarrow as pa

    schema = payload_schema(types)
    return pa.RecordBatch.from_arrays(
        [_feature_lists(batch.column(batch.schema.get_field_index(n)), types[n], large=True) for n in schema.names],
        schema=schema)


def row_hashes(batch):
    """A 64-bit hash of each row's cells (every column, in sorted-name order; an empty cell hashes as null):
    the same for the same cells in every run and on every machine (pandas' SipHash with its fixed key)."""
    import numpy as np

    hashes = np.zeros(batch.num_rows, dtype=np.uint64)
    for name in sorted(batch.schema.names):
        hashes = (hashes * np.uint64(1_000_003)) ^ _cell_hashes(batch.column(batch.schema.get_field_index(name)))
    return hashes


def _cell_hashes(column):
    """pandas.util.hash_array of the column's cells (as Python objects for text, None for an empty cell). Text
    is hashed once per distinct value and gathered (1M taxi rows: row_hashes ~0.55 s -> ~0.3 s)."""
    import numpy as np
    import pandas as pd
    import pyarrow as pa
    import pyarrow.compute as pc

    if not (pa.types.is_binary(column.type) or pa.types.is_string(column.type)):
        return pd.util.hash_array(column.to_numpy(zero_copy_only=False), categorize=False)
    encoded = pc.dictionary_encode(column)
    distinct = encoded.dictionary.to_numpy(zero_copy_only=False).astype(object)
    hashes = pd.util.hash_array(np.append(distinct, np.array([None], dtype=object)), categorize=False)
    return hashes[encoded.indices.fill_null(len(distinct)).to_numpy()]


def encode_parquet_file(path: str, batch_rows: int = 65_536) -> Iterator[List[bytes]]:
    """Serialized tf.Examples of a Parquet file, one list per batch of rows."""
    for batch, types in parquet_cells(path, batch_rows):
        yield encode_record_batch(batch, types)


def encode_file(path: str, types: Optional[Dict[str, str]] = None, block_bytes: int = BLOCK_BYTES,
                allow_promotion: bool = True) -> Iterator[List[bytes]]:
    """Serialized tf.Examples of a CSV file, one list per block of rows (csv_cells)."""
    for batch, types in csv_cells(path, types, block_bytes, allow_promotion):
        yield encode_record_batch(batch, types)
