"""The columnar Evaluator's input: the eval split in batches of at most BATCH_SIZE rows, never a row per Beam
element: lists of serialized tf.Examples, or RecordBatches of a Parquet payload's columns."""
from __future__ import annotations

from typing import Any, Dict, Iterable, List, Optional

import apache_beam as beam
from tfx import types
from tfx.components.util import examples_utils
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils
from tfx.utils import io_utils

BATCH_SIZE = 2048


def payload_columns(feature_infos: Iterable[Optional[Dict[str, Any]]], slicing: List[str]) -> Optional[List[str]]:
    """The columns the Evaluator reads of a Parquet payload: each model's raw features and label (its
    features file's) and the slicing columns; None (all columns) when a model has no features file."""
    columns = list(slicing)
    for info in feature_infos:
        if info is None:
            return None
        columns += [*info["features"], info["label"]]
    return sorted(set(columns))


def _arrow_batches(table, columns: Optional[List[str]]) -> List[Any]:
    """A Parquet row group's Table -> RecordBatches of at most BATCH_SIZE rows of the columns it has."""
    if columns is not None:
        table = table.select([column for column in columns if column in table.column_names])
    return table.to_batches(max_chunksize=BATCH_SIZE)


def _tfrecord_batches(path: str) -> Iterable[List[bytes]]:
    """A TFRecord file's records (gzipped when the name ends in .gz, as Beam's TFRecord reader decides), in
    lists of at most BATCH_SIZE."""
    import tensorflow as tf

    dataset = tf.data.TFRecordDataset(path, compression_type="GZIP" if path.endswith(".gz") else "")
    for batch in dataset.batch(BATCH_SIZE).as_numpy_iterator():
        yield list(batch)


@beam.ptransform_fn
def ReadBatches(pipeline: beam.Pipeline, examples: types.Artifact, splits: List[str],
                 columns: Optional[List[str]]) -> beam.PCollection:
    """Batches of the splits' rows, at most BATCH_SIZE each: lists of serialized tf.Examples (the records of a
    tf.Example payload, gzipped or plain TFRecords as ExampleGen wrote them, read a file per element), or
    RecordBatches of a Parquet payload's `columns` (None: all). No row is a Beam element of its own."""
    payload = examples_utils.get_payload_format(examples)
    if payload not in (example_gen_pb2.FORMAT_TF_EXAMPLE, example_gen_pb2.FORMAT_PARQUET):
        raise ValueError(f"the columnar Evaluator reads tf.Example and Parquet payloads; {examples.uri} has "
                         f"{example_gen_pb2.PayloadFormat.Name(payload)}")
    reads = []
    for split in splits:
        pattern = io_utils.all_files_pattern(artifact_utils.get_split_uri([examples], split))
        if payload == example_gen_pb2.FORMAT_PARQUET:
            reads.append(pipeline | f"Read[{split}]" >> beam.io.ReadFromParquetBatched(pattern)
                         | f"Batch[{split}]" >> beam.FlatMap(_arrow_batches, columns))
        else:
            import tensorflow as tf

            # One element per file, spread over workers, each read a batch at a time by tf.data: Beam's
            # record-per-element TFRecord read and re-batching cost 3.6x as much (a gzipped file is read by
            # one worker either way).
            reads.append(pipeline | f"Files[{split}]" >> beam.Create(sorted(tf.io.gfile.glob(pattern)))
                         | f"Spread[{split}]" >> beam.Reshuffle()
                         | f"Read[{split}]" >> beam.FlatMap(_tfrecord_batches))
    return reads | "Flatten" >> beam.Flatten()
