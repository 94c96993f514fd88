"""`tfxp` command line. Thin: parses arguments, loads the config, and imports TensorFlow only to run."""
from __future__ import annotations

import argparse
import json
import os
import sys
from typing import List, Optional

from pipeline.config import ConfigError, default_schema_file, load_config

# Exit statuses (README, "Command line").
EXIT_COMPONENT_FAILED, EXIT_CONFIG, EXIT_BAD_DATA, EXIT_BUSY = 1, 2, 3, 4


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tfxp", description="TFX pipelines for tabular data.")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run the whole pipeline locally (LocalDagRunner, Beam DirectRunner)")
    run.add_argument("--config", required=True, help="YAML config file")
    run.add_argument("--pipeline-root", help="override outputs.pipeline_root (the metadata store follows it "
                                             "unless outputs.metadata_path is set)")
    run.add_argument("--serving-dir", help="override outputs.serving_dir")
    run.add_argument("--summary-json", help="also write the run summary to this JSON file")
    run.add_argument("--wait", action="store_true",
                     help="if another run holds the pipeline root, wait for it instead of exiting")
    schema = commands.add_parser("schema", help="the frozen schema the data gate validates against")
    schema_commands = schema.add_subparsers(dest="schema_command", required=True)
    freeze = schema_commands.add_parser(
        "freeze", help="infer a schema with domains from the config's data and write it for review")
    freeze.add_argument("--config", required=True, help="YAML config file")
    freeze.add_argument("--output", help="schema file to write (default: validation.schema of the config, "
                                         "else <config>.schema.pbtxt beside it)")
    freeze.add_argument("--force", action="store_true", help="overwrite an existing schema file")
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


def _tf_environment() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # TF's C++ start-up chatter; failures still raise
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")


def _run(args) -> int:
    try:
        config = load_config(args.config).with_overrides(args.pipeline_root, args.serving_dir)
    except ConfigError as e:
        print(f"tfxp: config error: {e}", file=sys.stderr)
        return EXIT_CONFIG
    _tf_environment()
    from pipeline.local_runner import PipelineFailed, run_local  # TFX and TensorFlow load when it runs
    from pipeline.preflight import InputError
    from pipeline.run_lock import PipelineRootBusy

    def failed(status: int, message: str, **extra) -> int:
        print(f"tfxp: {message}", file=sys.stderr)
        _write_json(args.summary_json, {"pipeline_name": config.name, "pushed": False, "error": message,
                                        **extra})
        return status

    print(f"[tfxp] pipeline {config.name}: data {config.data.path}", flush=True)
    try:
        summary = run_local(config, emit_line=lambda line: print(line, flush=True), wait=args.wait)
    except PipelineRootBusy as e:
        return failed(EXIT_BUSY, str(e))
    except InputError as e:
        return failed(EXIT_BAD_DATA, f"bad input data, nothing was run: {e}", failed_component=None,
                      bad_input={"file": e.path, "line": e.line, "column": e.column})
    except PipelineFailed as e:
        anomalies = e.anomalies
        if anomalies:
            lines = "\n".join(f"  {a.line()}" for a in anomalies)
            return failed(EXIT_BAD_DATA, f"data validation stopped the run before Transform; nothing was "
                                         f"trained or pushed ({e.log_file}):\n{lines}",
                          failed_component=e.component, anomalies=[a.__dict__ for a in anomalies])
        return failed(EXIT_COMPONENT_FAILED, str(e), failed_component=e.component)
    _print_summary(summary)
    _write_json(args.summary_json, summary.to_json())
    return 0


def _schema_freeze(args) -> int:
    try:
        config = load_config(args.config, schema_must_exist=False)
    except ConfigError as e:
        print(f"tfxp: config error: {e}", file=sys.stderr)
        return EXIT_CONFIG
    output = os.path.abspath(args.output or config.validation.schema_file or default_schema_file(config.source))
    if os.path.exists(output) and not args.force:
        print(f"tfxp: {output} exists (a reviewed schema?); pass --force to overwrite it", file=sys.stderr)
        return EXIT_CONFIG
    _tf_environment()
    import logging
    import warnings

    from pipeline.preflight import InputError, check_csv_inputs

    try:
        check_csv_inputs(config)
    except InputError as e:
        print(f"tfxp: bad input data: {e}", file=sys.stderr)
        return EXIT_BAD_DATA
    # Quiet: start-up warnings of Google client libraries, Beam and TFDV; restored afterwards.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        logging.disable(logging.WARNING)
        try:
            from components.data_gate.freeze import freeze

            notes = freeze(config, output)
        finally:
            logging.disable(logging.NOTSET)
    for note in notes:
        print(f"[tfxp] note: {note}")
    print(f"[tfxp] wrote {output}: review it and commit it.")
    if config.validation.schema_file != output:
        print(f"[tfxp] to use it, add to {config.source}:\n  validation:\n    schema: "
              f"{os.path.relpath(output, os.path.dirname(config.source))}", flush=True)
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "run":
        return _run(args)
    if args.command == "schema" and args.schema_command == "freeze":
        return _schema_freeze(args)
    raise AssertionError(args.command)


if __name__ == "__main__":
    sys.exit(main())
