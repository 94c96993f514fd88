"""Beam's state-and-timer introspection of a DoFn, done once per DoFn object instead of at every ask.

While a pipeline is built and run, Beam asks of every DoFn whether it is stateful about nine times (ParDo's
constructor, its runner API proto, the DirectRunner's visitor, the FnApiRunner's stages, the bundle
processor...). Each ask, `apache_beam.transforms.userstate.get_dofn_specs`, walks `dir(dofn)` and takes
`inspect.signature` of every method to find StateSpec / TimerSpec defaults. TFT builds ~400 ParDos for the
taxi preprocessing_fn, so Transform spent a large share of its fixed cost in `inspect` (README,
"Performance"). The answer depends only on the DoFn object's methods, which Beam does not change after the
ParDo is made, so it is remembered per object for as long as that object lives (a weak reference drops it).

Used around the local runner's pipeline run (pipeline/local_runner.py). Nothing about what the pipelines
compute changes; Dataflow builds its pipelines with Beam's own function.
"""
from __future__ import annotations

import contextlib
import threading
import weakref
from typing import Any, Callable, Dict, Iterator, Tuple

Specs = Tuple[Any, Any]  # (set of StateSpec, set of TimerSpec), as Beam returns them


class RememberedSpecs:
    """A drop-in for get_dofn_specs that asks `compute` once per live DoFn object."""

    def __init__(self, compute: Callable[[Any], Specs]):
        self._compute = compute
        self._specs: Dict[int, Tuple[weakref.ref, Specs]] = {}
        self._lock = threading.Lock()
        self.asked = self.computed = 0  # how many times Beam asked, and how many `compute` ran

    def __call__(self, dofn: Any) -> Specs:
        self.asked += 1
        key = id(dofn)
        remembered = self._specs.get(key)
        if remembered is not None and remembered[0]() is dofn:
            return remembered[1]
        specs = self._compute(dofn)
        self.computed += 1
        try:
            # The id of a collected object can be reused: the entry goes with its object.
            ref = weakref.ref(dofn, lambda _, key=key: self._forget(key))
        except TypeError:  # an object without weak references: asked every time, as Beam does
            return specs
        with self._lock:
            self._specs[key] = (ref, specs)
        return specs

    def _forget(self, key: int) -> None:
        with self._lock:
            remembered = self._specs.get(key)
            if remembered is not None and remembered[0]() is None:
                del self._specs[key]

    def __len__(self) -> int:
        return len(self._specs)


@contextlib.contextmanager
def remembered_dofn_specs() -> Iterator[RememberedSpecs]:
    """Within the block Beam's get_dofn_specs answers once per DoFn object; restored afterwards.

    Beam's callers look the function up in its module at each call (`userstate.get_dofn_specs(...)`, and
    `is_stateful_dofn` / `validate_stateful_dofn` inside that module), except the DirectRunner's legacy
    transform evaluators, which imported the names and keep Beam's own function."""
    from apache_beam.transforms import userstate

    original = userstate.get_dofn_specs
    remembered = RememberedSpecs(original)
    userstate.get_dofn_specs = remembered
    try:
        yield remembered
    finally:
        userstate.get_dofn_specs = original
