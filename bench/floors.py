"""How fast could any StatisticsGen that reads ExampleGen's output be? Floors beside TFX's, in one process.

Issue 11 asks each data-proportional step to run 10x the rows/s of the stock component. StatisticsGen (TFDV)
and Transform (TFT) read ExampleGen's output: gzipped TFRecords of serialized tf.Examples. Whatever computes
their statistics or analyzers has to read and decode those records first, so that cost bounds the speed-up
of any replacement that keeps the tf.Example payload. This bench times, on one taxi-shaped table:

- `encode`: the CSV to a gzipped TFRecord file of tf.Examples (components/example_gen/cell_encoding.py, what
  the columnar ExampleGen writes);
- `statistics_gen`: the pipeline's StatisticsGen executor on that file (components/statistics_gen: TFX's, with
  each split's statistics in one Beam combine of TFDV's generators and a Parquet payload read without
  tfx-bsl's per-row telemetry; TFDV's statistics, DirectRunner in memory, default options, no schema: as the
  pipeline runs it);
- `read_records` + `decode`: the records read (tf.data, C++) and decoded into Arrow RecordBatches by tfx-bsl's
  C++ decoder, in batches of 8,192: the least any reader of the payload does;
- `numpy_statistics`: on the decoded batches, per feature what TFDV's common, numeric and string statistics
  hold (counts, missing, mean, std, zeros, min, max, 10 quantiles; value frequencies), in numpy/pyarrow;
- `pyarrow_csv_parse`: ExampleGen's floor, the CSV parsed into columns by pyarrow (bench/scale's goals set
  the columnar ExampleGen's seconds on the same generated table against it);
- `pyarrow_csv_statistics`: the issue's floor, the same statistics straight from the CSV (pyarrow's parser,
  no tf.Example at all);
- `to_parquet` + `statistics_gen_parquet`: the same rows written as the Parquet payload ExampleGen writes
  (one list column per feature, typed as tfx-bsl reads schema features) and the same StatisticsGen executor
  reading that (`FORMAT_PARQUET`, its ParquetTFXIO): TFDV's own cost with no tf.Example to decode, so
  the most a columnar payload could gain while the statistics stay TFDV's;
- `transform` / `transform_parquet`: TFX's Transform executor with tfxp's taxi preprocessing_fn (the
  analyzers over the rows, no materialization, as the pipeline runs it) on the tf.Examples, then on the
  Parquet payload; the two transform graphs' vocabularies must be the same;
- `pyarrow_csv_analyzers`: Transform's floor, the same analyzers straight from the CSV with pyarrow and
  numpy (means, standard deviations, mins and maxes; the vocabularies in tf.Transform's order and top_k),
  checked against the Parquet transform graph: the same vocabularies and z-score constants.

The floors' own pyarrow/numpy work is in bench/floor_computations.py; this module runs TFX's executors, times
every step and checks that the floors did the same work.

    python -m bench.floors [--rows 1000000] [--out bench/results/floors.json]
"""
from __future__ import annotations

import argparse
import gc
import glob
import os
import shutil
import sys
import tempfile
import time
from typing import Dict, Iterable, List

import numpy as np

from bench import write_json
from bench.floor_computations import (BATCH_ROWS, numpy_statistics, pyarrow_csv_analyzers, pyarrow_csv_parse,
                                     pyarrow_csv_statistics)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TAXI_CONFIG = os.path.join(REPO, "configs", "taxi.yaml")
TAXI_SCHEMA = os.path.join(REPO, "configs", "taxi.schema.pbtxt")


def remembered_beam_answers():
    """pipeline.beam_memo's block as the local runner opens it on the taxi config (its Beam arguments keep
    every bundle in this process)."""
    from config import load_config
    from pipeline import beam_memo

    return beam_memo.remembered_beam_answers(in_process=load_config(TAXI_CONFIG).beam.payloads_stay_in_process)


def beam_args() -> List[str]:
    """The Beam arguments the pipeline gives its components on the taxi config (DirectRunner in memory,
    cloudpickle, and --setup_file: without it TFX builds an ephemeral tfx sdist in a subprocess before every
    Beam executor, ~1 s that a pipeline run never pays)."""
    from config import load_config

    return load_config(TAXI_CONFIG).beam.pipeline_args()


