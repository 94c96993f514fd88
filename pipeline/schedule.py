"""Scheduled retraining.

Locally, `tfxp schedule --config FILE --cron EXPR` runs in the foreground: at each cron tick it runs the
pipeline if new data has arrived (a new span, or changed files in the latest span) and skips the tick
otherwise; ticks are sequential and every run holds the pipeline root's lock, so two runs never overlap.
For Vertex AI, `schedule_vertex` creates a pipeline schedule from a compiled spec through the
google-cloud-aiplatform SDK.
"""
from __future__ import annotations

import dataclasses
import datetime
import json
import os
import time
from typing import Callable, Dict, List, Optional, Set

from config import PipelineConfig

STATE_FILE = ".tfxp-schedule.json"

# --------------------------------------------------------------------------------------------------
# Cron


_FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day of month", 1, 31), ("month", 1, 12),
           ("day of week", 0, 7))  # 0 and 7 are Sunday
_ALIASES = {"@hourly": "0 * * * *", "@daily": "0 0 * * *", "@midnight": "0 0 * * *",
            "@weekly": "0 0 * * 0", "@monthly": "0 0 1 * *", "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *"}


class CronError(ValueError):
    pass


def _parse_field(text: str, name: str, low: int, high: int) -> Set[int]:
    values: Set[int] = set()
    for part in text.split(","):
        body, _, step_text = part.partition("/")
        try:
            step = int(step_text) if step_text else 1
            if body == "*":
                start, end = low, high
            elif "-" in body:
                start, end = (int(v) for v in body.split("-", 1))
            else:
                start = int(body)
                end = high if step_text else start
        except ValueError:
            raise CronError(f"{name} field {text!r}: not a number, range, list or step") from None
        if step <= 0 or not (low <= start <= end <= high):
            raise CronError(f"{name} field {text!r}: values must lie in {low}-{high}")
        values.update(range(start, end + 1, step))
    if name == "day of week" and 7 in values:
        values = (values - {7}) | {0}
    return values


@dataclasses.dataclass(frozen=True)
class CronSchedule:
    """Standard 5-field cron (minute hour day-of-month month day-of-week), in local time.

    As in cron, when both day fields are restricted a day matches if either does."""
    expression: str
    minutes: frozenset
    hours: frozenset
    days: frozenset
    months: frozenset
    weekdays: frozenset  # 0 = Sunday
    any_day: bool
    any_weekday: bool

    @classmethod
    def parse(cls, expression: str) -> "CronSchedule":
        """A leading `CRON_TZ=<zone>` or `TZ=<zone>` (Vertex AI's time zone prefix) is accepted and
        ignored: the fields are read in local time."""
        fields_text = expression.split(" ", 1)[1] if expression.startswith(("CRON_TZ=", "TZ=")) else expression
        fields = _ALIASES.get(fields_text.strip(), fields_text).split()
        if len(fields) != 5:
            raise CronError(f"{expression!r}: a cron expression has 5 fields (minute hour day-of-month month "
                            f"day-of-week), got {len(fields)}")
        parsed = [frozenset(_parse_field(text, *spec)) for text, spec in zip(fields, _FIELDS)]
        return cls(expression, *parsed, any_day=fields[2] == "*", any_weekday=fields[4] == "*")

    def _day_matches(self, moment: datetime.datetime) -> bool:
        day_ok = moment.day in self.days
        weekday_ok = (moment.isoweekday() % 7) in self.weekdays
        if self.any_day or self.any_weekday:
            return day_ok and weekday_ok
        return day_ok or weekday_ok

    def next_after(self, moment: datetime.datetime) -> datetime.datetime:
        """The first matching minute strictly after `moment`."""
        candidate = moment.replace(second=0, microsecond=0) + datetime.timedelta(minutes=1)
        for _ in range(366 * 24 * 60 * 5):  # any valid expression matches within 5 years (Feb 29)
            if candidate.month not in self.months or not self._day_matches(candidate):
                candidate = (candidate + datetime.timedelta(days=1)).replace(hour=0, minute=0)
            elif candidate.hour not in self.hours:
                candidate = (candidate + datetime.timedelta(hours=1)).replace(minute=0)
            elif candidate.minute not in self.minutes:
                candidate += datetime.timedelta(minutes=1)
            else:
                return candidate
        raise CronError(f"{self.expression!r} never matches")


# --------------------------------------------------------------------------------------------------
# Local foreground scheduler


def data_signature(config: PipelineConfig) -> Dict:
    """What a run would ingest: the latest span (None without spans) and its files' names, sizes and
    modification times. An unchanged signature means no new data."""
    span, files = config.data.latest()
    return {"span": span, "files": [[os.path.relpath(f, config.data.path), os.path.getsize(f),
                                     os.stat(f).st_mtime_ns] for f in files]}


def _state_path(config: PipelineConfig) -> str:
    return os.path.join(config.pipeline_root, STATE_FILE)


