"""`tfxp` command line. Thin: parses arguments, loads the config, and imports TensorFlow only to run."""
from __future__ import annotations

import argparse
import json
import os
import sys
from typing import List, Optional

from pipeline.config import ConfigError, load_config


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tfxp", description="TFX pipelines for tabular data.")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run the whole pipeline locally (LocalDagRunner, Beam DirectRunner)")
    run.add_argument("--config", required=True, help="YAML config file")
    run.add_argument("--pipeline-root", help="override outputs.pipeline_root (the metadata store follows it "
                                             "unless outputs.metadata_path is set)")
    run.add_argument("--serving-dir", help="override outputs.serving_dir")
    run.add_argument("--summary-json", help="also write the run summary to this JSON file")
    return parser


def _print_summary(summary) -> None:
    print("[tfxp] summary")
    for name, value in sorted(summary.metrics.items()):
        print(f"  {name:<28} {value:.4f}")
    print(f"  blessed                      {summary.blessed}")
    for failure in summary.validation_failures:
        print(f"  not blessed because          {failure}")
    q = summary.quantization
    if q.get("size_ratio") is not None:
        latency = ", ".join(f"batch {b}: {r:.2f}x" for b, r in q.get("latency_ratio", {}).items())
        print(f"  quantized ({q.get('method')})          {q['size_ratio']:.2f}x smaller, "
              f"{q['metric']} {q['float_metric']:.4f} -> {q['quantized_metric']:.4f}, "
              f"max |d| {q['max_abs_prediction_diff']:.2g}, p50 latency vs float {latency}")
    for reason in summary.push_blocked_reasons:
        print(f"  not pushed because           {reason}")
    print(f"  pushed                       {summary.pushed}"
          f"{' -> ' + summary.pushed_model_dir if summary.pushed_model_dir else ''}")
    if summary.pushed_float_model_dir:
        print(f"  float fallback               {summary.pushed_float_model_dir}")
    print(f"  total seconds                {summary.component_seconds.get('total', 0):.1f}")


def _write_json(path: Optional[str], payload) -> None:
    if not path:
        return
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        json.dump(payload, f, indent=2, sort_keys=True)


def _run(args) -> int:
    try:
        config = load_config(args.config).with_overrides(args.pipeline_root, args.serving_dir)
    except ConfigError as e:
        print(f"tfxp: config error: {e}", file=sys.stderr)
        return 2
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # TF's C++ start-up chatter; failures still raise
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    from pipeline.local_runner import PipelineFailed, run_local  # imports TFX and TensorFlow

    print(f"[tfxp] pipeline {config.name}: data {config.data.path}", flush=True)
    try:
        summary = run_local(config, emit_line=lambda line: print(line, flush=True))
    except PipelineFailed as e:
        print(f"tfxp: {e}", file=sys.stderr)
        _write_json(args.summary_json, {"pipeline_name": config.name, "pushed": False, "error": str(e),
                                        "failed_component": e.component})
        return 1
    _print_summary(summary)
    _write_json(args.summary_json, summary.to_json())
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "run":
        return _run(args)
    raise AssertionError(args.command)


if __name__ == "__main__":
    sys.exit(main())
