"""bench/pipeline: tfxp's full run vs the official TFX Chicago taxi example, in one bench run.

Runs, one after the other on this machine:
  1. `tfxp run --config configs/taxi.yaml` into a fresh temporary pipeline root (a fresh process: imports count);
  2. the same command again at once (cached re-run);
  3. tfx/examples/chicago_taxi_pipeline/taxi_pipeline_native_keras.py from the installed tfx wheel, as a
     subprocess in a temporary HOME holding the data and module file it expects ($HOME/taxi/...).
Writes JSON: wall seconds of each, per-component seconds (from ML Metadata execution times, the same source
for both pipelines), tfxp/official wall ratio, and each pipeline's eval metric (binary accuracy).

    python -m bench.pipeline --out bench/results/pipeline.json [--skip-official]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Any, Dict, List

from bench import write_json

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OFFICIAL_NAME = "chicago_taxi_native_keras"


def component_seconds(metadata_path: str, pipeline_name: str) -> Dict[str, float]:
    """Seconds per node of the latest execution of each node, from MLMD create/update times."""
    from pipeline.summary import latest_execution, open_store

    store = open_store(metadata_path)
    seconds = {}
    for context in store.get_contexts_by_type("node"):
        prefix = f"{pipeline_name}."
        if not context.name.startswith(prefix):
            continue
        node = context.name[len(prefix):]
        execution = latest_execution(store, pipeline_name, node)
        if execution is not None:
            seconds[node] = round((execution.last_update_time_since_epoch
                                   - execution.create_time_since_epoch) / 1000.0, 2)
    return seconds


def timed(command: List[str], env: Dict[str, str], cwd: str, log_path: str) -> float:
    started = time.monotonic()
    with open(log_path, "w") as log:
        result = subprocess.run(command, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT)
    wall = time.monotonic() - started
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed with exit code {result.returncode}; see {log_path}")
    return round(wall, 2)


def run_tfxp(work: str, env: Dict[str, str]) -> Dict[str, Any]:
    root, serving = os.path.join(work, "tfxp_root"), os.path.join(work, "tfxp_serving")
    result: Dict[str, Any] = {}
    # cached_rerun: nothing changed since the full run, so every step comes from cache (the Evaluator's and
    # the DataGate's baselines exclude the run's own model and statistics); second_rerun: the same again.
    for attempt in ("full", "cached_rerun", "second_rerun"):
        summary_path = os.path.join(work, f"tfxp_{attempt}.json")
        command = [os.path.join(os.path.dirname(sys.executable), "tfxp"), "run",
                   "--config", os.path.join(REPO, "configs", "taxi.yaml"),
                   "--pipeline-root", root, "--serving-dir", serving, "--summary-json", summary_path]
        wall = timed(command, env, REPO, os.path.join(work, f"tfxp_{attempt}.log"))
        summary = json.load(open(summary_path))
        if attempt == "full":  # before the re-run adds (cached) executions
            full_seconds = component_seconds(os.path.join(root, "metadata.sqlite"), "taxi")
        result[attempt] = {"wall_seconds": wall, "component_seconds": summary["component_seconds"],
                           "cached_components": summary["cached_components"], "metrics": summary["metrics"],
                           "pushed": summary["pushed"]}
    result["full"]["mlmd_component_seconds"] = full_seconds
    for attempt in ("cached_rerun", "second_rerun"):
        result[attempt]["share_of_full"] = round(result[attempt]["wall_seconds"] / result["full"]["wall_seconds"], 3)
    return result


def run_official(work: str, env: Dict[str, str]) -> Dict[str, Any]:
    import tfx

    from pipeline.summary import read_summary

    example_dir = os.path.join(os.path.dirname(tfx.__file__), "examples", "chicago_taxi_pipeline")
    home = os.path.join(work, "official_home")
    os.makedirs(os.path.join(home, "taxi", "data", "simple"))
    shutil.copy(os.path.join(example_dir, "data", "simple", "data.csv"),
                os.path.join(home, "taxi", "data", "simple", "data.csv"))
    shutil.copy(os.path.join(example_dir, "taxi_utils_native_keras.py"), os.path.join(home, "taxi"))
    official_env = dict(env, HOME=home)
    wall = timed([sys.executable, os.path.join(example_dir, "taxi_pipeline_native_keras.py")], official_env,
                 home, os.path.join(work, "official.log"))
    metadata = os.path.join(home, "tfx", "metadata", OFFICIAL_NAME, "metadata.db")
    summary = read_summary(metadata, OFFICIAL_NAME)
    return {"wall_seconds": wall, "component_seconds": component_seconds(metadata, OFFICIAL_NAME),
            "metrics": summary.metrics, "pushed": summary.pushed,
            "beam_args": ["--direct_running_mode=multi_processing", "--direct_num_workers=0"]}


WARM_UP = ("import tensorflow, tf_keras, apache_beam, tensorflow_transform, tensorflow_data_validation, "
           "tensorflow_model_analysis; from tfx.orchestration.local.local_dag_runner import LocalDagRunner; "
           "from tfx.components import CsvExampleGen, Evaluator, Transform, Trainer")


def warm_up(env) -> float:
    """One throwaway process importing the whole stack first: this machine's page cache is often dropped,
    and whichever pipeline ran first would otherwise pay for reading ~3 GB of libraries from disk."""
    started = time.monotonic()
    subprocess.run([sys.executable, "-c", WARM_UP], env=env, check=True, capture_output=True)
    return round(time.monotonic() - started, 2)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.path.join(REPO, "bench", "results", "pipeline.json"))
    parser.add_argument("--skip-official", action="store_true", help="only time tfxp (no ratio)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary working directory")
    args = parser.parse_args(argv)
    work = tempfile.mkdtemp(prefix="tfxp_bench_")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", TF_USE_LEGACY_KERAS="1")
    report: Dict[str, Any] = {"machine": {"cpus": os.cpu_count()}, "work_dir": work}
    try:
        report["warmup_seconds"] = warm_up(env)
        report["tfxp"] = run_tfxp(work, env)
        print(f"tfxp full run {report['tfxp']['full']['wall_seconds']} s, cached re-runs "
              f"{report['tfxp']['cached_rerun']['wall_seconds']} s and "
              f"{report['tfxp']['second_rerun']['wall_seconds']} s", flush=True)
        if not args.skip_official:
            report["official"] = run_official(work, env)
            print(f"official example {report['official']['wall_seconds']} s", flush=True)
            report["ratio_tfxp_to_official_wall"] = round(
                report["tfxp"]["full"]["wall_seconds"] / report["official"]["wall_seconds"], 3)
            report["eval_binary_accuracy"] = {
                "tfxp": report["tfxp"]["full"]["metrics"].get("binary_accuracy"),
                "official": report["official"]["metrics"].get("binary_accuracy")}
    except Exception:
        print(f"bench failed; logs kept in {work}", file=sys.stderr)
        raise
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    write_json(args.out, report)
    print(json.dumps({k: report[k] for k in report if k in ("ratio_tfxp_to_official_wall",
                                                             "eval_binary_accuracy")}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
