"""ColumnarCsvExampleGen gives CsvExampleGen's examples, splits and statistics on the taxi data (both
executors run here on the same input, as TFX's executor tests do), and types columns like it."""
import glob
import os

import pytest
import tensorflow as tf
import tensorflow_data_validation as tfdv
from tfx.components.example_gen.csv_example_gen import executor as stock_executor

from components.example_gen import cell_encoding, chunk_writes, csv_blocks
from components.example_gen import executor as columnar_executor
from config import resolve_data_path
from conftest import REPO, assert_same_statistics, run_example_gen

TAXI = resolve_data_path("package://tfx/examples/chicago_taxi_pipeline/data/big_tipper_label", REPO)


def records(examples_dir, split):
    out = []
    for path in sorted(glob.glob(os.path.join(examples_dir, f"Split-{split}", "*.gz"))):
        out += [tf.train.Example.FromString(r.numpy()).SerializeToString(deterministic=True)
                for r in tf.data.TFRecordDataset(path, compression_type="GZIP")]
    return sorted(out)


@pytest.fixture(scope="module")
def both(tmp_path_factory):
    root = tmp_path_factory.mktemp("example_gen")
    run_example_gen(stock_executor.Executor, TAXI, root / "stock")
    run_example_gen(columnar_executor.Executor, TAXI, root / "columnar")
    return root


@pytest.mark.parametrize("split", ["train", "eval"])
def test_same_examples_in_the_same_splits_as_csv_example_gen(both, split):
    stock, columnar = records(both / "stock", split), records(both / "columnar", split)
    assert len(stock) > 4000 and stock == columnar


def test_same_statistics_as_csv_example_gen(both):
    assert_same_statistics(*[tfdv.generate_statistics_from_tfrecord(str(both / kind / "Split-eval" / "*.gz"))
                             for kind in ("stock", "columnar")])


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def decoded(path, **kwargs):
    return [tf.train.Example.FromString(b) for block in cell_encoding.encode_file(str(path), **kwargs) for b in block]


def test_column_types_and_empty_cells_follow_csv_example_gen(tmp_path):
    write(tmp_path / "a.csv", 'i,f,s,e\n1,1.5,x,\n,2,"y, z",\n3,,,\n')
    rows = decoded(tmp_path / "a.csv")
    first = rows[0].features.feature
    assert first["i"].int64_list.value == [1] and first["f"].float_list.value == [1.5]
    assert first["s"].bytes_list.value == [b"x"] and first["e"].WhichOneof("kind") is None
    assert rows[1].features.feature["i"].HasField("int64_list") and not rows[1].features.feature["i"].int64_list.value
    assert rows[1].features.feature["s"].bytes_list.value == [b"y, z"]


def test_a_value_past_the_sample_promotes_the_column_of_a_single_file(tmp_path, monkeypatch):
    monkeypatch.setattr(csv_blocks, "SAMPLE_ROWS", 3)
    write(tmp_path / "a.csv", "n,label\n" + "".join(f"{i},0\n" for i in range(5000)) + "2.5,1\n")
    rows = decoded(tmp_path / "a.csv", block_bytes=256)  # ~150 blocks: the promotion is in the last one
    # Every row once, all typed as the promoted column (no block yielded before the types were settled).
    assert [r.features.feature["n"].float_list.value[0] for r in rows] == [float(i) for i in range(5000)] + [2.5]
    with pytest.raises(ValueError, match="column 'n' holds only int values in the first 3 rows of each file"):
        decoded(tmp_path / "a.csv", types=csv_blocks.sample_types(str(tmp_path / "a.csv")), allow_promotion=False,
                block_bytes=64)


def counted_parses(monkeypatch):
    """The types of each parse of a CSV file (csv_blocks._read_blocks call), as the calls come."""
    parsed = []
    read_blocks = csv_blocks._read_blocks

    def counted(path, types, block_bytes, whole=False):
        parsed.append(dict(types))
        return read_blocks(path, types, block_bytes, whole)

    monkeypatch.setattr(csv_blocks, "_read_blocks", counted)
    return parsed


