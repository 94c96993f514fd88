"""SIGKILL a `tfxp run` during Transform (once ML Metadata records its execution as running), then during
Trainer (once it has written a training backup); the third run finishes.

Finished components come from cache (checked in ML Metadata), the killed one runs again, the model is pushed
exactly once, and no artifact of a killed execution is ever an input of a later one.
"""
import json
import os
import signal
import subprocess
import sys
import time

import pytest
from conftest import REPO, sample_taxi_csv
from ml_metadata.proto import metadata_store_pb2

from config import load_config
from pipeline.summary import open_store
from serving.layout import versions

Execution, Artifact = metadata_store_pb2.Execution, metadata_store_pb2.Artifact


def start_run(config_path, summary_json):
    return subprocess.Popen(
        [sys.executable, "-m", "pipeline.cli", "run", "--config", config_path, "--summary-json", summary_json],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)


def kill_when_running(process, config, node, timeout_s=600):
    """SIGKILLs the run's whole process group once it has started `node` and ML Metadata records the node's
    execution as RUNNING (a fixed delay after the start line raced a Transform that finishes in 2-3 s on this
    sample); returns its output."""
    output = []
    for line in process.stdout:
        output.append(line)
        if line.startswith(f"[tfxp] {node}: started"):
            break
    deadline = time.monotonic() + timeout_s
    while True:
        assert process.poll() is None and time.monotonic() < deadline, "".join(output)[-3000:]
        try:
            executions = node_executions(open_store(config.metadata_path), node)
        except Exception:  # the store is being written: ask again
            executions = []
        if any(e.last_known_state == Execution.RUNNING for e in executions):
            break
        time.sleep(0.02)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL, "".join(output)[-3000:]
    return "".join(output)


def kill_when_backed_up(process, backup_pattern, timeout_s=600):
    """SIGKILLs the run's process group once the Trainer has started and written its first training backup
    (BackupAndRestore's checkpoint, matching backup_pattern); returns its output."""
    import glob

    output = []
    for line in process.stdout:
        output.append(line)
        if line.startswith("[tfxp] Trainer: started"):
            break
    deadline = time.monotonic() + timeout_s
    while not glob.glob(backup_pattern):
        assert process.poll() is None and time.monotonic() < deadline, "".join(output)[-3000:]
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)
    output.append(process.stdout.read())
    process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL, "".join(output)[-3000:]
    return "".join(output)


def node_executions(store, node):
    context = store.get_context_by_type_and_name("node", f"crash.{node}")
    return sorted(store.get_executions_by_context(context.id), key=lambda e: e.id)


@pytest.fixture(scope="module")
def crashed_and_resumed(tmp_path_factory):
    root = tmp_path_factory.mktemp("crash")
    (root / "data").mkdir()
    sample_taxi_csv(root / "data" / "sample.csv", 2000, seed=3)
    text = open(os.path.join(REPO, "configs", "taxi.yaml")).read()
    text = (text.replace("name: taxi", "name: crash")
            .replace("package://tfx/examples/chicago_taxi_pipeline/data/big_tipper_label", "data")
            .replace("schema: taxi.schema.pbtxt", f"schema: {os.path.join(REPO, 'configs', 'taxi.schema.pbtxt')}")
            .replace("train_steps: 300", "train_steps: 100").replace("../runs/taxi/", "out/"))
    config_path = str(root / "crash.yaml")
    open(config_path, "w").write(text)
    summary_json = str(root / "summary.json")
    backups = os.path.join(load_config(config_path).pipeline_root, "Trainer", "backup", "*", "chief", "checkpoint")
    outputs = [kill_when_running(start_run(config_path, summary_json), load_config(config_path), "Transform"),
               kill_when_backed_up(start_run(config_path, summary_json), backups)]
    final = subprocess.run([sys.executable, "-m", "pipeline.cli", "run", "--config", config_path,
                            "--summary-json", summary_json], cwd=REPO, capture_output=True, text=True)
    assert final.returncode == 0, final.stdout[-2000:] + final.stderr[-3000:]
    return load_config(config_path), outputs, final.stdout, json.load(open(summary_json))


def test_resumed_run_reuses_finished_components_and_pushes_once(crashed_and_resumed):
    config, outputs, stdout, summary = crashed_and_resumed
    assert "[tfxp] Transform: finished" not in outputs[0]
    assert "[tfxp] Trainer: finished" not in outputs[1]
    assert {"CsvExampleGen", "StatisticsGen", "FrozenSchemaGen", "ExampleValidator", "Transform"} <= set(
        summary["cached_components"])
    assert "Trainer" not in summary["cached_components"]  # killed in the second run: ran again
    assert summary["pushed"] is True
    assert len(versions(config.serving_dir)) == 1


def test_the_rerun_trainer_resumes_from_the_killed_ones_backup(crashed_and_resumed):
    """Killed after its first backup, the Trainer's re-run starts at the backed-up step, not step 0, and
    leaves no backup behind once it has finished."""
    import glob

    from pipeline.summary import latest_output_uri
    from trainer.task import BACKUP_EVERY_STEPS, SUMMARY_FILE

    config = crashed_and_resumed[0]
    model_run = latest_output_uri(config.metadata_path, config.name, "Trainer", "model_run")
    training = json.load(open(os.path.join(model_run, SUMMARY_FILE)))
    assert training["resumed_from"]["step"] >= BACKUP_EVERY_STEPS, training["resumed_from"]
    assert training["resumed_from"]["step"] < training["train_steps"]
    assert glob.glob(os.path.join(config.pipeline_root, "Trainer", "backup", "*", "chief", "ckpt-*")) == []


def test_metadata_records_the_killed_executions_and_the_reruns(crashed_and_resumed):
    config = crashed_and_resumed[0]
    store = open_store(config.metadata_path)
    states = {node: [e.last_known_state for e in node_executions(store, node)]
              for node in ("CsvExampleGen", "Transform", "Trainer")}
    assert states["CsvExampleGen"] == [Execution.COMPLETE, Execution.CACHED, Execution.CACHED]
    # Killed mid-run: left RUNNING, never completed; then a real run; then a cache hit.
    assert states["Transform"] == [Execution.RUNNING, Execution.COMPLETE, Execution.CACHED], states
    assert states["Trainer"] == [Execution.RUNNING, Execution.COMPLETE], states


def test_no_artifact_of_a_killed_execution_is_used_later(crashed_and_resumed):
    config = crashed_and_resumed[0]
    store = open_store(config.metadata_path)
    executions = store.get_executions()
    killed = {e.id for e in executions if e.last_known_state == Execution.RUNNING}
    finished = {e.id for e in executions if e.last_known_state in (Execution.COMPLETE, Execution.CACHED)}
    events = store.get_events_by_execution_ids([e.id for e in executions])
    killed_outputs = {ev.artifact_id for ev in events
                      if ev.execution_id in killed and ev.type in (metadata_store_pb2.Event.OUTPUT,
                                                                   metadata_store_pb2.Event.PENDING_OUTPUT)}
    used = {ev.artifact_id for ev in events if ev.execution_id in finished and ev.type == metadata_store_pb2.Event.INPUT}
    assert killed and used
    assert not killed_outputs & used
    assert all(a.state == Artifact.LIVE for a in store.get_artifacts_by_id(list(used)))
