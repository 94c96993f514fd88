"""Retraining on new data, locally: span 1 -> version 1; span 2 arrives -> a scheduled tick trains on the
window of both spans (analyzer cache and warm start from version 1), evaluates against version 1 and pushes
version 2 only if it is not worse; a tick with no new span does nothing; a worse candidate is not pushed.
"""
import csv
import datetime
import glob
import json
import os

import pytest
from conftest import REPO, sample_taxi_csv, tree_digest
from ml_metadata.proto import metadata_store_pb2

from config import load_config
from pipeline.local_runner import run_local
from pipeline.schedule import CronSchedule, LocalScheduler, data_signature, last_signature
from pipeline.summary import latest_execution, open_store
from serving.layout import versions
from trainer.task import SUMMARY_FILE

# Vocabularies small enough that every span fills them: the model's shape stays the same across spans, so
# warm starts apply.
SPANS_CONFIG = """
name: spans
data:
  path: data
  pattern: "span-{SPAN}/*.csv"
  rolling_window: 2
label: {column: big_tipper, task: binary}
features:
  fare: zscore
  trip_miles: zscore
  trip_seconds: zscore
  pickup_latitude: minmax
  dropoff_latitude: minmax
  trip_start_hour: vocab
  payment_type: {treatment: vocab, top_k: 3}
  company: {treatment: vocab, top_k: 10}
model: {width: 256, depth: 2, learning_rate: 0.005}
training: {train_steps: 100, eval_steps: 10, batch_size_per_replica: 64}
evaluation: {metric: binary_accuracy, threshold: 0.6, max_regression: 0.0}
validation:
  schema: %(schema)s
  drift: {payment_type: 0.1, company: 0.1, fare: 0.1}
outputs: {pipeline_root: out/root, serving_dir: out/serving}
"""


def add_span(root, span, rows, seed):
    (root / "data" / f"span-{span}").mkdir(parents=True)
    sample_taxi_csv(root / "data" / f"span-{span}" / "data.csv", rows, seed=seed)


def input_spans(store, pipeline, node, key):
    execution = latest_execution(store, pipeline, node)
    ids = [e.artifact_id for e in store.get_events_by_execution_ids([execution.id])
           if e.type == metadata_store_pb2.Event.INPUT and e.path.steps[0].key == key]
    return sorted(a.custom_properties["span"].int_value for a in store.get_artifacts_by_id(ids))


@pytest.fixture(scope="module")
def scenario(tmp_path_factory):
    root = tmp_path_factory.mktemp("spans")
    (root / "spans.yaml").write_text(SPANS_CONFIG % {"schema": os.path.join(REPO, "configs", "taxi.schema.pbtxt")})
    add_span(root, 1, 1500, seed=11)  # the config check reads the latest span's header
    config = load_config(str(root / "spans.yaml"))
    assert config.training.warm_start is True  # on by default with spans
    lines = []
    clock = [datetime.datetime(2026, 11, 22, 3, 0)]
    scheduler = LocalScheduler(config, CronSchedule.parse("0 * * * *"), run_local, lines.append,
                               now=lambda: clock[0], sleep=lambda s: clock.__setitem__(
                                   0, clock[0] + datetime.timedelta(seconds=s)))
    first = scheduler.run_forever(max_ticks=1)[0]
    after_first = tree_digest(config.serving_dir)
    versions_after_first = versions(config.serving_dir)
    idle = scheduler.tick()
    add_span(root, 2, 1500, seed=12)
    second = scheduler.run_forever(max_ticks=1)[0]
    return {"root": root, "config": config, "lines": lines, "first": first, "idle": idle, "second": second,
            "after_first": after_first, "versions_after_first": versions_after_first, "clock": clock[0]}


def test_span_1_is_trained_and_pushed_as_version_1(scenario):
    first = scenario["first"]
    assert first.ran and first.summary.pushed, first
    assert first.summary.baseline_metrics == {}  # nothing to compare with yet
    assert len(scenario["versions_after_first"]) == 1


def test_a_tick_without_a_new_span_does_nothing(scenario):
    idle = scenario["idle"]
    assert not idle.ran and idle.reason == "no new data (span 1 already ran)"
    assert "[tfxp] schedule: skipping this tick: no new data (span 1 already ran)" in scenario["lines"]


