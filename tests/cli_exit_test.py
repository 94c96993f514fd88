"""The `tfxp` command and the quantizer's child end without Python's teardown (config/process.py exit_now), keeping what a normal exit
does: its status, buffered output, atexit handlers, other threads' work and temporary-directory cleanup; and
they start with the garbage collector paused, frozen and back on once their imports are done."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

from conftest import REPO

SCRIPT = textwrap.dedent("""
    import atexit, sys, tempfile, threading, time
    from config.process import exit_now

    out = sys.argv[1]
    atexit.register(lambda: open(out + ".atexit", "w").write("ran"))
    def late():
        time.sleep(0.3)
        open(out + ".thread", "w").write("done")
    threading.Thread(target=late).start()
    kept = tempfile.TemporaryDirectory(dir=sys.argv[2])  # cleaned up by its finalizer at exit
    open(out + ".tempdir", "w").write(kept.name)
    sys.stdout.write("buffered, no newline")
    exit_now(3)
""")


def test_exit_now_keeps_status_output_atexit_threads_and_cleanup(tmp_path):
    out = str(tmp_path / "marker")
    result = subprocess.run([sys.executable, "-c", SCRIPT, out, str(tmp_path)], capture_output=True, text=True,
                            cwd=REPO, timeout=120)
    assert result.returncode == 3, result.stderr
    assert result.stdout == "buffered, no newline"
    assert open(out + ".atexit").read() == "ran"
    assert open(out + ".thread").read() == "done"
    assert not os.path.exists(open(out + ".tempdir").read())


def test_the_command_exits_with_mains_status():
    result = subprocess.run([sys.executable, "-m", "pipeline.cli", "run", "--config", "/nonexistent/tfxp.yaml"],
                            capture_output=True, text=True, cwd=REPO, timeout=120)
    assert result.returncode == 2  # EXIT_CONFIG
    assert "config file does not exist" in result.stderr


STARTUP = textwrap.dedent("""
    import gc, json, sys
    from config.process import end_startup, pause_gc_for_startup

    states = {"before": [gc.isenabled(), end_startup(), gc.get_freeze_count()]}
    pause_gc_for_startup()
    states["paused"] = [gc.isenabled()]
    import tensorflow  # noqa: F401
    states["ended"] = [end_startup(), gc.isenabled(), gc.get_freeze_count()]
    cycle = []
    cycle.append(cycle)  # a cycle made after the freeze is the collector's again
    del cycle
    states["collected"] = gc.collect() > 0
    states["again"] = [end_startup(), gc.get_freeze_count() == states["ended"][2]]
    print(json.dumps(states))
""")


def test_startup_pauses_the_collector_then_freezes_the_imports_once():
    result = subprocess.run([sys.executable, "-c", STARTUP], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    states = json.loads(result.stdout.strip().splitlines()[-1])
    assert states["before"] == [True, False, 0]  # never paused: nothing to end, nothing frozen
    assert states["paused"] == [False]
    ended, on, frozen = states["ended"]
    assert ended and on and frozen > 100_000  # TensorFlow's objects, out of every later pass
    assert states["collected"] is True
    assert states["again"] == [False, True]
