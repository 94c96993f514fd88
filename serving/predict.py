"""`tfxp predict`: score a file of raw rows (CSV or Parquet) with a pushed model, a batch at a time, through
the model's JSON signature (one tensor per raw feature: the same preprocessing as serving_default, with no
tf.Example to build). The output holds the input columns plus the predictions; a row that cannot be parsed
is reported by its line (CSV: the file's line, the header is line 1; a quoted cell holding a line break
shifts the count) or row (Parquet, from 1), written with empty predictions and the reason in `tfxp_error`,
and the run goes on."""
from __future__ import annotations

import csv
import dataclasses
import os
import time
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

from serving.layout import JSON_SIGNATURE, latest_model_dir, read_feature_info

BATCH_ROWS = 4096
ERROR_COLUMN = "tfxp_error"


@dataclasses.dataclass
class BadRow:
    where: str  # "line 12" or "row 12"
    reason: str


@dataclasses.dataclass
class PredictResult:
    rows: int
    scored: int
    bad_rows: List[BadRow]
    output: str
    model_dir: str
    seconds: float


def resolve_model_dir(path: str) -> str:
    """A SavedModel directory as given, or the latest version of a serving directory."""
    if os.path.exists(os.path.join(path, "saved_model.pb")):
        return path
    return latest_model_dir(path)


def parse_column(values: List[Optional[str]], dtype: str) -> Tuple[Any, List[Optional[str]]]:
    """One column of text cells -> the JSON signature's input (float64 with NaN, or text with "", for a
    missing cell) and, per cell, why it does not parse (None where it does)."""
    import numpy as np

    if dtype == "string":
        return np.array([v or "" for v in values], dtype=object), [None] * len(values)
    out = np.full(len(values), np.nan)
    reasons: List[Optional[str]] = [None] * len(values)
    for i, value in enumerate(values):
        if value is None or not value.strip():
            continue
        try:
            number = float(value)
        except ValueError:
            reasons[i] = f"{value!r} is not a number"
            continue
        if not np.isfinite(number):
            reasons[i] = f"{value!r} is not a finite number"
        elif dtype == "int64" and not number.is_integer():
            reasons[i] = f"{value!r} is not an integer"
        else:
            out[i] = number
    return out, reasons


def _csv_batches(path: str, batch_rows: int) -> Iterator[Tuple[Any, List[str], List[BadRow]]]:
    """(record batch of text columns, where each of its rows is, rows skipped before it) of a CSV file.
    Rows with the wrong number of cells are skipped by pyarrow's invalid-row handler and reported."""
    import pyarrow as pa
    import pyarrow.csv as pa_csv

    with open(path, newline="") as f:
        header = next(csv.reader(f), None)
    if not header:
        raise ValueError(f"{path}: empty file, no header line")
    skipped: Dict[int, str] = {}

    def invalid(row) -> str:
        skipped[row.number] = f"{row.actual_columns} cells, the header has {row.expected_columns}"
        return "skip"

    reader = pa_csv.open_csv(
        path, read_options=pa_csv.ReadOptions(use_threads=False, block_size=1 << 22),
        parse_options=pa_csv.ParseOptions(invalid_row_handler=invalid, ignore_empty_lines=False),
        convert_options=pa_csv.ConvertOptions(column_types={name: pa.string() for name in header},
                                              strings_can_be_null=True))
    line = 2
    for batch in reader:
        for start in range(0, batch.num_rows, batch_rows):
            part = batch.slice(start, batch_rows)
            lines, bad = [], []
            while len(lines) < part.num_rows:
                if line in skipped:
                    bad.append(BadRow(f"line {line}", skipped.pop(line)))
                else:
                    lines.append(f"line {line}")
                line += 1
            yield part, lines, bad
    yield None, [], [BadRow(f"line {n}", reason) for n, reason in sorted(skipped.items())]


def _parquet_batches(path: str, batch_rows: int) -> Iterator[Tuple[Any, List[str], List[BadRow]]]:
    import pyarrow.parquet as pq

    row = 1
    for batch in pq.ParquetFile(path).iter_batches(batch_size=batch_rows):
        yield batch, [f"row {row + i}" for i in range(batch.num_rows)], []
        row += batch.num_rows


