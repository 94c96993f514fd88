"""Cron parsing, new-data detection and the local scheduler's skips (no pipeline runs here)."""
import datetime
import os

import pytest

from config import load_config
from pipeline.run_lock import lock_paths, run_lock
from pipeline.schedule import CronError, CronSchedule, LocalScheduler, data_signature
from config.spans import check_pattern, date_to_span, list_spans

SUNDAY = datetime.datetime(2026, 11, 22, 1, 7, 30)


@pytest.mark.parametrize("expression, expected", [
    ("*/15 * * * *", datetime.datetime(2026, 11, 22, 1, 15)),
    ("0 3 * * *", datetime.datetime(2026, 11, 22, 3, 0)),
    ("30 2 * * 1-5", datetime.datetime(2026, 11, 23, 2, 30)),       # next weekday
    ("0 12 * * 7", datetime.datetime(2026, 11, 22, 12, 0)),         # 7 is Sunday
    ("0 0 13 * 5", datetime.datetime(2026, 11, 27, 0, 0)),          # the 13th OR a Friday, as in cron
    ("5,45 1 * * *", datetime.datetime(2026, 11, 22, 1, 45)),
    ("0 0 29 2 *", datetime.datetime(2028, 2, 29, 0, 0)),
    ("@hourly", datetime.datetime(2026, 11, 22, 2, 0)),
    ("@weekly", datetime.datetime(2026, 11, 29, 0, 0)),
])
def test_next_tick(expression, expected):
    assert CronSchedule.parse(expression).next_after(SUNDAY) == expected


@pytest.mark.parametrize("expression, message", [
    ("* * * *", "5 fields"), ("60 * * * *", "minute field '60'"), ("* * 0 * *", "day of month field '0'"),
    ("*/0 * * * *", "values must lie"), ("a * * * *", "not a number"), ("0 0 31 2 *", "never matches"),
])
def test_bad_expressions(expression, message):
    with pytest.raises(CronError, match=message):
        CronSchedule.parse(expression).next_after(SUNDAY)


def test_span_patterns(tmp_path):
    for name in ("span-1/a.csv", "span-2/a.csv", "span-2/b.csv", "span-x/a.csv", "other/a.csv"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text("x\n1\n")
    spans = list_spans(str(tmp_path), "span-{SPAN}/*.csv")
    assert sorted(spans) == [1, 2] and [os.path.basename(f) for f in spans[2]] == ["a.csv", "b.csv"]
    (tmp_path / "2026-11-20").mkdir()
    (tmp_path / "2026-11-20" / "d.csv").write_text("x\n1\n")
    assert list(list_spans(str(tmp_path), "{YYYY}-{MM}-{DD}/*.csv")) == [date_to_span(2026, 11, 20)]
    assert check_pattern("data/*.csv").startswith("must hold {SPAN}")
    assert "not both" in check_pattern("{SPAN}/{YYYY}-{MM}-{DD}")
    assert "all of" in check_pattern("{YYYY}-{MM}")


@pytest.fixture
def spans_config(tmp_path):
    (tmp_path / "data" / "span-1").mkdir(parents=True)
    (tmp_path / "data" / "span-1" / "a.csv").write_text("x,y\n1,0\n2,1\n")
    (tmp_path / "c.yaml").write_text("name: s\ndata: {path: data, pattern: 'span-{SPAN}/*.csv'}\n"
                                     "label: {column: y, task: binary}\nfeatures: {x: zscore}\n")
    return tmp_path, load_config(str(tmp_path / "c.yaml"))


def test_data_signature_changes_with_a_new_span_or_rewritten_files(spans_config):
    root, config = spans_config
    first = data_signature(config)
    assert first["span"] == 1 and data_signature(config) == first
    (root / "data" / "span-1" / "a.csv").write_text("x,y\n1,0\n2,1\n3,0\n")
    assert data_signature(config) != first
    (root / "data" / "span-2").mkdir()
    (root / "data" / "span-2" / "a.csv").write_text("x,y\n5,1\n")
    assert data_signature(config)["span"] == 2


def test_a_tick_while_another_run_holds_the_root_is_skipped(spans_config):
    _, config = spans_config
    lines = []

    def never(*args, **kwargs):
        raise AssertionError("the pipeline must not run")

    def run_local_like(config, emit_line):  # what run_local does first: take the lock
        with run_lock(lock_paths(config.pipeline_root, config.metadata_path), config.source):
            never()

    with run_lock(lock_paths(config.pipeline_root, config.metadata_path), "other.yaml"):
        result = LocalScheduler(config, CronSchedule.parse("@hourly"), run_local_like, lines.append).tick()
    assert not result.ran and "another tfxp run holds" in result.reason and "other.yaml" in result.reason


def test_schedule_command_runs_ticks_in_the_foreground(spans_config, monkeypatch, capsys):
    """`tfxp schedule` (local): the cron's next tick, then a skip because this span already ran."""
    import pipeline.schedule as schedule_lib
    from pipeline import cli

    root, config = spans_config
    schedule_lib._record_signature(config, data_signature(config), type("S", (), {"pushed": True,
                                                                                  "pushed_model_dir": None})())
    clock = [datetime.datetime(2026, 11, 22, 1, 7, 30)]

    class FakeClock(schedule_lib.LocalScheduler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs, now=lambda: clock[0],
                             sleep=lambda s: clock.__setitem__(0, clock[0] + datetime.timedelta(seconds=s)))

    monkeypatch.setattr(schedule_lib, "LocalScheduler", FakeClock)
    assert cli.main(["schedule", "--config", str(root / "c.yaml"), "--cron", "*/30 * * * *",
                     "--max-ticks", "2"]) == 0
    out = capsys.readouterr().out
    assert "[tfxp] schedule: next tick at 2026-11-22 01:30" in out
    assert "[tfxp] schedule: next tick at 2026-11-22 02:00" in out
    assert out.count("[tfxp] schedule: skipping this tick: no new data (span 1 already ran)") == 2
