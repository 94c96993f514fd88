"""bench/quantize: every quantization method vs the float model, in one run.

Trains the default taxi pipeline into a temporary root (or uses --pipeline-root of an earlier run), then for
each method quantizes the Trainer's model (child process, as the pusher does) and measures, in this one
process and on the eval split: size ratio (weight bytes; files on disk too), metric delta, max |prediction difference|,
label flip rate, and p50/p99 latency at batch 1, 32 and 256 with the float and quantized models called
alternately, and the median paired ratio with its 99% interval. Writes JSON.

    python -m bench.quantize --out bench/results/quantize.json [--pipeline-root DIR] [--rounds N]
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from typing import Any, Dict

from bench import write_json

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BATCHES = (1, 32, 256)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.path.join(REPO, "bench", "results", "quantize.json"))
    parser.add_argument("--pipeline-root", help="an existing run of configs/taxi.yaml (default: run one)")
    parser.add_argument("--rounds", type=int, default=1000, help="timed calls per model and batch size")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    from components.quantizer import gates as gates_lib
    from components.quantizer.executor import quantize_in_child
    from config import QUANTIZATION_METHODS, default_gates, load_config
    from pipeline import nodes
    from pipeline.summary import latest_output_uri

    work = tempfile.mkdtemp(prefix="tfxp_bench_quantize_")
    config = load_config(os.path.join(REPO, "configs", "taxi.yaml"))
    root = args.pipeline_root or os.path.join(work, "root")
    if not args.pipeline_root:
        subprocess.run([os.path.join(os.path.dirname(sys.executable), "tfxp"), "run", "--config", config.source,
                        "--pipeline-root", root, "--serving-dir", os.path.join(work, "serving")],
                       check=True, stdout=subprocess.DEVNULL)
    metadata = os.path.join(root, "metadata.sqlite")
    model_dir = os.path.join(latest_output_uri(metadata, config.name, "Trainer", "model"), "Format-Serving")
    transform_graph = latest_output_uri(metadata, config.name, "Transform", "transform_graph")
    examples = latest_output_uri(metadata, config.name, nodes.EXAMPLE_GEN, "examples")
    report: Dict[str, Any] = {"model": model_dir, "metric": config.evaluation.metric, "batches": BATCHES,
                              "methods": {}}
    for method in QUANTIZATION_METHODS:
        out = os.path.join(work, method)
        try:
            quantize_in_child(model_dir, transform_graph, config.to_custom_config().to_json(), method, out,
                              os.path.join(examples, "Split-train", "*"), os.path.join(work, f"{method}_work"))
        except Exception as e:  # report it and go on with the other methods
            report["methods"][method] = {"error": str(e)}
            continue
        comparison = gates_lib.compare(model_dir, out, os.path.join(examples, "Split-eval", "*"),
                                       config.evaluation.metric, batch_sizes=BATCHES, looks=(args.rounds,))
        results = comparison.to_json()
        results["gate_failures_with_defaults"] = gates_lib.failures(
            comparison, gates_lib.Gates(**dict(default_gates(method))))
        report["methods"][method] = results
        latency = ", ".join(f"b{b} {i['ratio']:.3f}x [{i['low']:.3f}-{i['high']:.3f}]"
                            for b, i in results["latency_interval"].items())
        print(f"{method:13s} size {results['size_ratio']:.2f}x  {results['metric']} "
              f"{results['float_metric']:.4f} -> {results['quantized_metric']:.4f}  "
              f"max|d| {results['max_abs_prediction_diff']:.3g}  flips {results['label_flip_rate']:.4f}  "
              f"p50 vs float: {latency}", flush=True)
    shutil.rmtree(work, ignore_errors=True)
    write_json(args.out, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
