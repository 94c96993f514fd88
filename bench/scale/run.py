"""bench/scale: tfxp end to end at growing sizes of a taxi-shaped table, in one bench run.

For each size: generate the table (bench/scale/generate.py; 15k is the shipped table itself), run
`tfxp run` on configs/taxi.yaml pointed at it in a fresh process and a fresh pipeline root, once per variant
(--variants: "columnar", the default config; "parquet", with data.payload: parquet; at --stock-at sizes also
"stock": TFX's CsvExampleGen, TFMA's Evaluator and TFX's Transform with its defaults), and record the
wall seconds, per-component seconds (ML Metadata execution times), rows/s of the data-proportional steps and
the peak RSS of the run (the largest process of it, from getrusage of a wrapper). Writes JSON and prints a
Markdown table for README.

    python -m bench.scale.run --sizes 15000 150000 1000000 [--sizes 10000000] --out bench/results/scale.json

With --goals the same bench run also runs bench/pipeline (the default run against the official TFX example,
and two cached re-runs) before the sizes and bench/floors (pyarrow/numpy floors, on a table of the largest
size up to 1M) after them, each in a fresh process, embeds their reports and judges issue 11's goals from the
three (bench/goals.py): a table of them is printed and written under "goals".
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Any, Dict, List, NamedTuple

from bench import write_json
from bench.goals import ONE_MILLION, by_size, goals_table, issue11_goals

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHIPPED_ROWS = 15_000
# Steps whose work grows with the rows, and which rows they read (the Evaluator reads the eval split only).
PER_ROW_STEPS = {"CsvExampleGen": 1.0, "StatisticsGen": 1.0, "Transform": 2 / 3, "Evaluator": 1 / 3}
RSS_WRAPPER = ("import json, resource, subprocess, sys\n"
               "code = subprocess.run(sys.argv[1:]).returncode\n"
               "print(json.dumps({'returncode': code, 'peak_rss_kb': "
               "resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}))")


class Variant(NamedTuple):
    reader: str  # data.reader
    evaluator: str  # evaluation.evaluator
    payload: str  # data.payload
    # TFX's Transform and StatisticsGen as TFX runs them: transform: {materialize: true, statistics: true,
    # tf_compat_v1: false, batch_vocabulary_counts: false, one_pass_vocabularies: false, executor: tfx} and
    # validation: {one_pass_statistics: false}
    tfx_defaults: bool


# "stock" runs TFX's components as TFX runs them: CsvExampleGen, TFMA's Evaluator, Transform with its
# defaults (the transformed splits written, pre- and post-transform statistics, the preprocessing_fn traced as
# TF2 functions), and StatisticsGen with TFDV's GenerateStatistics per split; "columnar" is tfxp's default
# config; "parquet" the same with a Parquet payload.
VARIANTS = {"columnar": Variant("columnar", "columnar", "tf_example", False),
            "stock": Variant("stock", "tfma", "tf_example", True),
            "parquet": Variant("columnar", "columnar", "parquet", False)}
STOCK = "stock"


def config_for(data_dir: str, work: str, variant: str) -> str:
    options = VARIANTS[variant]
    text = open(os.path.join(REPO, "configs", "taxi.yaml")).read()
    text = text.replace("  format: csv\n",
                        f"  format: csv\n  reader: {options.reader}\n  payload: {options.payload}\n")
    text = text.replace("  metric: binary_accuracy\n",
                        f"  metric: binary_accuracy\n  evaluator: {options.evaluator}\n")
    if options.tfx_defaults:
        text = text.replace("\nvalidation:\n", "\nvalidation:\n  one_pass_statistics: false\n")
        text += ("\ntransform:\n  materialize: true\n  statistics: true\n  tf_compat_v1: false\n"
                 "  batch_vocabulary_counts: false\n  one_pass_vocabularies: false\n  executor: tfx\n")
    text = text.replace("package://tfx/examples/chicago_taxi_pipeline/data/big_tipper_label", data_dir)
    text = text.replace("schema: taxi.schema.pbtxt", f"schema: {os.path.join(REPO, 'configs', 'taxi.schema.pbtxt')}")
    text = text.replace("../runs/taxi/", os.path.join(work, "out") + "/")
    path = os.path.join(work, "taxi.yaml")
    with open(path, "w") as f:
        f.write(text)
    return path


def run_size(rows: int, work: str, env: Dict[str, str], variant: str = "columnar") -> Dict[str, Any]:
    from bench.pipeline import component_seconds
    from bench.scale.generate import generate

    os.makedirs(work, exist_ok=True)
    if rows == SHIPPED_ROWS:
        data_dir = "package://tfx/examples/chicago_taxi_pipeline/data/big_tipper_label"
        generated = 0.0
    else:
        data_dir = os.path.join(work, "data")
        started = time.monotonic()
        generate(rows, os.path.join(data_dir, "data.csv"))
        generated = round(time.monotonic() - started, 1)
    config = config_for(data_dir, work, variant)
    summary_path = os.path.join(work, "summary.json")
    command = [sys.executable, "-c", RSS_WRAPPER, os.path.join(os.path.dirname(sys.executable), "tfxp"), "run",
               "--config", config, "--summary-json", summary_path]
    started = time.monotonic()
    with open(os.path.join(work, "run.log"), "w") as log:
        result = subprocess.run(command, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=log, text=True)
    wall = round(time.monotonic() - started, 1)
    wrapper = json.loads(result.stdout.strip().splitlines()[-1])
    if wrapper["returncode"] != 0:
        raise RuntimeError(f"tfxp run on {rows} rows failed; see {work}/run.log")
    summary = json.load(open(summary_path))
    seconds = component_seconds(os.path.join(work, "out", "pipeline_root", "metadata.sqlite"), "taxi")
    return {"rows": rows, "variant": variant, "generate_seconds": generated, "wall_seconds": wall,
            "peak_rss_mb": round(wrapper["peak_rss_kb"] / 1024), "component_seconds": seconds,
            "rows_per_second": {step: round(rows * share / seconds[step]) for step, share in PER_ROW_STEPS.items()
                                if seconds.get(step)},
            "pushed": summary["pushed"], "pushed_kind": summary.get("pushed_kind"),
            # why the float model was pushed instead of the quantized one, when it was
            "quantization_gate_failures": summary.get("quantization_gate_failures") or [],
            "metrics": summary["metrics"]}


def run_bench(name: str, arguments: List[str], work: str, env: Dict[str, str]) -> Dict[str, Any]:
    """python -m bench.<name> in a fresh process of this bench run; its JSON report."""
    out = os.path.join(work, f"{name}.json")
    started = time.monotonic()
    with open(os.path.join(work, f"{name}.log"), "w") as log:
        result = subprocess.run([sys.executable, "-m", f"bench.{name}", *arguments, "--out", out], env=env,
                                cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    if result.returncode != 0:
        raise RuntimeError(f"bench.{name} failed with exit code {result.returncode}; see {work}/{name}.log")
    print(f"bench.{name}: {time.monotonic() - started:.0f} s", flush=True)
    with open(out) as f:
        return json.load(f)


def table(results: List[Dict[str, Any]]) -> str:
    steps = ["CsvExampleGen", "StatisticsGen", "Transform", "Trainer", "Evaluator", "Pusher"]
    lines = ["| rows | ExampleGen, Evaluator | " + " | ".join(steps) + " | total | peak RSS | pushed |",
             "| --- | --- | " + " | ".join("---" for _ in steps) + " | --- | --- | --- |"]
    for r in results:
        cells = []
        for step in steps:
            cell = f"{r['component_seconds'].get(step, 0):.1f} s"
            if step in r["rows_per_second"]:
                cell += f" ({r['rows_per_second'][step]:,} rows/s)"
            cells.append(cell)
        lines.append(f"| {r['rows']:,} | {r['variant']} | " + " | ".join(cells) +
                     f" | {r['wall_seconds']:.0f} s | {r['peak_rss_mb']:,} MB | {r['pushed_kind'] or r['pushed']} |")
    return "\n".join(lines)


def speedups(results: List[Dict[str, Any]]) -> Dict[str, Dict[str, Dict[str, float]]]:
    """Per size run with the stock variant: {size: {variant: stock seconds / the variant's seconds}} of each
    data-proportional step."""
    out: Dict[str, Dict[str, Dict[str, float]]] = {}
    for rows, variants in by_size(results).items():
        if STOCK not in variants:
            continue
        stock = variants[STOCK]["component_seconds"]
        for variant, result in variants.items():
            if variant != STOCK:
                seconds = result["component_seconds"]
                out.setdefault(str(rows), {})[variant] = {step: round(stock[step] / seconds[step], 2)
                                                          for step in PER_ROW_STEPS
                                                          if stock.get(step) and seconds.get(step)}
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[15_000, 150_000, 1_000_000])
    parser.add_argument("--out", default=os.path.join(REPO, "bench", "results", "scale.json"))
    parser.add_argument("--stock-at", type=int, nargs="*", default=[150_000],
                        help="sizes at which TFX's CsvExampleGen and TFMA's Evaluator also run, for the ratios")
    parser.add_argument("--variants", nargs="+", default=["columnar", "parquet"],
                        choices=[v for v in VARIANTS if v != STOCK], help="tfxp's variants, run at every size")
    parser.add_argument("--keep", action="store_true", help="keep the generated data and runs")
    parser.add_argument("--goals", action="store_true",
                        help="also run bench/pipeline and bench/floors in this bench run and judge issue 11's goals")
    args = parser.parse_args(argv)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", TF_USE_LEGACY_KERAS="1")
    work = tempfile.mkdtemp(prefix="tfxp_bench_scale_")
    results = []
    reports: Dict[str, Any] = {}
    try:
        if args.goals:
            reports["pipeline"] = run_bench("pipeline", [], work, env)
        for rows in args.sizes:
            for variant in [*args.variants, *([STOCK] if rows in args.stock_at else [])]:
                results.append(run_size(rows, os.path.join(work, f"{rows}_{variant}"), env, variant))
                print(f"{rows:>10,} rows ({variant}): {results[-1]['wall_seconds']} s, peak RSS "
                      f"{results[-1]['peak_rss_mb']} MB", flush=True)
        if args.goals:
            floor_rows = max([rows for rows in args.sizes if rows <= ONE_MILLION], default=ONE_MILLION)
            reports["floors"] = run_bench("floors", ["--rows", str(floor_rows)], work, env)
    except BaseException:
        print(f"bench failed: its data and logs are kept in {work}", file=sys.stderr)
        raise
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    ratios = speedups(results)
    report: Dict[str, Any] = {"machine": {"cpus": os.cpu_count()}, "results": results, "speedup_vs_stock": ratios,
                              **reports}
    goals = issue11_goals(report, reports.get("pipeline"), reports.get("floors")) if args.goals else []
    if goals:
        report["goals"] = [dataclasses.asdict(goal) for goal in goals]
    write_json(args.out, report)
    print(table(results))
    for rows, by_variant in ratios.items():
        for variant, by_step in by_variant.items():
            print(f"{int(rows):,} rows, stock / {variant} seconds: " +
                  ", ".join(f"{step} {ratio}x" for step, ratio in by_step.items()))
    if goals:
        print(goals_table(goals))
    return 0


if __name__ == "__main__":
    sys.exit(main())
