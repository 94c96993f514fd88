"""Process-wide helpers: exit for the commands and child processes that load TensorFlow, the garbage
collector paused while they start, and a module or class attribute replaced within a block."""
from __future__ import annotations

import contextlib
import gc
import os
import sys
from typing import Any, Iterator

_startup = {"paused": False}


def pause_gc_for_startup() -> None:
    """Turns Python's cyclic garbage collector off until `end_startup`: for a process that is about to import
    TensorFlow, TFX and Beam (~1,000,000 objects that live as long as the process).

    While they import, the collector runs a full pass each time the heap grows by a quarter: 8 full passes,
    1.2-1.6 s, of a cached `tfxp run` (~8 s), and none of it frees anything (one pass at the end finds ~6,000
    unreachable objects of ~635,000)."""
    gc.disable()
    _startup["paused"] = True


def end_startup() -> bool:
    """After `pause_gc_for_startup`, once the imports are done: moves every object alive into the collector's
    permanent generation (gc.freeze) and turns the collector back on; later passes look at what the run
    itself allocates, not at the imported modules. Returns whether it did; a no-op otherwise (a second call,
    or a process that never paused: tests, Beam and Dataflow workers).

    Frozen objects are never freed: the few import-time cycles already unreachable (~6,000 objects) stay,
    once per process."""
    if not _startup["paused"]:
        return False
    _startup["paused"] = False
    gc.freeze()
    gc.enable()
    return True


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
