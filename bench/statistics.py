"""StatisticsGen's one-pass statistics against TFDV's GenerateStatistics, alternating in one process.

The pipeline's StatisticsGen executor (components/statistics_gen: each split's statistics in one Beam combine,
`validation.one_pass_statistics: true`) and the same executor running TFDV's GenerateStatistics per split as
TFX does (`TfdvExecutor`, `one_pass_statistics: false`), on the taxi table generated at each size
(bench/scale/generate.py) and split as the pipeline splits it (two thirds train, one third eval), in the
tf.Example payload (gzipped TFRecords, the default) and the Parquet payload (`data.payload: parquet`). After a
warm-up run of each, the two alternate `--rounds` times (which goes first alternates too), so the machine's
phases hit both alike; the result is the ratio of their medians. Every round's statistics must be the same
for the two (one_pass.same_statistics: every field, floating-point values to 1e-12 relative, as TFDV's own
runs differ with the order of the batches), or the bench fails; whether the files were byte-identical too is
recorded.

    python -m bench.statistics [--sizes 15000 150000] [--payloads tf_example parquet] [--rounds 5]
                               [--out bench/results/statistics.json]
"""
from __future__ import annotations

import argparse
import filecmp
import os
import shutil
import statistics
import sys
import tempfile
import time
from typing import Dict, List

from bench import write_json
from bench.floors import beam_args, encode, remembered_beam_answers, to_parquet

SPLITS = ("train", "eval")
PAYLOADS = {"tf_example": False, "parquet": True}  # data.payload -> Parquet?


def split_csv(csv_path: str, out_dir: str) -> Dict[str, str]:
    """The CSV's rows in two files, every third row in eval (the pipeline's 2:1 split ratio)."""
    with open(csv_path) as f:
        header, *rows = f.read().splitlines()
    paths = {}
    for split, part in (("train", [r for i, r in enumerate(rows) if i % 3]), ("eval", rows[::3])):
        paths[split] = os.path.join(out_dir, f"{split}.csv")
        with open(paths[split], "w") as f:
            f.write("\n".join([header] + part) + "\n")
    return paths


def examples_artifact(uri: str, parquet: bool):
    from tfx.components.util import examples_utils
    from tfx.proto import example_gen_pb2
    from tfx.types import artifact_utils, standard_artifacts

    examples = standard_artifacts.Examples()
    examples.uri, examples.split_names = uri, artifact_utils.encode_split_names(list(SPLITS))
    examples_utils.set_payload_format(examples, example_gen_pb2.PayloadFormat.FORMAT_PARQUET if parquet
                                      else example_gen_pb2.PayloadFormat.FORMAT_TF_EXAMPLE)
    return examples


def run_executor(executor_class, examples, out_dir: str) -> float:
    """Seconds of one executor's Do over both splits (DirectRunner in memory, the pipeline's Beam args)."""
    from tfx.dsl.components.base.base_beam_executor import BaseBeamExecutor
    from tfx.types import standard_artifacts

    shutil.rmtree(out_dir, ignore_errors=True)
    output = standard_artifacts.ExampleStatistics()
    output.uri = out_dir
    started = time.perf_counter()
    with remembered_beam_answers():
        executor_class(BaseBeamExecutor.Context(beam_pipeline_args=beam_args())).Do(
            {"examples": [examples]}, {"statistics": [output]}, {})
    return time.perf_counter() - started


def _statistics_files(out_dir: str) -> List[str]:
    return [os.path.join(out_dir, f"Split-{split}", "FeatureStats.pb") for split in SPLITS]


def same_files(first: str, second: str) -> bool:
    return all(filecmp.cmp(a, b, shallow=False) for a, b in zip(_statistics_files(first), _statistics_files(second)))


def same_statistics(first: str, second: str) -> bool:
    from tensorflow_metadata.proto.v0 import statistics_pb2

    from components.statistics_gen.one_pass import same_statistics as same

    def load(path):
        with open(path, "rb") as f:
            return statistics_pb2.DatasetFeatureStatisticsList.FromString(f.read())

    return all(same(load(a), load(b)) for a, b in zip(_statistics_files(first), _statistics_files(second)))


def compare(examples, work: str, rounds: int) -> Dict[str, object]:
    from components.statistics_gen.executor import Executor, TfdvExecutor

    executors = {"one_pass": Executor, "tfdv": TfdvExecutor}
    outs = {name: os.path.join(work, name) for name in executors}
    for name, executor in executors.items():  # warm-up, not counted
        run_executor(executor, examples, outs[name])
    seconds: Dict[str, List[float]] = {name: [] for name in executors}
    identical_files = []
    for i in range(rounds):
        order = list(executors) if i % 2 == 0 else list(reversed(executors))
        for name in order:
            seconds[name].append(round(run_executor(executors[name], examples, outs[name]), 3))
        if not same_statistics(outs["one_pass"], outs["tfdv"]):
            raise AssertionError("the one-pass statistics differ from TFDV's")
        identical_files.append(same_files(outs["one_pass"], outs["tfdv"]))
    medians = {name: statistics.median(values) for name, values in seconds.items()}
    return {"seconds": seconds, "median_seconds": medians, "byte_identical_rounds": sum(identical_files),
            "tfdv_over_one_pass": round(medians["tfdv"] / medians["one_pass"], 2)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[15_000, 150_000])
    parser.add_argument("--payloads", nargs="+", default=list(PAYLOADS), choices=list(PAYLOADS))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "results",
                                                      "statistics.json"))
    args = parser.parse_args(argv)
    from bench.scale.generate import generate
    from config.process import end_startup, pause_gc_for_startup

    pause_gc_for_startup()  # as the tfxp command: the imports, then the collector on with them frozen
    from components.statistics_gen import executor  # noqa: F401
    end_startup()
    results = {}
    with tempfile.TemporaryDirectory(prefix="tfxp_bench_statistics_") as work:
        for rows in args.sizes:
            size_dir = os.path.join(work, str(rows))
            os.makedirs(size_dir)
            generate(rows, os.path.join(size_dir, "data.csv"))
            csvs = split_csv(os.path.join(size_dir, "data.csv"), size_dir)
            for payload in args.payloads:
                parquet = PAYLOADS[payload]
                uri = os.path.join(size_dir, payload)
                for split, csv_path in csvs.items():
                    os.makedirs(os.path.join(uri, f"Split-{split}"))
                    if parquet:
                        to_parquet(csv_path, os.path.join(uri, f"Split-{split}", "data_parquet-00000-of-00001.parquet"))
                    else:
                        encode(csv_path, os.path.join(uri, f"Split-{split}", "data_tfrecord-00000-of-00001.gz"))
                result = compare(examples_artifact(uri, parquet), os.path.join(size_dir, f"{payload}_out"),
                                 args.rounds)
                results[f"{rows}_{payload}"] = result
                print(f"{rows:>9,} rows, {payload}: one pass {result['median_seconds']['one_pass']:.2f} s, TFDV's "
                      f"{result['median_seconds']['tfdv']:.2f} s (medians of {args.rounds}), "
                      f"{result['tfdv_over_one_pass']}x", flush=True)
                # Written after every case: a long size does not lose the ones before.
                write_json(args.out, {"machine": {"cpus": os.cpu_count()}, "rounds": args.rounds,
                                      "results": results})
    return 0


if __name__ == "__main__":
    sys.exit(main())
