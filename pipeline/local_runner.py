"""Local runner: LocalDagRunner + Beam DirectRunner + SQLite ML Metadata, with per-component progress.

TFX's own INFO logs go to `<pipeline_root>/logs/<name>-<timestamp>.log`; the console gets one line per
component start and end, with seconds.
"""
from __future__ import annotations

import contextlib
import gc
import logging
import os
import time
from typing import Callable, Dict, Iterator, List, Optional

from config import PipelineConfig
from config.process import end_startup
from pipeline.preflight import InputError, check_csv_inputs
from pipeline.run_lock import lock_paths, run_lock
from pipeline.summary import RunSummary, read_summary

# LocalDagRunner (tfx/orchestration/local/local_dag_runner.py) and the portable launcher log these, for
# every node, with the node id / execution id as the only argument (TFX 1.16.0, pinned by the lock).
_RUNNING = "Component %s is running."
_FINISHED = "Component %s is finished."
_CACHED = "A cached execution %d is used."


class ComponentProgress(logging.Handler):
    """Turns LocalDagRunner's log records into start/end lines with seconds."""

    def __init__(self, emit_line: Callable[[str], None]):
        super().__init__(level=logging.INFO)
        self.emit_line = emit_line
        self.seconds: Dict[str, float] = {}
        self.cached: List[str] = []
        self.current: Optional[str] = None
        self._started = 0.0
        self._current_cached = False

    def emit(self, record: logging.LogRecord) -> None:
        if record.msg == _RUNNING:
            self.current, self._started, self._current_cached = str(record.args[0]), time.monotonic(), False
            self.emit_line(f"[tfxp] {self.current}: started")
        elif record.msg == _CACHED and self.current:
            self._current_cached = True
        elif record.msg == _FINISHED and self.current:
            seconds = time.monotonic() - self._started
            self.seconds[self.current] = round(seconds, 2)
            if self._current_cached:
                self.cached.append(self.current)
            self.emit_line(f"[tfxp] {self.current}: finished in {seconds:.1f} s"
                           f"{' (from cache)' if self._current_cached else ''}")
            self.current = None


class PipelineFailed(RuntimeError):
    def __init__(self, component: Optional[str], cause: BaseException, log_file: str):
        self.component, self.cause, self.log_file = component, cause, log_file
        self.report_file: Optional[str] = None
        where = f"component {component} failed" if component else "pipeline failed"
        super().__init__(f"{where}: {type(cause).__name__}: {cause} (full log: {log_file})")

    @property
    def anomalies(self) -> List:
        """The data gate's anomalies when that is what stopped the run, else []."""
        cause: Optional[BaseException] = self.cause
        while cause is not None:
            if hasattr(cause, "anomalies"):
                return list(cause.anomalies)
            cause = cause.__cause__ or cause.__context__
        return []


def _log_file(config: PipelineConfig) -> str:
    log_dir = os.path.join(config.pipeline_root, "logs")
    os.makedirs(log_dir, exist_ok=True)
    return os.path.join(log_dir, f"{config.name}-{time.strftime('%Y%m%d-%H%M%S')}.log")


@contextlib.contextmanager
def routed_logs(log_file: str, progress: logging.Handler) -> Iterator[None]:
    """Sends every library's log records and warnings to log_file (none to the console) and TFX's
    component records to `progress`, restoring the logging setup afterwards."""
    from absl import logging as absl_logging

    file_handler = logging.FileHandler(log_file)
    file_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root_logger, tf_logger, absl_logger = (logging.getLogger(), logging.getLogger("tensorflow"),
                                           logging.getLogger("absl"))
    saved_root_handlers, saved_tf_handlers = list(root_logger.handlers), list(tf_logger.handlers)
    # absl's verbosity, not the logger level: TF's autotrackable saves and restores get_verbosity().
    saved_verbosity = absl_logging.get_verbosity()
    root_logger.handlers = [file_handler]
    tf_logger.handlers = []  # TF adds its own stderr handler when the root logger had none
    absl_logging.set_verbosity(absl_logging.INFO)
    absl_logger.addHandler(progress)
    logging.captureWarnings(True)
    try:
        yield
    finally:
        logging.captureWarnings(False)
        absl_logger.removeHandler(progress)
        absl_logging.set_verbosity(saved_verbosity)
        root_logger.handlers = saved_root_handlers
        tf_logger.handlers = saved_tf_handlers
        file_handler.close()


def write_run_report(config: PipelineConfig, emit_line: Callable[[str], None], **how) -> Optional[str]:
    """The run's report (pipeline/report), or None: a report that cannot be written is said, and never
    changes the run's outcome."""
    from pipeline.report import write_report

    try:
        return write_report(config, **how).html
    except Exception as e:  # noqa: BLE001 - reported, and the run's own result stands
        logging.getLogger(__name__).exception("run report not written")
        emit_line(f"[tfxp] the run report could not be written: {type(e).__name__}: {e}")
        return None


def run_local(config: PipelineConfig, emit_line: Callable[[str], None] = print, wait: bool = False,
              preflight: bool = True) -> RunSummary:
    """Runs the pipeline to completion, holding the pipeline root's run lock.

    Raises PipelineRootBusy (another run holds the root and wait is False), InputError (the local CSV
    files are malformed: checked before any component runs) or PipelineFailed naming the failing component.
    """
    if preflight:
        try:
            check_csv_inputs(config)
        except InputError as e:
            e.report_file = write_run_report(config, emit_line, error=f"bad input data, nothing was run: {e}",
                                             run_started=False)
            raise
    with run_lock(lock_paths(config.pipeline_root, config.metadata_path), config.source, wait=wait,
                  on_wait=lambda message: emit_line(f"[tfxp] {message}")):
        return _run_locked(config, emit_line)


def _run_locked(config: PipelineConfig, emit_line: Callable[[str], None]) -> RunSummary:
    os.makedirs(config.pipeline_root, exist_ok=True)
    os.makedirs(os.path.dirname(config.metadata_path) or ".", exist_ok=True)
    log_file = _log_file(config)
    progress = ComponentProgress(emit_line)
    started = time.monotonic()
    with routed_logs(log_file, progress):
        # Imported here so that their import-time warnings reach the log file.
        from tfx.orchestration.local.local_dag_runner import LocalDagRunner

        from pipeline.beam_memo import remembered_beam_answers
        from pipeline.input_resolution import one_query_per_channel
        from pipeline.pipeline import create_pipeline

        try:
            with remembered_beam_answers(in_process=config.beam.payloads_stay_in_process), one_query_per_channel():
                dag = create_pipeline(config)
                if end_startup():  # said in the log file, as TFX's own records (absl, INFO)
                    logging.getLogger("absl").info("tfxp: garbage collector on, %d objects of the start-up "
                                                   "frozen", gc.get_freeze_count())
                LocalDagRunner().run(dag)
        except Exception as e:  # a component failed: name it, keep the cause
            failure = PipelineFailed(progress.current, e, log_file)
            failure.report_file = write_run_report(config, emit_line, error=str(failure),
                                                   anomalies=failure.anomalies)
            raise failure from e
    from pipeline.report import run_cache

    summary = read_summary(config.metadata_path, config.name, config.label.column, config.label.task,
                           run_cache(config))
    summary.report_file = write_run_report(config, emit_line)
    summary.component_seconds = dict(progress.seconds)
    summary.component_seconds["total"] = round(time.monotonic() - started, 2)
    summary.cached_components = list(progress.cached)
    return summary
