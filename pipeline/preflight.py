"""A full pass over local CSV input before any component runs: errors that name the file, line and column.

CsvExampleGen would fail on these too, but later and in words that name neither file nor row. Checked:
every file is UTF-8 text with the same header line as the first, every row has as many fields as the
header, numeric features and numeric labels parse as numbers, a binary label is 0 or 1, no label is empty,
and there is at least one data row. Statistical problems (ranges, new categories, missing-value bursts,
NaN/inf, drift) are the data gate's, inside the pipeline. Remote data (gs://...) is left to the pipeline.
"""
from __future__ import annotations

import csv
from typing import List, Optional, Tuple

from config import NUMERIC_TREATMENTS, PipelineConfig, is_remote
from config.csv_probe import is_number, read_header


class InputError(ValueError):
    """Bad input data, named by file and, where it applies, line and column."""

    def __init__(self, path: str, message: str, line: Optional[int] = None, column: Optional[str] = None):
        self.path, self.line, self.column = path, line, column
        self.report_file: Optional[str] = None  # the run report saying so, once written
        where = path + (f", line {line}" if line else "") + (f", column {column!r}" if column else "")
        super().__init__(f"{where}: {message}")


def check_csv_inputs(config: PipelineConfig) -> int:
    """Raises InputError on the first problem; returns the number of data rows. With spans, the files of
    the latest span (the one this run ingests) are checked."""
    if is_remote(config.data.path) or config.data.format != "csv":
        return -1  # Parquet and TFRecord files carry their types: ExampleGen and the data gate check them
    files = config.data.files()
    if not files:
        raise InputError(config.data.path, "no data files" + (f" match {config.data.pattern!r}"
                                                              if config.data.pattern else " in the directory"))
    label, task = config.label.column, config.label.task
    required = [f.name for f in config.features] + [label]
    numeric = [f.name for f in config.features if f.treatment in NUMERIC_TREATMENTS]
    if task in ("binary", "regression"):
        numeric.append(label)
    expected: Optional[List[str]] = None
    rows = 0
    for path in files:
        try:
            header, file_rows = _check_file(path, expected, required, numeric, label, task)
        except UnicodeDecodeError as e:
            raise InputError(path, f"not a text CSV file: {e}") from None
        except csv.Error as e:
            raise InputError(path, f"not a readable CSV file: {e}") from None
        rows += file_rows
        expected = expected or header
    if rows == 0:
        raise InputError(config.data.path, "the data files hold a header but no data rows")
    return rows


def _check_file(path: str, expected: Optional[List[str]], required: List[str], numeric: List[str], label: str,
                task: str) -> Tuple[List[str], int]:
    """(header, number of data rows) of one file; InputError on the first problem."""
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        try:
            header = read_header(reader, path)
        except ValueError as e:  # names the file already
            raise InputError(path, str(e)[len(path):].lstrip(":, ")) from None
        absent = [c for c in required if c not in header]
        if absent:
            raise InputError(path, f"missing column(s) {', '.join(absent)} that the config uses", line=1)
        if expected is not None and header != expected:
            missing = [c for c in expected if c not in header]
            extra = [c for c in header if c not in expected]
            detail = (f"missing column(s) {', '.join(missing)}" if missing else "") + \
                     (f"{'; ' if missing else ''}unexpected column(s) {', '.join(extra)}" if extra else "") or \
                     "same columns in another order"
            raise InputError(path, f"header differs from the first data file's: {detail}", line=1)
        index = {name: i for i, name in enumerate(header)}
        numeric_at = [(name, index[name]) for name in numeric if name in index]
        label_at = index.get(label)
        rows = 0
        for row in reader:
            if not row:
                continue  # blank line
            rows += 1
            if len(row) != len(header):
                raise InputError(path, f"{len(row)} fields, but the header has {len(header)}",
                                 line=reader.line_num)
            for name, i in numeric_at:
                if row[i] and not is_number(row[i]):
                    raise InputError(path, f"{row[i]!r} is not a number", line=reader.line_num, column=name)
            if label_at is not None:
                value = row[label_at]
                if not value:
                    raise InputError(path, "the label is empty", line=reader.line_num, column=label)
                if task == "binary" and float(value) not in (0.0, 1.0):
                    raise InputError(path, f"{value!r} is not a binary class (0 or 1)", line=reader.line_num,
                                     column=label)
        return header, rows
