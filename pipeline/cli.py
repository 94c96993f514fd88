"""`tfxp` command line. Thin: parses arguments, loads the config, and imports TensorFlow only to run."""
from __future__ import annotations

import argparse
import json
import os
import sys
from typing import List, Optional

from config import MAX_LISTED, ConfigError, default_schema_file, load_config
from config.process import end_startup, exit_now, pause_gc_for_startup

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
    report = commands.add_parser("report", help="write the HTML report and model card of a run (default: the "
                                                "latest) from ML Metadata; `tfxp run` writes one for every run")
    report.add_argument("--config", required=True, help="YAML config file")
    report.add_argument("--run-id", help="the run (a pipeline_run id in ML Metadata; default: the latest); "
                                         "--list-runs shows them")
    report.add_argument("--output", help="HTML file to write (default: outputs.report_file, "
                                         "runs/<name>/report.html); model_card.md goes beside it")
    report.add_argument("--pipeline-root", help="override outputs.pipeline_root, as for `tfxp run`")
    report.add_argument("--list-runs", action="store_true", help="print the pipeline's run ids and exit")
    predict = commands.add_parser("predict", help="score a CSV or Parquet file of raw rows with a pushed model")
    source = predict.add_mutually_exclusive_group(required=True)
    source.add_argument("--model-dir", help="a pushed SavedModel, or a serving dir (its latest version)")
    source.add_argument("--config", help="YAML config: the latest version in its serving dir")
    predict.add_argument("--input", required=True, help="CSV (header line) or .parquet file of raw rows")
    predict.add_argument("--output", required=True, help="CSV or .parquet file to write: the input columns, "
                                                         "then the predictions and tfxp_error")
    predict.add_argument("--batch-size", type=int, default=4096, help="rows per batch (default 4096)")
    schema = commands.add_parser("schema", help="the frozen schema the data gate validates against")
    schema_commands = schema.add_subparsers(dest="schema_command", required=True)
    freeze = schema_commands.add_parser(
        "freeze", help="infer a schema with domains from the config's data and write it for review")
    freeze.add_argument("--config", required=True, help="YAML config file")
    freeze.add_argument("--output", help="schema file to write (default: validation.schema of the config, "
                                         "else <config>.schema.pbtxt beside it)")
    freeze.add_argument("--force", action="store_true", help="overwrite an existing schema file")
    compile_ = commands.add_parser("compile", help="compile for Vertex AI Pipelines or Kubeflow Pipelines "
                                                   "(KubeflowV2DagRunner; needs the config's cloud section)")
    compile_.add_argument("--config", required=True, help="YAML config file")
    compile_.add_argument("--target", required=True, choices=("vertex", "kubeflow"))
    compile_.add_argument("--output", required=True, help="JSON file to write")
    schedule = commands.add_parser(
        "schedule", help="retrain on a cron schedule: locally in the foreground, or as a Vertex AI schedule")
    schedule.add_argument("--config", required=True, help="YAML config file")
    schedule.add_argument("--cron", required=True, help='cron expression, e.g. "0 3 * * *" (local time; '
                                                        'Vertex: UTC unless prefixed with CRON_TZ=...)')
    schedule.add_argument("--target", choices=("local", "vertex"), default="local")
    schedule.add_argument("--max-ticks", type=int, help="local: stop after this many ticks (default: never)")
    schedule.add_argument("--spec", help="vertex: a compiled PipelineJob JSON (default: compile the config now)")
    schedule.add_argument("--display-name", help="vertex: name of the pipeline and schedule (default: config name)")
    schedule.add_argument("--start-time", help="vertex: RFC 3339 time of the first run (default: now)")
    schedule.add_argument("--end-time", help="vertex: RFC 3339 time after which no run starts")
    schedule.add_argument("--max-concurrent-runs", type=int, default=1, help="vertex: default 1")
    schedule.add_argument("--max-runs", type=int, help="vertex: stop after this many runs")
    return parser


