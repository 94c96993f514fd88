"""Column names and numeric-ness of the first data file, for every local file format (the config check
names a missing column or a numeric treatment on text before anything runs).

CSV: config/csv_probe.py. Parquet: the file's schema (pyarrow, no data read). TFRecord: the first examples
(tf.train.Example; this imports TensorFlow, so only TFRecord configs pay for it).
"""
from __future__ import annotations

import os
from typing import Dict, List, Tuple

from config.csv_probe import sniff_csv_columns
from config.schema import DataConfig

TFRECORD_SNIFF_EXAMPLES = 200


def _first_file(data: DataConfig) -> str:
    files = data.files()
    if not files:
        raise FileNotFoundError(f"{data.path}: no data files" +
                                (f" match the pattern {data.pattern!r}" if data.pattern else ""))
    return files[0]


def _parquet_columns(path: str) -> Tuple[List[str], Dict[str, bool]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        schema = pq.read_schema(path)
    except (pa.ArrowInvalid, OSError) as e:
        raise ValueError(f"{path}: not a Parquet file: {e}") from None
    numeric = {field.name: pa.types.is_integer(field.type) or pa.types.is_floating(field.type)
               or pa.types.is_boolean(field.type) for field in schema}
    return list(schema.names), numeric


def _tfrecord_columns(path: str) -> Tuple[List[str], Dict[str, bool]]:
    import tensorflow as tf

    compression = "GZIP" if path.endswith(".gz") else ""
    numeric: Dict[str, bool] = {}
    try:
        for record in tf.data.TFRecordDataset(path, compression_type=compression).take(TFRECORD_SNIFF_EXAMPLES):
            for name, feature in tf.train.Example.FromString(record.numpy()).features.feature.items():
                kind = feature.WhichOneof("kind")
                if kind is not None:
                    numeric[name] = numeric.get(name, True) and kind != "bytes_list"
                else:
                    numeric.setdefault(name, True)
    except (tf.errors.OpError, Exception) as e:  # noqa: B014 (a corrupt or non-TFRecord file)
        raise ValueError(f"{path}: not a TFRecord file of tf.train.Example: {e}") from None
    if not numeric:
        raise ValueError(f"{path}: no tf.train.Example records")
    return sorted(numeric), numeric


def probe_columns(data: DataConfig) -> Tuple[str, List[str], Dict[str, bool]]:
    """(first file, column names, numeric-by-column) of a local CSV, Parquet or TFRecord data directory."""
    if data.format == "csv":
        return sniff_csv_columns(data)
    path = _first_file(data)
    header, numeric = (_parquet_columns(path) if data.format == "parquet" else _tfrecord_columns(path))
    return os.path.abspath(path), header, numeric
