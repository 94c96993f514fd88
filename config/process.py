"""Process-wide helpers: exit for the commands and child processes that load TensorFlow, and a module or
class attribute replaced within a block."""
from __future__ import annotations

import contextlib
import os
import sys
from typing import Any, Iterator


@contextlib.contextmanager
def replaced(owner: Any, name: str, value: Any) -> Iterator[Any]:
    """`owner.name` is `value` within the block and its own again after. Process-wide: not for two blocks
    replacing the same name concurrently (tfxp's callers: one executor `Do`, one local run at a time)."""
    original = getattr(owner, name)
    setattr(owner, name, value)
    try:
        yield value
    finally:
        setattr(owner, name, original)


def exit_now(code: int) -> None:
    """Ends the process without the interpreter's teardown (the `tfxp` command, the quantizer's child process).

    After a run, Python's finalization (freeing every module of TensorFlow, Beam and TFX, and their
    native destructors) took ~2 s here: a fifth of a cached re-run. What a normal exit does that matters is
    kept: other non-daemon threads are waited for, atexit handlers run (logging's flush and close, weakref
    finalizers such as TemporaryDirectory's cleanup, executor joins), and standard output and error are
    flushed; then os._exit."""
    import atexit
    import threading

    for thread in threading.enumerate():
        if thread is not threading.main_thread() and not thread.daemon:
            thread.join()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe: nothing more can be said
            pass
    os._exit(code)