def _print_summary(summary) -> None:
    print("[tfxp] summary")
    for name, value in sorted(summary.metrics.items()):
        baseline, constant = summary.baseline_metrics.get(name), summary.constant_metrics.get(name)
        print(f"  {name:<28} {value:.4f}"
              + (f"   (constant predictor: {constant:.4f})" if constant is not None else "")
              + (f"   (latest blessed model: {baseline:.4f})" if baseline is not None else ""))
    print(f"  blessed                      {summary.blessed}")
    for failure in summary.validation_failures:
        print(f"  not blessed because          {failure}")
    q = summary.quantization
    if q.get("size_ratio") is not None:
        latency = ", ".join(f"batch {b}: {i['ratio']:.2f}x [{i['low']:.2f}-{i['high']:.2f}]"
                            for b, i in q.get("latency_interval", {}).items())
        print(f"  quantized ({q.get('method')})          {q['size_ratio']:.2f}x smaller kernels "
              f"({q['float_weight_bytes']} -> {q['quantized_weight_bytes']} bytes of weights), "
              f"{q['metric']} {q['float_metric']:.4f} -> {q['quantized_metric']:.4f}, "
              f"max |d| {q['max_abs_prediction_diff']:.2g}, latency vs float {latency}")
    for reason in summary.quantization_gate_failures:
        print(f"  quantized form failed        {reason}")
    for reason in summary.push_blocked_reasons:
        print(f"  not pushed because           {reason}")
    kind = f" ({summary.pushed_kind} model)" if summary.pushed_kind else ""
    print(f"  pushed                       {summary.pushed}{kind}"
          f"{' -> ' + summary.pushed_model_dir if summary.pushed_model_dir else ''}")
    if summary.pushed_kind == "float":
        print("  note                         the float model was pushed because its quantized form failed "
              "a gate (quantization.on_gate_failure: push_nothing pushes nothing instead)")
    if summary.pushed_float_model_dir:
        print(f"  float copy                   {summary.pushed_float_model_dir}")
    for warning in summary.warnings:
        print(f"  warning                      {warning}")
    print(f"  total seconds                {summary.component_seconds.get('total', 0):.1f}")
    if summary.report_file:
        print(f"  report                       {summary.report_file}")


def _write_json(path: Optional[str], payload) -> None:
    if not path:
        return
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        json.dump(payload, f, indent=2, sort_keys=True)


def _config_error(error: Exception) -> int:
    print(f"tfxp: config error: {error}", file=sys.stderr)
    return EXIT_CONFIG


def _tf_environment() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # TF's C++ start-up chatter; failures still raise
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")


def _run(args) -> int:
    try:
        config = load_config(args.config).with_overrides(args.pipeline_root, args.serving_dir)
        if config.data.format == "bigquery":
            raise ConfigError(config.source, "data.format", "bigquery runs in compiled pipelines, where the "
                                                            "query runs in BigQuery: `tfxp compile --target vertex`")
    except ConfigError as e:
        return _config_error(e)
    _tf_environment()
    from pipeline.local_runner import PipelineFailed, run_local  # TFX and TensorFlow load when it runs
    from pipeline.preflight import InputError
    from pipeline.run_lock import PipelineRootBusy

    def failed(status: int, message: str, report_file: Optional[str] = None, **extra) -> int:
        print(f"tfxp: {message}", file=sys.stderr)
        if report_file:
            print(f"tfxp: report of the stopped run: {report_file}", file=sys.stderr)
            extra["report_file"] = report_file
        _write_json(args.summary_json, {"pipeline_name": config.name, "pushed": False, "error": message,
                                        **extra})
        return status

    print(f"[tfxp] pipeline {config.name}: data {config.data.path}", flush=True)
    try:
        summary = run_local(config, emit_line=lambda line: print(line, flush=True), wait=args.wait)
    except PipelineRootBusy as e:
        return failed(EXIT_BUSY, str(e))
    except InputError as e:
        return failed(EXIT_BAD_DATA, f"bad input data, nothing was run: {e}", e.report_file, failed_component=None,
                      bad_input={"file": e.path, "line": e.line, "column": e.column})
    except PipelineFailed as e:
        anomalies = e.anomalies
        if anomalies:
            lines = "\n".join(f"  {a.line()}" for a in anomalies)
            return failed(EXIT_BAD_DATA, f"data validation stopped the run before Transform; nothing was "
                                         f"trained or pushed ({e.log_file}):\n{lines}",
                          e.report_file, failed_component=e.component, anomalies=[a.__dict__ for a in anomalies])
        return failed(EXIT_COMPONENT_FAILED, str(e), e.report_file, failed_component=e.component)
    _print_summary(summary)
    _write_json(args.summary_json, summary.to_json())
    return 0


