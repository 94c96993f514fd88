"""The raw examples' payload (config.PAYLOADS), as tfxp's own readers see it: the Trainer's input, the columnar
Evaluator, the pusher's gates and calibration, and the run summary's constant baseline.

ExampleGen writes each split as gzipped TFRecords of tf.Examples (`data_tfrecord-*.gz`) or, with
`data.payload: parquet`, as Parquet files of list columns (`data_parquet-*.parquet`): one column per feature,
each row a list of no value (an empty cell) or one, in the Arrow types that tfx-bsl gives the schema's
features (large_list of int64, float32 or large_binary), so that TFX's StatisticsGen and Transform read them as
they are. A split's payload is told by its files' suffix.

Plain functions over files (no Beam, no TFX artifacts): components/ and trainer/ call them.
"""
from __future__ import annotations

import io
import itertools
import os
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

from config import PARQUET_PAYLOAD, TF_EXAMPLE_PAYLOAD, is_remote

PARQUET_SUFFIX = ".parquet"
BATCH_ROWS = 4096


def payload_of(files: Sequence[str]) -> str:
    """PARQUET_PAYLOAD when every file is a .parquet file, TF_EXAMPLE_PAYLOAD when none is."""
    parquet = [path.endswith(PARQUET_SUFFIX) for path in files]
    if all(parquet) and parquet:
        return PARQUET_PAYLOAD
    if not any(parquet):
        return TF_EXAMPLE_PAYLOAD
    raise ValueError(f"{os.path.dirname(files[0])} mixes Parquet and TFRecord files: one payload per split")


def arrow_value_type(kind: str):
    """The Arrow type of a payload column holding values of a tfx-bsl kind ('int', 'float' or 'bytes'):
    what csv_decoder.GetArrowSchema gives a schema feature of that type."""
    import pyarrow as pa

    return pa.large_list({"int": pa.int64(), "float": pa.float32(), "bytes": pa.large_binary()}[kind])


class _GFileReader(io.RawIOBase):
    """A tf.io.gfile.GFile as the seekable binary file pyarrow reads (GFile has no `closed`)."""

    def __init__(self, gfile):
        super().__init__()
        self._gfile = gfile

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self._gfile.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        self._gfile.seek(offset, whence)
        return self._gfile.tell()

    def tell(self) -> int:
        return self._gfile.tell()

    def close(self) -> None:
        self._gfile.close()
        super().close()


def record_batches(files: Sequence[str], limit: Optional[int] = None, columns: Optional[Sequence[str]] = None,
                   batch_rows: int = BATCH_ROWS) -> Iterator:
    """The first `limit` rows of the files as Arrow RecordBatches of list columns (only `columns` that exist,
    when given): tf.Examples decoded by tfx-bsl's C++ decoder, or Parquet read as written."""
    remaining = limit if limit is not None else float("inf")
    if payload_of(files) == PARQUET_PAYLOAD:
        import pyarrow.parquet as pq
        import tensorflow as tf

        for path in files:
            # gs:// and other remote files through TensorFlow's filesystems (a seekable file object).
            with (_GFileReader(tf.io.gfile.GFile(path, "rb")) if is_remote(path) else open(path, "rb")) as f:
                parquet = pq.ParquetFile(f)
                names = [n for n in parquet.schema_arrow.names if columns is None or n in columns]
                for batch in parquet.iter_batches(batch_size=batch_rows, columns=names):
                    if remaining <= 0:
                        return
                    batch = batch.slice(0, min(batch.num_rows, remaining))
                    remaining -= batch.num_rows
                    yield batch
        return
    import pyarrow as pa
    import tensorflow as tf
    from tfx_bsl.coders import example_coder

    decoder = example_coder.ExamplesToRecordBatchDecoder()
    dataset = tf.data.TFRecordDataset(list(files), compression_type="GZIP")
    if limit is not None:
        dataset = dataset.take(limit)
    for records in dataset.batch(batch_rows):
        batch = decoder.DecodeBatch(records.numpy().tolist())
        if columns is not None:
            names = [n for n in batch.schema.names if n in columns]
            batch = pa.RecordBatch.from_arrays([batch.column(batch.schema.get_field_index(n)) for n in names],
                                               names=names)
        yield batch