def test_ticks_follow_the_cron_expression(scenario):
    assert "[tfxp] schedule: next tick at 2026-11-22 04:00" in scenario["lines"]
    assert "[tfxp] schedule: next tick at 2026-11-22 05:00" in scenario["lines"]
    assert scenario["clock"] == datetime.datetime(2026, 11, 22, 5, 0)


def test_span_2_trains_on_the_window_with_the_analyzer_cache_and_a_warm_start(scenario):
    second, config = scenario["second"], scenario["config"]
    assert second.ran
    store = open_store(config.metadata_path)
    assert input_spans(store, "spans", "StatisticsGen", "examples") == [2]  # the new span is validated
    assert input_spans(store, "spans", "Transform", "examples") == [1, 2]  # the window is transformed
    transform = latest_execution(store, "spans", "Transform")
    keys = {e.path.steps[0].key for e in store.get_events_by_execution_ids([transform.id])
            if e.type == metadata_store_pb2.Event.INPUT}
    assert "analyzer_cache" in keys  # span 1's analysis from the first run
    [summary_file] = sorted(glob.glob(os.path.join(config.pipeline_root, "Trainer", "model_run", "*",
                                                   SUMMARY_FILE)), key=os.path.getmtime)[-1:]
    warm = json.load(open(summary_file))["warm_start"]
    first_model = latest_blessed_model_of_first_run(store)
    assert warm["from"] == os.path.join(first_model, "Format-Serving"), warm
    # The run's model card names the spans it trained on (the report of the scheduler's run).
    card = open(os.path.join(os.path.dirname(config.report_file), "model_card.md")).read()
    assert "trained on spans 1, 2" in card


def latest_blessed_model_of_first_run(store):
    context = store.get_context_by_type_and_name("node", "spans.Trainer")
    executions = sorted(store.get_executions_by_context(context.id), key=lambda e: e.id)
    events = store.get_events_by_execution_ids([executions[0].id])
    [model] = store.get_artifacts_by_id([e.artifact_id for e in events if e.type == metadata_store_pb2.Event.OUTPUT
                                         and e.path.steps[0].key == "model"])
    return model.uri


def test_span_2_is_evaluated_against_version_1_and_pushed_only_if_not_worse(scenario):
    summary, config = scenario["second"].summary, scenario["config"]
    assert set(summary.baseline_metrics) >= {"binary_accuracy"}  # evaluated against version 1
    not_worse = summary.metrics["binary_accuracy"] >= summary.baseline_metrics["binary_accuracy"]
    assert summary.blessed is not_worse
    assert summary.pushed is not_worse
    assert len(versions(config.serving_dir)) == (2 if not_worse else 1)
    # The run report shows the baseline's value beside the model's.
    html = open(config.report_file).read()
    assert "%.4f" % summary.baseline_metrics["binary_accuracy"] in html
    assert "none (no other blessed model)" not in html
    if not not_worse:
        assert tree_digest(config.serving_dir) == scenario["after_first"]


def test_a_worse_candidate_on_a_new_span_is_not_pushed(scenario):
    root, config = scenario["root"], scenario["config"]
    (root / "spans.yaml").write_text((root / "spans.yaml").read_text().replace(
        "training: {train_steps: 100,", "training: {warm_start: false, train_steps: 1,"))
    weak = load_config(str(root / "spans.yaml"))
    before = tree_digest(config.serving_dir)
    add_span(root, 3, 1500, seed=13)
    lines = []
    result = LocalScheduler(weak, CronSchedule.parse("@hourly"), run_local, lines.append).tick()
    assert result.ran and result.summary.baseline_metrics
    assert result.summary.blessed is False and result.summary.pushed is False
    assert any("vs baseline" in failure for failure in result.summary.validation_failures)
    assert tree_digest(config.serving_dir) == before
    assert last_signature(weak) == data_signature(weak)  # the span ran: the next tick skips it


def test_a_bad_span_is_not_recorded_so_the_fixed_data_runs_again(scenario, tmp_path):
    root, config = scenario["root"], scenario["config"]
    span = root / "data" / "span-9"
    span.mkdir()
    with open(span / "data.csv", "w", newline="") as f:
        csv.writer(f).writerows([["fare", "big_tipper"], ["1.0", "1"]])  # columns missing
    signature = last_signature(config)
    result = LocalScheduler(config, CronSchedule.parse("@hourly"), run_local, lambda line: None).tick()
    assert not result.ran and "bad input data" in result.reason and "missing column(s)" in result.reason
    assert last_signature(config) == signature
    for path in span.iterdir():
        path.unlink()
    span.rmdir()
