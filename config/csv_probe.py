"""The CSV probe: the files a CSV config reads, their header, and which columns hold numbers.

Plain Python (no TensorFlow): config validation and the pre-flight pass use it before anything runs.
"""
from __future__ import annotations

import csv
import os
import re
from typing import Dict, List, Tuple

from config.schema import DataConfig

# How many data rows are read at config time to check column types.
TYPE_SNIFF_ROWS = 2000


def csv_files(data_dir: str) -> List[str]:
    """The files CsvExampleGen reads (its default input pattern is `*` in the input directory)."""
    return sorted(os.path.join(data_dir, name) for name in os.listdir(data_dir)
                  if not name.startswith(".") and os.path.isfile(os.path.join(data_dir, name)))


def is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


# A header cell that holds any of these is data, not a column name: the file is probably not a CSV table.
_NOT_A_NAME = re.compile(r'[{}\[\]"<>]|^\s*$')


def read_header(reader, path: str) -> List[str]:
    """The header line of a csv.reader over `path`; ValueError naming the file if it has none."""
    try:
        header = next(reader, None)
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: not a text CSV file: byte 0x{e.object[e.start]:02x} is not UTF-8 "
                         f"(is it Parquet, gzip or TFRecord?)") from None
    if not header:
        raise ValueError(f"{path}: empty file: expected a CSV header line")
    if any(_NOT_A_NAME.search(name) for name in header):
        raise ValueError(f"{path}, line 1: not a CSV header of column names: {','.join(header)[:120]!r}")
    return header


def sniff_csv_columns(data: DataConfig) -> Tuple[str, List[str], Dict[str, bool]]:
    """The first data file's header and, per column, whether its first non-empty values all parse as numbers.

    Returns (first file, header, numeric-by-column). The other files are checked by pipeline/preflight.py.
    """
    files = data.files()
    if not files:
        raise FileNotFoundError(f"{data.path}: no data files" +
                                (f" match the pattern {data.pattern!r}" if data.pattern else ""))
    with open(files[0], newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = read_header(reader, files[0])
        numeric = {name: True for name in header}
        try:
            for _, row in zip(range(TYPE_SNIFF_ROWS), reader):
                for name, cell in zip(header, row):
                    if cell and numeric[name] and not is_number(cell):
                        numeric[name] = False
        except UnicodeDecodeError as e:
            raise ValueError(f"{files[0]}: not a text CSV file: {e}") from None
    return files[0], header, numeric
