"""Two real Trainer workers on loopback (TF_CONFIG with 127.0.0.1 ports, MultiWorkerMirroredStrategy), each
a process running TFX's Trainer executor on the shared taxi run's examples and transform graph
(tests/multi_worker.py); then a worker killed mid-training and the cluster restarted, resuming from the
backup. Every wait is bounded: on a timeout the workers' process groups are killed and the test fails with
their output."""
import glob
import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest
from conftest import REPO, held_out_rows, trainer_spec

from pipeline import nodes
from pipeline.summary import latest_output_uri
from trainer.task import BACKUP_DIR, DATA_SHARDING, FILE_SHARDING, SUMMARY_FILE

WORKERS = 2
FILES_PER_SPLIT = 4  # >= WORKERS: each worker reads only its files (FILE sharding)
WORKER_TIMEOUT_S = 300


def reshard(source_dir, target_dir, files):
    """Writes the records of a split's gzipped TFRecord files round-robin into `files` gzipped files."""
    import tensorflow as tf

    os.makedirs(target_dir)
    writers = [tf.io.TFRecordWriter(os.path.join(target_dir, f"data_tfrecord-{i:05d}-of-{files:05d}.gz"),
                                    options="GZIP") for i in range(files)]
    count = 0
    for count, record in enumerate(tf.data.TFRecordDataset(sorted(glob.glob(os.path.join(source_dir, "*"))),
                                                           compression_type="GZIP").as_numpy_iterator(), 1):
        writers[count % files].write(record)
    for writer in writers:
        writer.close()
    return count


def free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


@pytest.fixture(scope="module")
def inputs(taxi_run, tmp_path_factory):
    """The shared run's Trainer inputs, with each split resharded into FILES_PER_SPLIT files."""
    config = taxi_run["config"]
    root = tmp_path_factory.mktemp("multi_worker")
    examples = latest_output_uri(config.metadata_path, config.name, nodes.EXAMPLE_GEN, "examples")
    counts = {split: reshard(os.path.join(examples, f"Split-{split}"), str(root / "examples" / f"Split-{split}"),
                             FILES_PER_SPLIT) for split in ("train", "eval")}
    spec = trainer_spec(config, examples=str(root / "examples"), train_steps=100, eval_steps=5)
    return {"root": root, "spec": spec, "counts": counts, "config": config, "one_file_examples": examples}


class Cluster:
    """WORKERS processes of tests/multi_worker.py on loopback ports, one TF_CONFIG each; worker 0 is the chief
    (no `chief` task in the cluster). Each writes its output to <dir>/worker-<i>.log and has its own TMPDIR."""

    def __init__(self, spec, directory, attempt=0):
        self.directory = directory
        os.makedirs(directory, exist_ok=True)
        spec_path = os.path.join(directory, "spec.json")
        with open(spec_path, "w") as f:
            json.dump(spec, f)
        ports = free_ports(WORKERS)
        self.logs = [os.path.join(directory, f"worker-{i}.attempt-{attempt}.log") for i in range(WORKERS)]
        self.tmpdirs = [os.path.join(directory, f"tmp-{i}.attempt-{attempt}") for i in range(WORKERS)]
        self.processes = []
        for index in range(WORKERS):
            os.makedirs(self.tmpdirs[index])
            env = dict(os.environ, TMPDIR=self.tmpdirs[index], CUDA_VISIBLE_DEVICES="", TF_CONFIG=json.dumps(
                {"cluster": {"worker": [f"127.0.0.1:{port}" for port in ports]},
                 "task": {"type": "worker", "index": index}}))
            with open(self.logs[index], "w") as log:
                self.processes.append(subprocess.Popen(
                    [sys.executable, os.path.join(REPO, "tests", "multi_worker.py"), spec_path], cwd=REPO,
                    env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True))

    def output(self, index):
        return open(self.logs[index]).read()

    def kill(self, index):
        if self.processes[index].poll() is None:
            os.killpg(self.processes[index].pid, signal.SIGKILL)
        self.processes[index].wait(timeout=60)

    def wait(self, timeout_s=WORKER_TIMEOUT_S, indices=range(WORKERS)):
        """Return codes of the workers `indices`; kills every worker and fails when they run past timeout_s."""
        deadline = time.monotonic() + timeout_s
        while any(self.processes[i].poll() is None for i in indices):
            if time.monotonic() > deadline:
                for i in range(WORKERS):
                    self.kill(i)
                pytest.fail(f"workers still running after {timeout_s} s:\n" + "\n".join(
                    self.output(i)[-2000:] for i in range(WORKERS)))
            time.sleep(0.1)
        return [self.processes[i].returncode for i in indices]


def outputs(inputs, name):
    directory = inputs["root"] / name
    return dict(inputs["spec"], model=str(directory / "Trainer" / "model" / "1"),
                model_run=str(directory / "Trainer" / "model_run" / "1")), directory


@pytest.fixture(scope="module")
def trained(inputs):
    spec, directory = outputs(inputs, "two_workers")
    cluster = Cluster(spec, str(directory / "cluster"))
    codes = cluster.wait()
    assert codes == [0] * WORKERS, "\n".join(cluster.output(i)[-3000:] for i in range(WORKERS))
    summary = json.load(open(os.path.join(spec["model_run"], SUMMARY_FILE)))
    return {"spec": spec, "directory": directory, "cluster": cluster, "summary": summary}