@pytest.mark.parametrize("keep_bytes, parses", [(csv_blocks.KEEP_BYTES, 1), (1000, 2)])
def test_a_file_that_fits_the_budget_is_parsed_once_with_the_same_blocks(tmp_path, monkeypatch, keep_bytes, parses):
    """The typed pass keeps its blocks when they fit keep_bytes (the file parsed once), else the file is read
    again block by block; the same cells and types either way, a promotion found in the last block
    included (the kept blocks are those of the pass with the promoted types)."""
    monkeypatch.setattr(csv_blocks, "SAMPLE_ROWS", 3)
    write(tmp_path / "a.csv", "n,s\n" + "".join(f"{i},x{i % 7}\n" for i in range(5000)) + "2.5,y\n")
    parsed = counted_parses(monkeypatch)
    cells = list(csv_blocks.csv_cells(str(tmp_path / "a.csv"), block_bytes=4096, keep_bytes=keep_bytes))
    # One pass with the sampled types (the promotion found), then the typed pass, then a read if not kept.
    assert [t["n"] for t in parsed] == ["int"] + ["float"] * parses
    assert len(cells) > 5 and all(types == {"n": "float", "s": "string"} for _, types in cells)
    column = [v for batch, _ in cells for v in batch.column(0).to_pylist()]
    assert column == [float(i) for i in range(5000)] + [2.5]


@pytest.mark.parametrize("keep_bytes, parses", [(csv_blocks.KEEP_BYTES, 1), (1000, 2)])
def test_a_column_the_sample_saw_empty_is_typed_in_the_same_pass_as_a_second_read_would_type_it(
        tmp_path, monkeypatch, keep_bytes, parses):
    """Columns with no value in the sample are read as text and typed from the pass itself: no second parse
    (only the read of a file past keep_bytes), with the cells a read with the final types gives. Numbers with
    spaces or tabs around them are numbers; a hex integer is an integer but no float, so a column holding it
    and a decimal is text."""
    monkeypatch.setattr(csv_blocks, "SAMPLE_ROWS", 3)
    cells = {"e": [" 7", "8\t", "-0"], "f": ["1", "2.5 ", "1e3"], "t": ["0x10", "3", "1.5"], "n": ["", "", ""]}
    lines = [f"{i},,,,\n" for i in range(400)]
    for name, values in cells.items():  # one value per column in each of three far-apart rows
        for row, value in zip((5, 200, 390), values):
            fields = lines[row].rstrip("\n").split(",")
            fields[1 + list(cells).index(name)] = f'"{value}"' if value else ""
            lines[row] = ",".join(fields) + "\n"
    write(tmp_path / "a.csv", "a,e,f,t,n\n" + "".join(lines))
    parsed = counted_parses(monkeypatch)
    read = list(csv_blocks.csv_cells(str(tmp_path / "a.csv"), block_bytes=256, keep_bytes=keep_bytes))
    final = {"a": "int", "e": "int", "f": "float", "t": "string", "n": "unknown"}
    assert len(parsed) == parses and parsed[0] == dict(final, e="unknown", f="unknown", t="unknown")
    assert len(read) > 3 and all(types == final for _, types in read)
    again = list(csv_blocks._read_blocks(str(tmp_path / "a.csv"), final, 256))  # counted, after the count
    assert [batch.to_pydict() for batch, _ in read] == [batch.to_pydict() for batch in again]
    values = {name: [v for batch, _ in read for v in batch.column(name).to_pylist() if v is not None]
              for name in cells}
    assert values["e"] == [7, 8, 0] and values["f"] == [1.0, 2.5, 1000.0] and values["t"] == [b"0x10", b"3", b"1.5"]
    with pytest.raises(ValueError, match="column 'e' is empty in the first 3 rows of each file"):
        list(read_blocks_of(tmp_path / "a.csv"))


def read_blocks_of(path):
    """csv_cells of one of several files: the sampled types may not be promoted."""
    return csv_blocks.csv_cells(str(path), types=csv_blocks.sample_types(str(path)), allow_promotion=False,
                                block_bytes=256)


def in_file_order(examples_dir, split):
    return [tf.train.Example.FromString(r.numpy())
            for path in sorted(glob.glob(os.path.join(examples_dir, f"Split-{split}", "*.gz")))
            for r in tf.data.TFRecordDataset(path, compression_type="GZIP")]


def test_output_is_shuffled_and_the_same_on_every_run(tmp_path):
    """A table sorted by its label does not reach the Trainer sorted (it reads only train_steps batches of a
    split); a rerun writes the same examples (chunks come out of the shuffle in any order)."""
    write(tmp_path / "data" / "sorted.csv",
          "x,label\n" + "".join(f"{i},{int(i >= 10_000)}\n" for i in range(20_000)))
    first = in_file_order(run_example_gen(columnar_executor.Executor, tmp_path / "data", tmp_path / "a").uri, "train")
    assert len(first) > 12_000
    head = [e.features.feature["label"].int64_list.value[0] for e in first[:1000]]
    assert 300 < sum(head) < 700  # both halves of the input in the first thousand rows
    again = in_file_order(run_example_gen(columnar_executor.Executor, tmp_path / "data", tmp_path / "b").uri, "train")
    assert sorted(e.SerializeToString() for e in again) == sorted(e.SerializeToString() for e in first)