def timed(results: Dict[str, float], name: str, fn, *args):
    gc.collect()
    started = time.perf_counter()
    value = fn(*args)
    results[name] = round(time.perf_counter() - started, 3)
    print(f"[bench.floors] {name}: {results[name]} s", file=sys.stderr, flush=True)
    return value


def encode(csv_path: str, tfrecord_path: str) -> int:
    import tensorflow as tf

    from components.example_gen.cell_encoding import encode_file

    count = 0
    with tf.io.TFRecordWriter(tfrecord_path, options="GZIP") as writer:
        for block in encode_file(csv_path):
            for record in block:
                writer.write(record)
            count += len(block)
    return count


def read_records(tfrecord_path: str) -> list:
    import tensorflow as tf

    return [batch for batch in tf.data.TFRecordDataset(tfrecord_path, compression_type="GZIP")
            .batch(BATCH_ROWS).as_numpy_iterator()]


def decode(batches: Iterable) -> list:
    from tfx_bsl.coders import example_coder

    decoder = example_coder.ExamplesToRecordBatchDecoder()
    return [decoder.DecodeBatch(list(batch)) for batch in batches]


def train_examples(examples_dir: str, parquet: bool = False):
    """An Examples artifact of one split, `train`, in examples_dir; tf.Examples, or with `parquet` a Parquet
    payload."""
    from tfx.components.util import examples_utils
    from tfx.proto import example_gen_pb2
    from tfx.types import artifact_utils, standard_artifacts

    examples = standard_artifacts.Examples()
    examples.uri, examples.split_names = examples_dir, artifact_utils.encode_split_names(["train"])
    if parquet:
        examples_utils.set_payload_format(examples, example_gen_pb2.PayloadFormat.FORMAT_PARQUET)
    return examples


def statgen_statistics(examples_dir: str, statistics_dir: str, parquet: bool = False):
    """The pipeline's StatisticsGen executor on the file (TFX's for tf.Examples), DirectRunner in memory; with
    `parquet`, on a Parquet payload."""
    from tfx.dsl.components.base.base_beam_executor import BaseBeamExecutor
    from tfx.types import standard_artifacts

    from components.statistics_gen.executor import Executor

    statistics = standard_artifacts.ExampleStatistics()
    statistics.uri = statistics_dir
    with remembered_beam_answers():
        Executor(BaseBeamExecutor.Context(beam_pipeline_args=beam_args())).Do(
            {"examples": [train_examples(examples_dir, parquet)]}, {"statistics": [statistics]}, {})
    return statistics_dir


def to_parquet(csv_path: str, parquet_path: str) -> int:
    """The CSV as one Parquet file, the Parquet payload that ExampleGen writes with data.payload: parquet
    (cell_encoding.payload_batch: list columns typed as tfx-bsl types schema features, which ParquetTFXIO checks
    batches against when given a schema, as Transform gives it)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from components.example_gen import cell_encoding, csv_blocks

    types = csv_blocks.file_types(csv_path, csv_blocks.sample_types(csv_path))
    writer, rows = None, 0
    for cells, kinds in csv_blocks.csv_cells(csv_path, types):
        table = pa.Table.from_batches([cell_encoding.payload_batch(cells, kinds)])
        writer = writer or pq.ParquetWriter(parquet_path, table.schema)
        writer.write_table(table)
        rows += table.num_rows
    writer.close()
    return rows


def transform(examples_dir: str, schema_dir: str, out_dir: str, parquet: bool = False) -> str:
    """The pipeline's Transform executor (TFX's, tracing once for its inspections) as the pipeline runs it on the
    taxi config (analyzers only), DirectRunner in memory; with `parquet`, on a Parquet payload. Returns the
    transform graph's directory."""
    from tfx.dsl.components.base.base_beam_executor import BaseBeamExecutor
    from tfx.types import standard_artifacts

    from config import load_config
    from pipeline import nodes
    from pipeline.pipeline import pipeline_node

    config = load_config(TAXI_CONFIG)
    schema = standard_artifacts.Schema()
    schema.uri = schema_dir  # holding schema.pbtxt only
    graph = standard_artifacts.TransformGraph()
    graph.uri = os.path.join(out_dir, "transform_graph")
    node = pipeline_node(config, nodes.TRANSFORM)
    executor = node.executor_spec.executor_class
    with remembered_beam_answers():
        executor(BaseBeamExecutor.Context(beam_pipeline_args=config.beam.pipeline_args(),
                                          tmp_dir=os.path.join(out_dir, "tmp"), unique_id="1")).Do(
            {"examples": [train_examples(examples_dir, parquet)], "schema": [schema]}, {"transform_graph": [graph]},
            {**node.exec_properties, "disable_analyzer_cache": True})
    return graph.uri