def _prediction_columns(info: Dict[str, Any], predictions, ok) -> Dict[str, List[Any]]:
    """Class and probability for classification, the value for regression; None for rows not scored."""
    import numpy as np

    task, n = info["task"], len(ok)
    full = np.full((n,) + predictions.shape[1:], np.nan)
    full[ok] = predictions
    if task == "regression":
        return {"prediction": [float(v) if k else None for v, k in zip(full.reshape(n, -1)[:, 0], ok)]}
    if task == "binary":
        p = full.reshape(n, -1)[:, 0]
        return {"class": [int(v > 0.5) if k else None for v, k in zip(p, ok)],
                "probability": [float(v) if k else None for v, k in zip(p, ok)]}
    classes = info.get("classes") or []
    best = np.argmax(np.nan_to_num(full, nan=-1.0), axis=1)
    return {"class": [classes[b] if k and b < len(classes) else (str(b) if k else None) for b, k in zip(best, ok)],
            "probability": [float(full[i, b]) if k else None for i, (b, k) in enumerate(zip(best, ok))]}


def predict_file(model_dir: str, input_path: str, output_path: str, batch_rows: int = BATCH_ROWS,
                 progress: Callable[[int, int, float], None] = lambda rows, bad, seconds: None) -> PredictResult:
    """Scores every row of input_path (CSV, or Parquet by its .parquet extension) and writes output_path
    (CSV, or Parquet by extension): the input columns, then the prediction columns and tfxp_error."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pa_csv
    import pyarrow.parquet as pq
    import tensorflow as tf

    model_dir = resolve_model_dir(model_dir)
    info = read_feature_info(model_dir)
    signature = tf.saved_model.load(model_dir).signatures[JSON_SIGNATURE]
    inputs = info.get("json_inputs") or {name: name for name in info["features"]}
    batches = (_parquet_batches if input_path.endswith(".parquet") else _csv_batches)(input_path, batch_rows)
    started, rows, scored, bad_rows, writer = time.monotonic(), 0, 0, [], None
    try:
        for batch, where, skipped in batches:
            bad_rows += skipped
            if batch is None:
                continue
            missing = [name for name in info["features"] if name not in batch.schema.names]
            if missing:
                raise ValueError(f"{input_path}: no column {', '.join(missing)} (the model's features: "
                                 f"{', '.join(info['features'])})")
            errors: List[List[str]] = [[] for _ in range(batch.num_rows)]
            tensors = {}
            for name, dtype in info["features"].items():
                values, reasons = parse_column(batch.column(name).cast(pa.string()).to_pylist(), dtype)
                for i, reason in enumerate(reasons):
                    if reason:
                        errors[i].append(f"{name}: {reason}")
                tensors[inputs[name]] = values
            ok = np.array([not e for e in errors], dtype=bool)
            predictions = np.zeros((0, 1))
            if ok.any():
                predictions = signature(**{key: tf.constant(values[ok], dtype=tf.string if values.dtype == object
                                                            else tf.float64)
                                           for key, values in tensors.items()})[info["output"]].numpy()
            table = pa.Table.from_batches([batch])
            for column, values in _prediction_columns(info, predictions, ok).items():
                table = table.append_column(column, pa.array(values))
            table = table.append_column(ERROR_COLUMN, pa.array(["; ".join(e) or None for e in errors], pa.string()))
            bad_rows += [BadRow(w, "; ".join(e)) for w, e in zip(where, errors) if e]
            if writer is None:
                os.makedirs(os.path.dirname(os.path.abspath(output_path)) or ".", exist_ok=True)
                writer = (pq.ParquetWriter(output_path, table.schema) if output_path.endswith(".parquet")
                          else pa_csv.CSVWriter(output_path, table.schema))
            writer.write_table(table)
            rows += batch.num_rows
            scored += int(ok.sum())
            progress(rows, len(bad_rows), time.monotonic() - started)
    finally:
        if writer is not None:
            writer.close()
    bad_rows.sort(key=lambda b: int(b.where.split()[1]))
    return PredictResult(rows=rows, scored=scored, bad_rows=bad_rows, output=output_path, model_dir=model_dir,
                         seconds=time.monotonic() - started)