@pytest.mark.parametrize("codec", ["lz4", "zstd"])
def test_a_packed_chunk_of_cells_unpacks_as_the_parquet_payload_of_those_cells(codec):
    """The Parquet payload's chunks travel through the shuffle as compressed Arrow IPC streams of scalar cells with
    their types (packed_table), made payload lists where they are written: empty cells, an all-empty column
    (UNKNOWN) and text included, the same as the payload of the cells made at once."""
    import pyarrow as pa

    cells = pa.RecordBatch.from_arrays(
        [pa.array([1, None, 3], pa.int64()), pa.array([0.5, 2.0, None], pa.float64()),
         pa.array([b"a", None, b"c"], pa.binary()), pa.array([None, None, None], pa.string())],
        names=["n", "x", "s", "empty"])
    kinds = {"n": csv_blocks.INT, "x": csv_blocks.FLOAT, "s": csv_blocks.STRING, "empty": csv_blocks.UNKNOWN}
    packed = chunk_writes.packed_table(cells, kinds, codec)
    unpacked = chunk_writes.unpacked_table(packed)
    assert unpacked.equals(pa.Table.from_batches([cell_encoding.payload_batch(cells, kinds)]))
    assert unpacked.schema == cell_encoding.payload_schema(kinds)
    assert unpacked.column("s").to_pylist() == [[b"a"], [], [b"c"]]
    assert unpacked.column("empty").to_pylist() == [None, None, None]  # no value, as CsvExampleGen writes


def test_row_hashes_hash_text_once_per_distinct_value_as_pandas_hashes_every_cell():
    """The Parquet payload's split of a row is a hash of its cells; text is hashed per distinct value and
    gathered, which must give every cell pandas' hash of that cell (empty cells, all-empty text included), so
    that the splits stay those of earlier versions."""
    import numpy as np
    import pandas as pd
    import pyarrow as pa

    batch = pa.RecordBatch.from_arrays(
        [pa.array([b"a", None, b"", b"a", b"b"], pa.binary()), pa.array([None] * 5, pa.string()),
         pa.array(["x", "y", None, "x", "\u00e9"], pa.string()), pa.array([1, None, 3, 1, -2]),
         pa.array([0.5, None, 2.0, 0.5, float("inf")])], names=["s", "e", "u", "n", "f"])
    expected = np.zeros(batch.num_rows, dtype=np.uint64)
    for name in sorted(batch.schema.names):
        cells = batch.column(batch.schema.get_field_index(name)).to_numpy(zero_copy_only=False)
        expected = (expected * np.uint64(1_000_003)) ^ pd.util.hash_array(cells, categorize=False)
    hashes = cell_encoding.row_hashes(batch)
    assert hashes.tolist() == expected.tolist()
    assert hashes[0] == hashes[3] and len(set(hashes.tolist())) == 4


@pytest.mark.parametrize("keep_bytes, codec", [(csv_blocks.KEEP_BYTES, "lz4"), (1000, "zstd")])
def test_the_shuffle_is_lz4_within_the_keep_budget_and_zstd_past_it(tmp_path, monkeypatch, keep_bytes, codec):
    """What the DirectRunner's shuffle holds is compressed fast (lz4) while the input is within KEEP_BYTES,
    small (zstd) past it; either way the files hold every row of the input."""
    import pyarrow.parquet as pq
    from tfx.proto import example_gen_pb2

    monkeypatch.setattr(csv_blocks, "KEEP_BYTES", keep_bytes)
    codecs = []
    pack = chunk_writes.packed_table

    def recorded(cells, kinds, chosen):
        codecs.append(chosen)
        return pack(cells, kinds, chosen)

    monkeypatch.setattr(chunk_writes, "packed_table", recorded)
    write(tmp_path / "data" / "a.csv", "n,s\n" + "".join(f"{i},x{i % 7}\n" for i in range(3000)))
    examples = run_example_gen(columnar_executor.Executor, tmp_path / "data", tmp_path / "out",
                               example_gen_pb2.FORMAT_PARQUET)
    assert codecs and set(codecs) == {codec}
    values = [v for split in ("train", "eval") for path in glob.glob(f"{examples.uri}/Split-{split}/*")
              for v in pq.read_table(path).column("n").to_pylist()]
    assert sorted(v[0] for v in values) == list(range(3000))