def graph_analyzers(transform_graph_dir: str, names: Iterable[str]) -> Dict[str, Dict[str, float]]:
    """The z-score features' mean and standard deviation baked into a transform graph, read back by transforming
    the values 1 and 2: z(1) = (1 - mean) / std, z(2) = (2 - mean) / std."""
    import tensorflow as tf
    import tensorflow_transform as tft

    output = tft.TFTransformOutput(transform_graph_dir)
    raw = {}
    for name, feature in output.raw_feature_spec().items():
        values = tf.constant(["1", "2"]) if feature.dtype == tf.string else tf.constant([1, 2], feature.dtype)
        raw[name] = tf.sparse.from_dense(tf.reshape(values, [2, 1]))
    transformed = output.transform_features_layer()(raw)
    out = {}
    for name in names:
        z1, z2 = transformed[f"{name}_xf"].numpy().astype(np.float64)
        std = 1.0 / (z2 - z1)
        out[name] = {"mean": 1.0 - z1 * std, "std": std}
    return out


def vocabularies(transform_graph_dir: str) -> Dict[str, List[str]]:
    assets = os.path.join(transform_graph_dir, "transform_fn", "assets")
    return {name: open(os.path.join(assets, name)).read().splitlines() for name in sorted(os.listdir(assets))}


