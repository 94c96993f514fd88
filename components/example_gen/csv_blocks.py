"""CSV and Parquet files read and typed as blocks of scalar cells (a pyarrow RecordBatch a block, null for an
empty cell), with pyarrow. components/example_gen/cell_encoding.py encodes the cells (tf.Examples, the
Parquet payload, row hashes).

Plain functions (no Beam, no TFX): components/example_gen/executor.py runs them in a Beam DoFn.

Column types follow TFX's CsvExampleGen (tfx_bsl.coders.csv_decoder.ColumnTypeInferrer): a column whose
non-empty cells all parse as integers is INT, else as numbers FLOAT, else STRING; a column with no value at
all has no type. They are inferred from a sample of rows, not from a full pass; when a later block holds a
value the sampled type cannot take (a decimal in an INT column), the column is promoted and the file read
again, so the result never depends on the sample.
"""
from __future__ import annotations

import csv
import io
from typing import Dict, Iterable, Iterator, List, Optional, Tuple

INT, FLOAT, STRING, UNKNOWN = "int", "float", "string", "unknown"
_ORDER = {UNKNOWN: 0, INT: 1, FLOAT: 2, STRING: 3}
SAMPLE_ROWS = 10_000
BLOCK_BYTES = 16 << 20
# A file whose parsed blocks take at most this much is parsed once: the typed pass keeps its blocks.
KEEP_BYTES = 256 << 20


def rank(kind: str) -> int:
    return _ORDER[kind]


def cell_type(cell: str) -> str:
    if not cell:
        return UNKNOWN
    try:
        int(cell)
        return INT
    except ValueError:
        pass
    try:
        float(cell)
        return FLOAT
    except ValueError:
        return STRING


def sample_types(path: str, rows: Optional[int] = None) -> Dict[str, str]:
    """Column types from the first `rows` (default SAMPLE_ROWS) rows of a CSV file (header first)."""
    rows = rows or SAMPLE_ROWS
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = next(reader)
        types = {name: UNKNOWN for name in header}
        for _, row in zip(range(rows), reader):
            for name, cell in zip(header, row):
                kind = cell_type(cell)
                if _ORDER[kind] > _ORDER[types[name]]:
                    types[name] = kind
    return types


def _arrow_type(kind: str):
    import pyarrow as pa

    return {INT: pa.int64(), FLOAT: pa.float64(), STRING: pa.binary(), UNKNOWN: pa.string()}[kind]


class PromoteColumn(Exception):
    def __init__(self, name: str):
        super().__init__(name)
        self.name = name


def _promoted(kind: str) -> str:
    return {UNKNOWN: INT, INT: FLOAT, FLOAT: STRING}[kind]


def _read_blocks(path: str, types: Dict[str, str], block_bytes: int, whole: bool = False) -> Iterator:
    """The file's RecordBatches of scalar cells (null = empty cell), a block of `block_bytes` at a time. whole:
    parsed by read_csv, whose blocks are parsed on every core (1M taxi rows: ~0.45 s against ~0.65 s
    streamed), then given block by block; else streamed, one block in memory at a time."""
    import pyarrow as pa
    from pyarrow import csv as pacsv

    convert = pacsv.ConvertOptions(column_types={n: _arrow_type(k) for n, k in types.items()},
                                   null_values=[""], strings_can_be_null=True, quoted_strings_can_be_null=False)
    read = pacsv.ReadOptions(block_size=block_bytes)
    parse = pacsv.ParseOptions(newlines_in_values=True)
    try:
        if whole:
            yield from pacsv.read_csv(path, read_options=read, parse_options=parse,
                                      convert_options=convert).to_batches()
            return
        with pacsv.open_csv(path, read_options=read, parse_options=parse, convert_options=convert) as reader:
            for batch in reader:
                yield batch
    except pa.ArrowInvalid as e:
        message = str(e)
        for name in types:
            if f"In CSV column #{list(types).index(name)}:" in message or f"column '{name}'" in message:
                raise PromoteColumn(name) from e
        raise ValueError(f"{path}: {message}") from e


