"""One run at a time per pipeline root (and per metadata store): an exclusive flock on a lock file.

The kernel drops the lock when its holder exits, however it exits (SIGKILL included), so a crashed run
never leaves a stale lock behind. The lock file names the holder (pid, host, start time, config) for the
message a second run prints.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import time
from typing import Iterator, List

LOCK_FILE = ".tfxp-run.lock"


class PipelineRootBusy(RuntimeError):
    def __init__(self, path: str, holder: str):
        self.path, self.holder = path, holder
        super().__init__(f"another tfxp run holds {path} ({holder}); wait for it to finish, or pass --wait")


def lock_paths(pipeline_root: str, metadata_path: str) -> List[str]:
    paths = [os.path.join(pipeline_root, LOCK_FILE)]
    if os.path.dirname(os.path.abspath(metadata_path)) != os.path.abspath(pipeline_root):
        paths.append(metadata_path + ".lock")
    return paths


def _holder(fd: int) -> str:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        info = json.loads(os.read(fd, 4096) or b"{}")
    except (OSError, ValueError):
        return "holder unknown"
    return (f"pid {info.get('pid')} on {info.get('host')}, started {info.get('started')}, "
            f"config {info.get('config')}")


@contextlib.contextmanager
def run_lock(paths: List[str], config_source: str, wait: bool = False, poll_s: float = 1.0,
             on_wait=None) -> Iterator[None]:
    """Holds every lock in `paths` (in order) or raises PipelineRootBusy; with wait=True, waits for them."""
    fds: List[int] = []
    try:
        for path in paths:
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            fds.append(fd)
            announced = False
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if not wait:
                        raise PipelineRootBusy(path, _holder(fd)) from None
                    if on_wait and not announced:
                        on_wait(f"waiting for another tfxp run to release {path} ({_holder(fd)})")
                        announced = True
                    time.sleep(poll_s)
            os.ftruncate(fd, 0)
            os.lseek(fd, 0, os.SEEK_SET)
            os.write(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                     "started": time.strftime("%Y-%m-%d %H:%M:%S"),
                                     "config": config_source}).encode())
        yield
    finally:
        for fd in reversed(fds):
            os.close(fd)  # closing the descriptor releases its flock