def _report(args) -> int:
    try:
        config = load_config(args.config).with_overrides(args.pipeline_root)
    except ConfigError as e:
        return _config_error(e)
    if not os.path.exists(config.metadata_path):
        print(f"tfxp: no runs yet: {config.metadata_path} does not exist", file=sys.stderr)
        return EXIT_CONFIG
    _tf_environment()
    from pipeline.report.collect import run_ids
    from pipeline.summary import open_store

    ids = run_ids(open_store(config.metadata_path), config.name)
    if args.list_runs:
        print("\n".join(ids))
        return 0
    if args.run_id and args.run_id not in ids:
        earlier = len(ids) - MAX_LISTED
        shown = ", ".join(ids[-MAX_LISTED:]) + (f" and {earlier} earlier" if earlier > 0 else "")
        print(f"tfxp: --run-id {args.run_id!r}: no such run of {config.name} (runs: {shown or 'none'})",
              file=sys.stderr)
        return EXIT_CONFIG
    if not ids:
        print(f"tfxp: no runs of {config.name} in {config.metadata_path}", file=sys.stderr)
        return EXIT_CONFIG
    import logging
    import warnings

    from pipeline.report import write_report

    with warnings.catch_warnings():  # library deprecation chatter while reading the artifacts
        warnings.simplefilter("ignore")
        logging.disable(logging.WARNING)
        try:
            files = write_report(config, run_id=args.run_id, output=args.output)
        finally:
            logging.disable(logging.NOTSET)
    print(f"[tfxp] wrote {files.html} and {files.model_card}"
          + (f" (and {files.pushed_model_card})" if files.pushed_model_card else ""))
    return 0


def _predict(args) -> int:
    model_dir = args.model_dir
    if args.config:
        try:
            model_dir = load_config(args.config).serving_dir
        except ConfigError as e:
            return _config_error(e)
    if not os.path.exists(args.input):
        print(f"tfxp: --input {args.input}: no such file", file=sys.stderr)
        return EXIT_CONFIG
    if args.batch_size <= 0:
        print(f"tfxp: --batch-size must be > 0, got {args.batch_size}", file=sys.stderr)
        return EXIT_CONFIG
    _tf_environment()
    from serving.predict import ERROR_COLUMN, predict_file

    def progress(rows: int, bad: int, seconds: float) -> None:
        print(f"\r[tfxp] {rows} rows scored ({rows / max(seconds, 1e-9):,.0f} rows/s), {bad} not parsed",
              end="", file=sys.stderr, flush=True)

    try:
        result = predict_file(model_dir, args.input, args.output, args.batch_size, progress)
    except (FileNotFoundError, ValueError) as e:
        print(f"\ntfxp: {e}", file=sys.stderr)
        return EXIT_BAD_DATA
    print(file=sys.stderr)
    for bad in result.bad_rows[:MAX_LISTED]:
        print(f"tfxp: {args.input}, {bad.where}: not scored: {bad.reason}", file=sys.stderr)
    if len(result.bad_rows) > MAX_LISTED:
        print(f"tfxp: ... and {len(result.bad_rows) - MAX_LISTED} more rows not scored "
              f"(each named in {ERROR_COLUMN} of the output)", file=sys.stderr)
    print(f"[tfxp] wrote {result.output}: {result.scored} of {result.rows} rows scored with {result.model_dir} "
          f"in {result.seconds:.1f} s")
    return 0