def last_signature(config: PipelineConfig) -> Optional[Dict]:
    try:
        with open(_state_path(config)) as f:
            return json.load(f).get("data_signature")
    except (OSError, ValueError):
        return None


def _record_signature(config: PipelineConfig, signature: Dict, summary) -> None:
    os.makedirs(config.pipeline_root, exist_ok=True)
    tmp = _state_path(config) + ".tmp"
    with open(tmp, "w") as f:
        json.dump({"data_signature": signature, "finished": time.strftime("%Y-%m-%d %H:%M:%S"),
                   "pushed": summary.pushed, "pushed_model_dir": summary.pushed_model_dir}, f, indent=2)
    os.replace(tmp, _state_path(config))


@dataclasses.dataclass
class TickResult:
    ran: bool
    reason: str
    summary: object = None


class LocalScheduler:
    """Runs the pipeline at cron ticks when new data has arrived. `run` is pipeline.local_runner.run_local
    (injected, with `now` and `sleep`, so that tests can drive ticks without waiting)."""

    def __init__(self, config: PipelineConfig, cron: CronSchedule, run: Callable, emit: Callable[[str], None],
                 now: Optional[Callable[[], datetime.datetime]] = None, sleep: Optional[Callable] = None):
        self.config, self.cron, self.run, self.emit = config, cron, run, emit
        self.now = now or (lambda: datetime.datetime.now())
        self.sleep = sleep or (lambda seconds: time.sleep(seconds))

    def tick(self) -> TickResult:
        from pipeline.preflight import InputError
        from pipeline.run_lock import PipelineRootBusy

        signature = data_signature(self.config)
        if not signature["files"]:
            return self._skip("no data files yet")
        if signature == last_signature(self.config):
            what = f"span {signature['span']}" if signature["span"] is not None else "the data"
            return self._skip(f"no new data ({what} already ran)")
        what = f"span {signature['span']}" if signature["span"] is not None else "changed data"
        self.emit(f"[tfxp] schedule: {what}: running the pipeline")
        try:
            summary = self.run(self.config, emit_line=self.emit)
        except PipelineRootBusy as e:
            return self._skip(str(e))
        except InputError as e:
            # Not recorded: the tick after the data is fixed (new files or mtimes) runs again.
            self.emit(f"[tfxp] schedule: bad input data: {e}")
            return TickResult(False, f"bad input data: {e}")
        except Exception as e:  # a failed run: report, keep scheduling; the same data is retried
            self.emit(f"[tfxp] schedule: run failed: {e}")
            return TickResult(False, f"run failed: {e}")
        _record_signature(self.config, signature, summary)
        self.emit(f"[tfxp] schedule: run finished: pushed {summary.pushed}"
                  f"{' -> ' + summary.pushed_model_dir if summary.pushed_model_dir else ''}")
        return TickResult(True, "ran", summary)

    def _skip(self, reason: str) -> TickResult:
        self.emit(f"[tfxp] schedule: skipping this tick: {reason}")
        return TickResult(False, reason)

    def run_forever(self, max_ticks: Optional[int] = None) -> List[TickResult]:
        results: List[TickResult] = []
        while max_ticks is None or len(results) < max_ticks:
            upcoming = self.cron.next_after(self.now())
            self.emit(f"[tfxp] schedule: next tick at {upcoming:%Y-%m-%d %H:%M}")
            while (remaining := (upcoming - self.now()).total_seconds()) > 0:
                self.sleep(min(remaining, 60.0))
            results.append(self.tick())
        return results


# --------------------------------------------------------------------------------------------------
# Vertex AI


def schedule_vertex(config: PipelineConfig, cron: str, spec_path: str, display_name: Optional[str] = None,
                    start_time: Optional[str] = None, end_time: Optional[str] = None,
                    max_concurrent_runs: int = 1, max_runs: Optional[int] = None, credentials=None):
    """Creates a Vertex AI pipeline schedule for a compiled PipelineJob spec (pipeline/kubeflow_runner.py):
    each run reads the newest data under cloud.data_path; a run that finds no new span is all cached.

    Times are RFC 3339 strings (2026-12-01T03:00:00Z). Returns the SDK's PipelineJobSchedule."""
    from google.cloud import aiplatform

    CronSchedule.parse(cron)  # validate
    cloud = config.cloud
    if cloud is None:
        raise ValueError(f"{config.source}: a Vertex AI schedule needs the config's cloud section")
    job = aiplatform.PipelineJob(
        display_name=display_name or config.name, template_path=spec_path, pipeline_root=cloud.pipeline_root,
        enable_caching=config.enable_cache, project=cloud.project, location=cloud.region,
        credentials=credentials)
    return job.create_schedule(
        cron=cron, display_name=f"{display_name or config.name}-schedule", start_time=start_time,
        end_time=end_time, max_concurrent_run_count=max_concurrent_runs, max_run_count=max_runs,
        service_account=cloud.service_account)