def statgen_means(statistics_dir: str) -> Dict[str, float]:
    from tensorflow_metadata.proto.v0 import statistics_pb2

    from components.data_gate.checks import STATS_FILE

    statistics = statistics_pb2.DatasetFeatureStatisticsList()
    with open(os.path.join(statistics_dir, "Split-train", STATS_FILE), "rb") as f:
        statistics.ParseFromString(f.read())
    return {f.path.step[0]: f.num_stats.mean for f in statistics.datasets[0].features if f.HasField("num_stats")}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "results",
                                                      "floors.json"))
    args = parser.parse_args(argv)
    from bench.scale.generate import generate

    # Imported before any step is timed.
    import pyarrow.csv  # noqa: F401
    import tensorflow  # noqa: F401
    from components.statistics_gen import executor  # noqa: F401
    from tfx_bsl.coders import example_coder  # noqa: F401

    from config import load_config

    taxi_features = load_config(TAXI_CONFIG).features
    seconds: Dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="tfxp_floors_") as work:
        examples_dir = os.path.join(work, "examples")
        os.makedirs(os.path.join(examples_dir, "Split-train"))
        csv_path = os.path.join(work, "data.csv")
        tfrecord_path = os.path.join(examples_dir, "Split-train", "data_tfrecord-00000-of-00001.gz")
        timed(seconds, "generate", generate, args.rows, csv_path)
        timed(seconds, "encode", encode, csv_path, tfrecord_path)
        statistics_dir = timed(seconds, "statistics_gen", statgen_statistics, examples_dir,
                               os.path.join(work, "statistics"))
        stock_means = statgen_means(statistics_dir)
        parquet_dir = os.path.join(work, "parquet_examples")
        os.makedirs(os.path.join(parquet_dir, "Split-train"))
        timed(seconds, "to_parquet", to_parquet, csv_path, os.path.join(parquet_dir, "Split-train", "data.parquet"))
        parquet_statistics_dir = timed(seconds, "statistics_gen_parquet", statgen_statistics, parquet_dir,
                                       os.path.join(work, "parquet_statistics"), True)
        parquet_means = statgen_means(parquet_statistics_dir)
        schema_dir = os.path.join(work, "schema")
        os.makedirs(schema_dir)
        shutil.copy(TAXI_SCHEMA, os.path.join(schema_dir, "schema.pbtxt"))
        graph = timed(seconds, "transform", transform, examples_dir, schema_dir, os.path.join(work, "transform"))
        parquet_graph = timed(seconds, "transform_parquet", transform, parquet_dir, schema_dir,
                              os.path.join(work, "transform_parquet"), True)
        same_vocabularies = vocabularies(graph) == vocabularies(parquet_graph)
        assert same_vocabularies and vocabularies(graph), "the two payloads' vocabularies differ"
        records = timed(seconds, "read_records", read_records, tfrecord_path)
        batches = timed(seconds, "decode", decode, records)
        del records
        ours = timed(seconds, "numpy_statistics", numpy_statistics, batches)
        del batches
        parsed = timed(seconds, "pyarrow_csv_parse", pyarrow_csv_parse, csv_path)
        assert parsed == args.rows, (parsed, args.rows)
        from_csv = timed(seconds, "pyarrow_csv_statistics", pyarrow_csv_statistics, csv_path)
        analyzers = timed(seconds, "pyarrow_csv_analyzers", pyarrow_csv_analyzers, csv_path, taxi_features)
        # The floor did Transform's work: the same vocabularies, in order, and the same z-score constants.
        graph_vocabularies = vocabularies(parquet_graph)
        for name, tokens in analyzers.items():
            if isinstance(tokens, list):
                assert graph_vocabularies[f"vocab_{name}"] == tokens, name
        zscores = [name for name, value in analyzers.items() if isinstance(value, dict) and "std" in value]
        for name, value in graph_analyzers(parquet_graph, zscores).items():
            for key in ("mean", "std"):
                assert abs(value[key] - analyzers[name][key]) <= 1e-4 * max(1.0, abs(analyzers[name][key])), (
                    name, key, value, analyzers[name])
        csv_bytes, tfrecord_bytes = os.path.getsize(csv_path), os.path.getsize(tfrecord_path)
        assert not glob.glob(os.path.join(work, "*.tmp"))
    # The three computations agree (means of the numeric features), so they did the same work.
    assert stock_means
    agreement = {name: {"statistics_gen": mean, "statistics_gen_parquet": parquet_means[name],
                        "numpy_on_decoded": ours[name]["mean"], "pyarrow_csv": from_csv[name]["mean"]}
                 for name, mean in sorted(stock_means.items())}
    for name, means in agreement.items():
        for other in ("numpy_on_decoded", "statistics_gen_parquet"):
            assert abs(means["statistics_gen"] - means[other]) <= 1e-6 * max(1.0, abs(means["statistics_gen"])), (name, means)
    floor = seconds["read_records"] + seconds["decode"]
    result = {
        "rows": args.rows, "csv_bytes": csv_bytes, "tfrecord_gz_bytes": tfrecord_bytes, "seconds": seconds,
        "rows_per_second": {name: round(args.rows / s) for name, s in seconds.items() if s > 0},
        # StatisticsGen's time over the least any reader of the tf.Example payload spends: the largest speed-up
        # that a StatisticsGen (or a Transform) reading ExampleGen's output could reach.
        "statistics_gen_over_read_and_decode": round(seconds["statistics_gen"] / floor, 2),
        "statistics_gen_over_read_decode_and_numpy_statistics": round(
            seconds["statistics_gen"] / (floor + seconds["numpy_statistics"]), 2),
        "statistics_gen_over_pyarrow_csv_statistics": round(
            seconds["statistics_gen"] / seconds["pyarrow_csv_statistics"], 2),
        # What the stock StatisticsGen gains from a Parquet payload (no decoding): TFDV's own cost remains.
        "statistics_gen_over_statistics_gen_parquet": round(
            seconds["statistics_gen"] / seconds["statistics_gen_parquet"], 2),
        "statistics_gen_parquet_over_pyarrow_csv_statistics": round(
            seconds["statistics_gen_parquet"] / seconds["pyarrow_csv_statistics"], 2),
        "transform_over_transform_parquet": round(seconds["transform"] / seconds["transform_parquet"], 2),
        # TFX's Transform on the Parquet payload over its floor: tfxp's analyzers in pyarrow/numpy on the CSV.
        "transform_parquet_over_pyarrow_csv_analyzers": round(
            seconds["transform_parquet"] / seconds["pyarrow_csv_analyzers"], 2),
        "means": agreement,
    }
    write_json(args.out, result)
    print({k: v for k, v in result.items() if k != "means"})
    return 0


if __name__ == "__main__":
    sys.exit(main())