def parquet_types(schema) -> Dict[str, str]:
    """Column types of a Parquet file's Arrow schema: integers and booleans INT, floats FLOAT, text STRING."""
    import pyarrow as pa

    types = {}
    for field in schema:
        if pa.types.is_integer(field.type) or pa.types.is_boolean(field.type):
            types[field.name] = INT
        elif pa.types.is_floating(field.type):
            types[field.name] = FLOAT
        elif pa.types.is_string(field.type) or pa.types.is_binary(field.type) or pa.types.is_large_string(field.type):
            types[field.name] = STRING
        elif pa.types.is_null(field.type):
            types[field.name] = UNKNOWN
        else:
            raise ValueError(f"column {field.name!r} has Parquet type {field.type}: tfxp reads integers, floats, "
                             f"booleans and text")
    return types


def parquet_cells(path: str, batch_rows: int = 65_536, types: Optional[Dict[str, str]] = None) -> Iterator:
    """(RecordBatch of scalar cells, types) of a Parquet file, a batch of rows at a time: integers and
    booleans as int64, floats as float64, text as binary. types: the columns' types over all the files
    (widest_parquet_types), which a column of this file is cast to; default: this file's own."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    parquet = pq.ParquetFile(path)
    types = types or parquet_types(parquet.schema_arrow)
    for batch in parquet.iter_batches(batch_size=batch_rows):
        columns = []
        for name in batch.schema.names:
            column = batch.column(batch.schema.get_field_index(name))
            if types[name] == STRING and not (pa.types.is_binary(column.type) or pa.types.is_string(column.type)
                                              or pa.types.is_large_string(column.type)):
                column = pc.cast(column, pa.string())  # a number column that is text in another file
            columns.append(pc.cast(column, _arrow_type(types[name])))
        yield pa.RecordBatch.from_arrays(columns, names=batch.schema.names), types


def widest_types(per_file: Iterable[Dict[str, str]]) -> Dict[str, str]:
    """Each column's widest type over the files' types (unknown < int < float < text)."""
    types: Dict[str, str] = {}
    for file_types_ in per_file:
        for name, kind in file_types_.items():
            if rank(kind) > rank(types.get(name, UNKNOWN)):
                types[name] = kind
            types.setdefault(name, kind)
    return types


def parquet_data_bytes(files: List[str]) -> int:
    """The Parquet files' data, uncompressed (their footers' row-group sizes)."""
    import pyarrow.parquet as pq

    total = 0
    for path in files:
        metadata = pq.read_metadata(path)
        total += sum(metadata.row_group(i).total_byte_size for i in range(metadata.num_row_groups))
    return total


def widest_parquet_types(files: List[str]) -> Dict[str, str]:
    """Each column's widest type over the Parquet files' schemas, read from their footers."""
    import pyarrow.parquet as pq

    return widest_types(parquet_types(pq.read_schema(path)) for path in files)


def csv_cells(path: str, types: Optional[Dict[str, str]] = None, block_bytes: int = BLOCK_BYTES,
              allow_promotion: bool = True, keep_bytes: int = KEEP_BYTES) -> Iterator:
    """(RecordBatch of scalar cells, types) of a CSV file, a block of rows at a time.

    The file is first read through by pyarrow without encoding (~0.6 s per million rows; file_types), so that
    no block is encoded before the types of every block are known: a column the sample typed too narrowly is
    promoted; with allow_promotion=False (several files, which must share the types) that is an error naming
    the file and the column. When the blocks of that typed pass take at most `keep_bytes` (Arrow buffers),
    they are the ones given, and the file is parsed once; a larger file is read again, block by block, so
    that memory stays bounded whatever its size."""
    types, kept = _typed_pass(path, dict(types or sample_types(path)), block_bytes, allow_promotion, keep_bytes)
    for batch in (kept if kept is not None else _read_blocks(path, types, block_bytes)):
        yield batch, types


def file_types(path: str, types: Dict[str, str], block_bytes: int = BLOCK_BYTES,
               allow_promotion: bool = True) -> Dict[str, str]:
    """`types`, promoted until every block of the file reads with them."""
    return _typed_pass(path, types, block_bytes, allow_promotion, keep_bytes=0)[0]


def _typed_pass(path: str, types: Dict[str, str], block_bytes: int, allow_promotion: bool,
                keep_bytes: int) -> Tuple[Dict[str, str], Optional[List]]:
    """`types` promoted until every block of the file reads with them, and the blocks of the pass that read
    with them when those take at most keep_bytes (else None: none kept past the budget). A file of at most
    keep_bytes is parsed whole (_read_blocks).

    A column the sample saw empty is read as text, and its type learnt in the same pass (_TextKinds): a
    value past the sample no longer costs a second parse (the taxi table's pickup_census_tract has its first
    value past 10,000 rows: 1M rows were parsed ~1.25 times). A value past the sample that the sampled type
    of a column cannot take starts the pass again with the column promoted."""
    import os

    whole = os.path.getsize(path) <= keep_bytes
    while True:
        kept: Optional[List] = []
        size = 0
        learnt = {name: _TextKinds() for name, kind in types.items() if kind == UNKNOWN}
        try:
            for batch in _read_blocks(path, types, block_bytes, whole):
                for name, kinds in learnt.items():
                    kinds.add(batch.column(batch.schema.get_field_index(name)))
                if kept is not None:
                    size += batch.nbytes
                    if size <= keep_bytes:
                        kept.append(batch)
                    else:
                        kept = None
        except PromoteColumn as promote:
            types = _promote(path, types, promote, allow_promotion)
            continue
        found = {name: kinds.kind for name, kinds in learnt.items() if kinds.kind != UNKNOWN}
        if found and not allow_promotion:  # files that share the sampled types: an error naming the column
            _promote(path, types, PromoteColumn(next(iter(found))), allow_promotion)
        if found and kept is not None:
            kept = [_typed_text(batch, found) for batch in kept]
        return dict(types, **found), kept


class _TextKinds:
    """The narrowest type (INT, FLOAT, STRING; UNKNOWN while no cell has a value) that pyarrow's CSV reader
    would read every non-empty cell of a text column as, learnt block by block: a column the sample saw
    empty is read as text (_arrow_type(UNKNOWN))."""

    def __init__(self):
        self.has_values, self.ints, self.floats = False, True, True

    def add(self, column) -> None:
        values = column.drop_null()
        if len(values):
            self.has_values = True
            self.ints = self.ints and _reads_as(values, INT)
            self.floats = self.floats and _reads_as(values, FLOAT)

    @property
    def kind(self) -> str:
        if not self.has_values:
            return UNKNOWN
        return INT if self.ints else FLOAT if self.floats else STRING


def _as_read(text, kind: str):
    """A text column (_arrow_type(UNKNOWN)) as the CSV reader reads cells of type `kind`: it parses a number
    with the spaces and tabs around it trimmed, as pyarrow's cast does once they are trimmed
    (tests/example_gen_test.py compares the two). Raises ArrowInvalid when a cell cannot be read so."""
    import pyarrow.compute as pc

    if kind in (INT, FLOAT):
        text = pc.utf8_trim(text, characters=" \t")
    return pc.cast(text, _arrow_type(kind))


def _reads_as(text, kind: str) -> bool:
    import pyarrow as pa

    try:
        _as_read(text, kind)
        return True
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return False


def _typed_text(batch, kinds: Dict[str, str]):
    """The batch with its text columns named in `kinds` read as those types (_as_read)."""
    import pyarrow as pa

    columns = [_as_read(column, kinds[name]) if name in kinds else column
               for name, column in zip(batch.schema.names, batch.columns)]
    return pa.RecordBatch.from_arrays(columns, names=batch.schema.names)


def _promote(path: str, types: Dict[str, str], promote: PromoteColumn, allow_promotion: bool) -> Dict[str, str]:
    if types[promote.name] == STRING:
        raise ValueError(f"{path}: column {promote.name!r} could not be read as text") from promote
    if not allow_promotion:
        sampled = ("is empty in" if types[promote.name] == UNKNOWN
                   else f"holds only {types[promote.name]} values in")
        raise ValueError(
            f"{path}: column {promote.name!r} {sampled} the first {SAMPLE_ROWS} rows of each file that the "
            f"column types were sampled from, and holds a value past them that does not fit; put such a "
            f"value in the first rows, or use data.reader: stock (a full pass over the data)") from None
    return dict(types, **{promote.name: _promoted(types[promote.name])})


def header_of(path: str) -> List[str]:
    with io.open(path, newline="", encoding="utf-8") as f:
        return next(csv.reader(f))