def _schema_freeze(args) -> int:
    try:
        config = load_config(args.config, schema_must_exist=False)
    except ConfigError as e:
        return _config_error(e)
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


def _compile(args) -> int:
    try:
        config = load_config(args.config)
        _tf_environment()
        from pipeline.kubeflow_runner import compile_pipeline

        spec = compile_pipeline(config, args.target, args.output)
    except ConfigError as e:
        return _config_error(e)
    tasks = (spec.get("pipelineSpec", spec))["root"]["dag"]["tasks"]
    print(f"[tfxp] wrote {args.output}: {args.target} spec of pipeline {config.name} with {len(tasks)} tasks, "
          f"image {config.cloud.image}")
    return 0


def _schedule(args) -> int:
    from pipeline.schedule import CronError, CronSchedule

    try:
        config = load_config(args.config)
        cron = CronSchedule.parse(args.cron)
    except ConfigError as e:
        return _config_error(e)
    except CronError as e:
        print(f"tfxp: --cron: {e}", file=sys.stderr)
        return EXIT_CONFIG
    _tf_environment()
    if args.target == "vertex":
        import tempfile

        from pipeline.kubeflow_runner import compile_pipeline
        from pipeline.schedule import schedule_vertex

        try:
            spec = args.spec
            if not spec:
                spec = os.path.join(tempfile.mkdtemp(prefix="tfxp_spec_"), f"{config.name}.json")
                compile_pipeline(config, "vertex", spec)
            schedule = schedule_vertex(config, args.cron, spec, args.display_name, args.start_time, args.end_time,
                                       args.max_concurrent_runs, args.max_runs)
        except ConfigError as e:
            return _config_error(e)
        print(f"[tfxp] created Vertex AI schedule {schedule.resource_name} ({args.cron})")
        return 0
    from pipeline.local_runner import run_local
    from pipeline.schedule import LocalScheduler

    print(f"[tfxp] schedule {config.name}: {args.cron}, running in the foreground (Ctrl-C stops it)", flush=True)
    scheduler = LocalScheduler(config, cron, run_local, emit=lambda line: print(line, flush=True))
    try:
        scheduler.run_forever(max_ticks=args.max_ticks)
    except KeyboardInterrupt:
        print("[tfxp] schedule stopped")
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "run":
        return _run(args)  # the collector comes back on once the pipeline is built (local_runner)
    end_startup()
    if args.command == "schema" and args.schema_command == "freeze":
        return _schema_freeze(args)
    if args.command == "compile":
        return _compile(args)
    if args.command == "report":
        return _report(args)
    if args.command == "predict":
        return _predict(args)
    if args.command == "schedule":
        return _schedule(args)
    raise AssertionError(args.command)


def console_main() -> None:
    """The `tfxp` command (setup.py entry point) and `python -m pipeline.cli`: main(), then exit_now with its
    status. An exception leaves through Python's normal exit, traceback included. TFX's components, TFMA's
    and TFDV's modules and Beam's cloud clients are imported as used (pipeline/deferred_imports.py),
    google.api_core's Python end-of-life warning does not scan
    every installed distribution (pipeline/api_core_warning.py), and the garbage collector waits while
    TensorFlow, TFX and Beam import (config.process.pause_gc_for_startup)."""
    from pipeline.api_core_warning import skip_distribution_scan
    from pipeline.deferred_imports import defer_imports

    pause_gc_for_startup()
    defer_imports()
    skip_distribution_scan()
    exit_now(int(main() or 0))


if __name__ == "__main__":
    console_main()