def encode_examples(batch) -> List[bytes]:
    """Serialized tf.Examples of a RecordBatch of list columns (tfx-bsl's C++ encoder)."""
    from tfx_bsl.coders import example_coder

    return example_coder.RecordBatchToExamples(batch)


def list_cells(column) -> Tuple[Any, Any]:
    """(rows, values) of a list column (a Parquet payload's): each value of each cell with its row index, as
    numpy arrays (text values as bytes)."""
    import pyarrow.compute as pc

    return (pc.list_parent_indices(column).to_numpy(),
            pc.list_flatten(column).to_numpy(zero_copy_only=False))


def single_value_columns(batch, names: Sequence[str]) -> Optional[Dict[str, Any]]:
    """The named list columns of a RecordBatch as one dense numpy array each, in the form of a tfxp model's
    JSON signature (trainer/export.py): a number column as float64 with NaN for an empty cell, a text column
    as bytes with b"". None when a column is missing or holds more than one value in some cell."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    out = {}
    for name in names:
        index = batch.schema.get_field_index(name)
        if index < 0:
            return None
        column = batch.column(index)
        if batch.num_rows and (pc.max(pc.list_value_length(column)).as_py() or 0) > 1:
            return None
        rows, values = list_cells(column)
        text = pa.types.is_binary(column.type.value_type) or pa.types.is_large_binary(column.type.value_type)
        dense = np.full(batch.num_rows, b"", dtype=object) if text else np.full(batch.num_rows, np.nan)
        dense[rows] = values
        out[name] = dense
    return out


def serialized_examples(files: Sequence[str], limit: int) -> List[bytes]:
    """The first `limit` examples of the files as serialized tf.Examples (what `serving_default` takes):
    the records themselves, or Parquet rows encoded."""
    if payload_of(files) == TF_EXAMPLE_PAYLOAD:
        import tensorflow as tf

        dataset = tf.data.TFRecordDataset(list(files), compression_type="GZIP").take(limit)
        return [record.numpy() for record in dataset]
    return [record for batch in record_batches(files, limit) for record in encode_examples(batch)]


def parquet_dataset(files: Sequence[str], schema, batch_size: int, shuffle_seed: Optional[int] = None,
                    shuffle_buffer_size: int = 10_000, read_rows: int = 8192):
    """A tf.data.Dataset of batches of raw features ({name: tensor}) of Parquet payload files, as tfx-bsl's
    TFXIO TensorFlowDataset gives them for tf.Examples (ParquetTFXIO has no TensorFlowDataset): one pass,
    the last batch possibly smaller, each batch parsed with the schema's feature spec. Rows are shuffled in
    Arrow, in windows of at least shuffle_buffer_size rows each permuted (seeded by shuffle_seed;
    shuffle_buffer_size <= 1: file order), then encoded by tfx-bsl's C++ encoder and parsed by TensorFlow a
    batch at a time. (Converting Arrow batches to tensors with tfx-bsl's TensorAdapter gave the same
    tensors at ~8k rows/s, per batch in Python; this runs at the tf.Example path's speed.)"""
    import numpy as np
    import pyarrow as pa
    import tensorflow as tf
    from tensorflow_transform.tf_metadata import schema_utils

    spec = schema_utils.schema_as_feature_spec(schema).feature_spec
    shuffle = shuffle_buffer_size > 1

    def windows() -> Iterator[np.ndarray]:
        rng = np.random.default_rng(shuffle_seed)
        window: List = []
        rows = 0
        batches = record_batches(list(files), batch_rows=read_rows)
        for batch in itertools.chain(batches, [None]):
            if batch is not None:
                window.append(batch)
                rows += batch.num_rows
            if window and (batch is None or rows >= shuffle_buffer_size):
                table = pa.Table.from_batches(window)
                if shuffle:
                    table = table.take(pa.array(rng.permutation(table.num_rows)))
                yield np.array([record for part in table.to_batches() for record in encode_examples(part)],
                               dtype=object)
                window, rows = [], 0

    records = tf.data.Dataset.from_generator(windows, output_signature=tf.TensorSpec([None], tf.string))
    return records.unbatch().batch(batch_size).map(lambda serialized: tf.io.parse_example(serialized, spec))
