"""The columnar Evaluator's slices: which columns the EvalConfig slices on, and each batch's rows per slice
key, as TFMA keys them, from the slicing columns alone (a Parquet payload's columns, or those features parsed
out of serialized tf.Examples)."""
from __future__ import annotations

from typing import Dict, List, Tuple

import numpy as np
import tensorflow_model_analysis as tfma

from preprocessing.payload import list_cells


def slice_columns(eval_config: tfma.EvalConfig) -> List[str]:
    """The columns of the config's single-column slicing specs (the overall slice is always computed);
    other specs (several columns, fixed values, SQL) are refused by name."""
    columns = []
    for spec in eval_config.slicing_specs:
        if spec.feature_values or spec.slice_keys_sql or len(spec.feature_keys) > 1:
            raise ValueError(f"evaluation: slicing spec {spec} is not supported by the columnar Evaluator "
                             f"(the overall slice, and one column per spec); use the stock TFMA Evaluator")
        columns += list(spec.feature_keys)
    return list(dict.fromkeys(columns))


def slices_of(num_rows: int, cells: Dict[str, Tuple[np.ndarray, np.ndarray]]) -> Dict[Tuple, np.ndarray]:
    """Slice key -> row indices of a batch of num_rows rows, as TFMA slices: one slice per value of a slicing
    column (text decoded), a row in the slice of each of its values, a row without a value in none of that
    column's slices, and in a slice once however often it holds the value (TFMA dedupes a row's slice keys).
    cells: each slicing column's (row, value) pairs, one pair per value."""
    out: Dict[Tuple, np.ndarray] = {(): np.arange(num_rows)}
    for column, (rows, values) in cells.items():
        if not len(values):
            continue
        unique, inverse = np.unique(values, return_inverse=True)
        order = np.argsort(inverse, kind="stable")  # rows grouped by value
        bounds = np.searchsorted(inverse[order], np.arange(len(unique) + 1))
        for i, value in enumerate(unique):
            value = value.decode() if isinstance(value, bytes) else value.item() if hasattr(value, "item") else value
            out[((column, value),)] = np.unique(rows[order[bounds[i]:bounds[i + 1]]])
    return out


def arrow_cells(batch, columns: List[str]) -> Dict[str, Tuple[np.ndarray, np.ndarray]]:
    """The (row, value) pairs of the columns of a RecordBatch of list columns (a Parquet payload's)."""
    return {column: list_cells(batch.column(batch.schema.get_field_index(column)))
            for column in columns if column in batch.schema.names}


_FEATURE_DTYPES = {"bytes_list": "string", "int64_list": "int64", "float_list": "float32"}


class ExampleCells:
    """The (row, value) pairs of some features of batches of serialized tf.Examples. Each feature is parsed
    by TensorFlow alone (~15x faster than decoding every feature with tfx-bsl), with its type taken from the
    first example that has it."""

    def __init__(self, columns: List[str]):
        self._columns = columns
        self._dtypes: Dict[str, str] = {}

    def _dtype(self, column: str, batch: List[bytes]):
        import tensorflow as tf

        if column not in self._dtypes:
            for record in batch:
                feature = tf.train.Example.FromString(record).features.feature.get(column)
                if feature is not None and feature.WhichOneof("kind"):
                    self._dtypes[column] = _FEATURE_DTYPES[feature.WhichOneof("kind")]
                    break
        return self._dtypes.get(column)

    def __call__(self, batch: List[bytes], serialized) -> Dict[str, Tuple[np.ndarray, np.ndarray]]:
        import tensorflow as tf

        spec = {column: tf.io.VarLenFeature(dtype) for column in self._columns
                for dtype in [self._dtype(column, batch)] if dtype}
        return {column: (values.indices[:, 0].numpy(), values.values.numpy())
                for column, values in tf.io.parse_example(serialized, spec).items()}
