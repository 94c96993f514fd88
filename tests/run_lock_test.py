"""One run at a time per pipeline root: a second run exits (or waits with --wait); a killed holder frees it."""
import os
import signal
import subprocess
import sys
import threading
import time

import pytest
from conftest import REPO

from pipeline import cli
from pipeline.run_lock import LOCK_FILE, PipelineRootBusy, lock_paths, run_lock

CONFIG = """
name: locked
data: {path: data}
label: {column: y, task: binary}
features: {x: zscore}
outputs: {pipeline_root: out/root, serving_dir: out/serving}
"""


def test_a_second_run_on_a_busy_pipeline_root_exits_4_naming_the_holder(tmp_path, capsys):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "rows.csv").write_text("x,y\n" + "\n".join(f"{i},{i % 2}" for i in range(20)) + "\n")
    (tmp_path / "c.yaml").write_text(CONFIG)
    root = tmp_path / "out" / "root"
    with run_lock(lock_paths(str(root), str(root / "metadata.sqlite")), "the-first-run.yaml"):
        started = time.monotonic()
        code = cli.main(["run", "--config", str(tmp_path / "c.yaml")])
        assert time.monotonic() - started < 30  # it did not run the pipeline
    assert code == cli.EXIT_BUSY
    err = capsys.readouterr().err
    assert f"another tfxp run holds {root / LOCK_FILE}" in err
    assert f"pid {os.getpid()}" in err and "the-first-run.yaml" in err and "--wait" in err
    assert not (root / "metadata.sqlite").exists()


def test_wait_blocks_until_the_holder_releases(tmp_path):
    paths = [str(tmp_path / LOCK_FILE)]
    released, messages = threading.Event(), []

    def holder(ready):
        with run_lock(paths, "holder.yaml"):
            ready.set()
            time.sleep(0.5)
            released.set()

    ready = threading.Event()
    thread = threading.Thread(target=holder, args=(ready,))
    thread.start()
    ready.wait()
    with pytest.raises(PipelineRootBusy, match="holder.yaml"):
        with run_lock(paths, "second.yaml"):
            pass
    with run_lock(paths, "second.yaml", wait=True, poll_s=0.05, on_wait=messages.append):
        assert released.is_set()
    thread.join()
    assert len(messages) == 1 and "waiting for another tfxp run" in messages[0]


def test_a_killed_run_does_not_leave_a_stale_lock(tmp_path):
    paths = [str(tmp_path / LOCK_FILE)]
    script = ("import os, signal, sys; from pipeline.run_lock import run_lock\n"
              "with run_lock(sys.argv[1:], 'killed.yaml'):\n"
              "    os.kill(os.getpid(), signal.SIGKILL)\n")
    result = subprocess.run([sys.executable, "-c", script, *paths], cwd=REPO)
    assert result.returncode == -signal.SIGKILL
    with run_lock(paths, "next.yaml"):  # would raise PipelineRootBusy if the lock had survived
        pass


def test_a_metadata_store_outside_the_root_is_locked_too(tmp_path):
    root, store = tmp_path / "root", tmp_path / "elsewhere" / "metadata.sqlite"
    assert lock_paths(str(root), str(store)) == [str(root / LOCK_FILE), str(store) + ".lock"]
    assert lock_paths(str(root), str(root / "metadata.sqlite")) == [str(root / LOCK_FILE)]
