"""bench/latency: is the quantized serving function as fast as the float one? A control says what noise is.

Loads, in this one process, the float model, the SAME float model a second time (the control: any ratio it
shows is machine noise or an ordering effect), and the quantized model. Each round calls all three once at
a batch size, in a rotating order, and records per-round ratios to the first float model. Reports the median
ratio and its distribution-free confidence interval (components.quantizer.latency.paired_ratio_interval) for
the control and for the quantized model, at batch 1 and 256. Writes JSON.

    python -m bench.latency --float DIR --quantized DIR --examples 'PATTERN' [--rounds 600] [--out FILE]

Without --float/--quantized it uses the latest pushed pair of configs/taxi.yaml (run `make run` first).
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Any, Dict

from bench import write_json

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def measure(float_dir: str, quantized_dir: str, examples_pattern: str, rounds: int, batches=(1, 256)
            ) -> Dict[str, Any]:
    import tensorflow as tf

    from components.quantizer import gates as gates_lib
    from components.quantizer import latency as latency_lib

    fns = {"float": tf.saved_model.load(float_dir).signatures["serving_default"],
           "float_again": tf.saved_model.load(float_dir).signatures["serving_default"],
           "quantized": tf.saved_model.load(quantized_dir).signatures["serving_default"]}
    serialized = gates_lib.read_examples(examples_pattern, 1024)
    result: Dict[str, Any] = {"float_dir": float_dir, "quantized_dir": quantized_dir, "rounds": rounds,
                              "batches": {}}
    for batch in batches:
        times = latency_lib.interleaved_times(fns, serialized, batch, rounds)
        per_batch: Dict[str, Any] = {name: {"p50_ms": latency_lib.percentile(t, 50)} for name, t in times.items()}
        for name in ("float_again", "quantized"):
            per_batch[name]["vs_float"] = latency_lib.paired_ratio_interval(times["float"], times[name]).to_json()
        result["batches"][str(batch)] = per_batch
        control, quantized = (per_batch[n]["vs_float"] for n in ("float_again", "quantized"))
        print(f"batch {batch:4d}: float p50 {per_batch['float']['p50_ms']:.3f} ms | float/float "
              f"{control['ratio']:.3f} [{control['low']:.3f}, {control['high']:.3f}] | quantized/float "
              f"{quantized['ratio']:.3f} [{quantized['low']:.3f}, {quantized['high']:.3f}]", flush=True)
    return result


def _latest_pair() -> Dict[str, str]:
    from config import load_config
    from pipeline import nodes
    from pipeline.summary import latest_output_uri
    from serving.layout import versions

    config = load_config(os.path.join(REPO, "configs", "taxi.yaml"))
    version = str(versions(config.serving_dir)[-1])
    examples = latest_output_uri(config.metadata_path, config.name, nodes.EXAMPLE_GEN, "examples")
    return {"float": os.path.join(config.float_serving_dir, version),
            "quantized": os.path.join(config.serving_dir, version),
            "examples": os.path.join(examples, "Split-eval", "*")}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--float", dest="float_dir")
    parser.add_argument("--quantized")
    parser.add_argument("--examples", help="glob of gzipped tf.Example TFRecords (the eval split)")
    parser.add_argument("--rounds", type=int, default=600)
    parser.add_argument("--out", default=os.path.join(REPO, "bench", "results", "latency.json"))
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    pair = (_latest_pair() if not (args.float_dir and args.quantized and args.examples)
            else {"float": args.float_dir, "quantized": args.quantized, "examples": args.examples})
    result = measure(pair["float"], pair["quantized"], pair["examples"], args.rounds)
    write_json(args.out, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