def test_two_workers_train_in_sync_with_the_global_batch_across_both(trained, inputs):
    summary = trained["summary"]
    assert summary["strategy"] == "MultiWorkerMirroredStrategy"
    assert summary["num_replicas_in_sync"] == WORKERS  # one CPU replica per worker
    per_replica = inputs["config"].training.batch_size_per_replica
    assert summary["batch_size_per_replica"] == per_replica
    assert summary["global_batch_size"] == per_replica * WORKERS
    assert summary["train_steps"] == 100 and summary["resumed_from"] is None


def test_the_train_split_is_sharded_by_file_and_read_once(trained):
    """Each worker reads only its files of the train split, and together they read every file once."""
    read = {}
    for index in range(WORKERS):
        lines = [line for line in trained["cluster"].output(index).splitlines()
                 if f"input pipeline {index + 1} of {WORKERS}, {FILE_SHARDING} sharding" in line]
        # The train split's dataset is made first, then the eval split's.
        assert len(lines) == 2, trained["cluster"].output(index)[-3000:]
        read[index] = lines[0].split(" files: ")[1].split(", ")
    files = sorted(os.path.basename(p) for p in glob.glob(os.path.join(trained["spec"]["examples"],
                                                                        "Split-train", "*")))
    assert sorted(name for names in read.values() for name in names) == files
    assert len(read[0]) == len(read[1]) == FILES_PER_SPLIT // WORKERS
    [chief_shard] = trained["summary"]["train_input"]
    assert chief_shard["policy"] == FILE_SHARDING and chief_shard["count"] == WORKERS
    assert [os.path.basename(p) for p in chief_shard["files"]] == read[0]


def test_the_chiefs_model_is_exported_and_scores_raw_rows(trained, taxi_run):
    from serving.client import ServedModel

    model = ServedModel(os.path.join(trained["spec"]["model"], "Format-Serving"))
    rows, labels = held_out_rows(taxi_run)
    scores = model.predict_rows(rows).reshape(-1)
    assert len(scores) == len(rows) and all(0.0 <= s <= 1.0 for s in scores)
    accuracy = sum((s > 0.5) == bool(y) for s, y in zip(scores, labels)) / len(labels)
    assert accuracy > 0.7


def test_the_non_chief_leaves_nothing_behind(trained):
    """Only the chief's files are in the shared output URIs: one SavedModel, its TensorBoard logs and summary;
    no worker's temporary model, logs or backup, in the outputs or in the workers' temporary dirs."""
    directory = trained["directory"]
    paths = [os.path.relpath(p, directory) for p in glob.glob(str(directory / "Trainer" / "**"), recursive=True)]
    assert not [p for p in paths if "workertemp" in p or "tfxp_worker_model" in p], paths
    assert glob.glob(str(directory / "Trainer" / "model" / "1" / "Format-Serving" / "saved_model.pb"))
    # Training finished: BackupAndRestore deleted its backups.
    assert not glob.glob(str(directory / "Trainer" / BACKUP_DIR / "*" / "*"))
    for tmpdir in trained["cluster"].tmpdirs:
        assert os.listdir(tmpdir) == [], tmpdir


def test_a_killed_worker_and_the_restarted_cluster_resume_from_the_backup(inputs):
    """SIGKILL worker 1 right after the first backup (step 50 of 150). The chief cannot go on without it and
    fails; both restart with the same spec, resume from the chief's backup, and finish. On the ExampleGen's
    own output (one file per split) the workers shard by DATA: each reads the file, keeps every 2nd batch."""
    spec, directory = outputs(inputs, "killed")
    spec["train_steps"], spec["examples"] = 150, inputs["one_file_examples"]
    cluster = Cluster(spec, str(directory / "cluster"))
    backup = str(directory / "Trainer" / BACKUP_DIR / "*" / "chief" / "checkpoint")
    deadline = time.monotonic() + WORKER_TIMEOUT_S
    while not glob.glob(backup):
        if time.monotonic() > deadline or any(p.poll() is not None for p in cluster.processes):
            for i in range(WORKERS):
                cluster.kill(i)
            pytest.fail("no backup before the workers ended:\n" + cluster.output(0)[-3000:])
        time.sleep(0.05)
    cluster.kill(1)
    [chief_code] = cluster.wait(timeout_s=120, indices=[0])
    assert chief_code != 0  # it could not finish without its peer
    assert not os.path.exists(os.path.join(spec["model_run"], SUMMARY_FILE))

    restarted = Cluster(spec, str(directory / "cluster"), attempt=1)
    codes = restarted.wait()
    assert codes == [0] * WORKERS, "\n".join(restarted.output(i)[-3000:] for i in range(WORKERS))
    summary = json.load(open(os.path.join(spec["model_run"], SUMMARY_FILE)))
    assert summary["resumed_from"] is not None
    assert 0 < summary["resumed_from"]["step"] < 150, summary["resumed_from"]
    for index in range(WORKERS):
        output = restarted.output(index)
        assert "resuming from the backup" in output
        assert f"input pipeline {index + 1} of {WORKERS}, {DATA_SHARDING} sharding, reads 1 of 1 files" in output
    assert summary["train_input"][0]["policy"] == DATA_SHARDING
    assert glob.glob(os.path.join(spec["model"], "Format-Serving", "saved_model.pb"))
