"""Beam's introspection of DoFns and of pipeline options, and its pickles' compression, done once instead of
at every ask.

DoFn state and timer specs. While a pipeline is built and run, Beam asks of every DoFn whether it is
stateful about nine times (ParDo's constructor, its runner API proto, the DirectRunner's visitor, the
FnApiRunner's stages, the bundle processor...). Each ask, `apache_beam.transforms.userstate.get_dofn_specs`,
walks `dir(dofn)` and takes `inspect.signature` of every bound method to find StateSpec / TimerSpec
defaults. TFT builds ~400 ParDos for the taxi preprocessing_fn, and every bundle unpickles its DoFns into
new objects (~1,150 objects per Transform at 1M rows), so Transform spent a large share of its fixed cost in
`inspect` (README, "Performance"). The answer depends only on the bound methods that `dir(dofn)` finds. When
the class alone decides them (no instance attribute holds a bound method or hides a class attribute, and
the class has no attribute that computes its value per object, such as a property), it is remembered per
class; otherwise per object, for as long as that object lives (a weak reference drops it).

Pipeline option views. `PipelineOptions.view_as(cls)` builds a new argparse parser and parses the flags at
every call; Beam calls it twice per transform it applies (`Pipeline.apply`, `_infer_result_type`), ~1,800
times for the taxi Transform. A view holds nothing of its own: its option names come from the flags, which
never change, and its values live in the dictionary it shares with the options it was made from. So one
view per (options object, class) answers every call alike, and is remembered while the options object lives.

Pickle compression. Beam's picklers (cloudpickle's and dill's) compress every pickled DoFn, transform and
coder with bz2 at level 9, and decompress it at every unpickle: the same payloads again and again, as a
pipeline is built, turned into its runner proto and run bundle by bundle. The taxi Transform at 150k rows
compressed 2,506 payloads (712 distinct, 1.9 MB) and decompressed 3,194 (654 distinct): ~0.5 and ~0.2 s.
bz2's output is a function of its input and level, so one answer per distinct input gives the same bytes.
Payloads over 1 MiB are compressed every time and never kept. When the run's bundles are processed in this
process (DirectRunner in_memory or multi_threading: BeamConfig.payloads_stay_in_process), the payloads never
leave it, and compressing them only costs time (the taxi Transform at 150k: ~515 distinct payloads, ~0.3 s
of bz2): they are kept as they are, behind a marker no bz2 stream starts with, and read back as they are;
payloads that are bz2 streams (made before the block, or by a process that compresses) still decompress.

Module globals. Beam's in-process SDK worker weighs every side input and state value it caches
(`statecache.get_deep_size`, objsize). objsize leaves modules' globals out of a weight, so each weighing
first lists `vars()` of every module in sys.modules and hashes their ids into a new set: ~7,900 modules with
TensorFlow, TFX and Beam imported, ~2-3.4 ms a weighing, 99 weighings (~0.24 s) in the taxi Transform at 150k
rows. The list and the set of its ids are kept with the module objects they came from, and made again when
sys.modules holds other objects; a module's `vars()` is its own dictionary for life, so the weights are the
same. (A few objects in sys.modules, such as typing.io, a class, and cffi's lib modules, give a new mapping
at every `vars()`: objsize leaves out the id of a mapping freed at once, the list keeps one alive; no cached
value refers to either.)

Submodules of a pickled function. For every function cloudpickle pickles by value (lambdas, nested
functions: ~900 in the taxi Transform at 150k rows), `_find_imported_submodules` looks through every name in
sys.modules (~6,000-8,000) once per package among the function's globals, for the submodules its code names:
0.20-0.28 s of that Transform's ~4 s (timed; cProfile's own overhead on its ~900k string comparisons showed
it as 0.6 s). The answer depends only on the code's names, the
packages and sys.modules, so it is kept per (names, packages) and forgotten when sys.modules changes (its
count, or its last module added).

Used around the local runner's pipeline run (pipeline/local_runner.py) and bench/floors' executors. Nothing
that the pipelines compute changes; Dataflow builds its pipelines with Beam's own functions.
"""
from __future__ import annotations

import collections
import contextlib
import inspect
import threading
import types
import weakref
from typing import Any, Callable, Dict, FrozenSet, Iterator, Optional, Tuple

Specs = Tuple[Any, Any]  # (set of StateSpec, set of TimerSpec), as Beam returns them
# Class attributes whose value, read through an object, is the same for every object of the class (a function
# reads as a method bound to the object, whose signature is the function's).
_PER_CLASS_KINDS = (types.FunctionType, staticmethod, classmethod, types.BuiltinFunctionType,
                    types.MethodDescriptorType, types.WrapperDescriptorType, types.ClassMethodDescriptorType)
# Per-object attributes every Python object has: they read as a type, a dict or a weak reference, never a
# bound method.
_OBJECT_SLOTS = ("__class__", "__dict__", "__weakref__")


def _beam_dofn_properties() -> Dict[str, Any]:
    """beam.DoFn's own properties (_process_defined and the like): each reads as a bool for any object."""
    from apache_beam.transforms.core import DoFn

    return {name: value for name, value in vars(DoFn).items() if isinstance(value, property)}


def _class_decides(cls: type) -> bool:
    """Whether every attribute that `dir` lists on an object of `cls` reads the same for every object, as far
    as bound methods go: plain values, functions, static and class methods, builtin method descriptors,
    beam.DoFn's own properties; no other property, slot or descriptor, no __getattribute__ or __getattr__
    of its own."""
    if cls.__getattribute__ is not object.__getattribute__ or hasattr(cls, "__getattr__"):
        return False
    dofn_properties = _beam_dofn_properties()
    for name in dir(cls):
        value = inspect.getattr_static(cls, name)
        if name in _OBJECT_SLOTS and isinstance(value, types.GetSetDescriptorType):
            continue
        if dofn_properties.get(name) is value:
            continue
        if hasattr(type(value), "__get__") and not isinstance(value, _PER_CLASS_KINDS):
            return False
    return True


class _PerLiveObject:
    """Values kept per live object, by id; an entry goes with its object (a weak reference drops it), so a
    reused id cannot hit it. An object without weak references keeps nothing."""

    def __init__(self) -> None:
        self._entries: Dict[int, Tuple[weakref.ref, Any]] = {}
        self._lock = threading.Lock()

    def get(self, obj: Any) -> Any:
        entry = self._entries.get(id(obj))
        return entry[1] if entry is not None and entry[0]() is obj else None

    def put(self, obj: Any, value: Any) -> Any:
        key = id(obj)
        try:
            ref = weakref.ref(obj, lambda _, key=key: self._forget(key))
        except TypeError:
            return value
        with self._lock:
            self._entries[key] = (ref, value)
        return value

    def _forget(self, key: int) -> None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry[0]() is None:
                del self._entries[key]

    def __len__(self) -> int:
        return len(self._entries)


class RememberedSpecs:
    """A drop-in for get_dofn_specs that asks `compute` once per DoFn class when the class decides the
    answer, else once per live DoFn object.

    An attribute of the object itself that is not a bound method is skipped by Beam's walk, and so is a
    class attribute it hides (CallableWrapperDoFn stores its function as `process`): objects of one class
    that hide the same names get the same answer, remembered per (class, hidden names)."""

    def __init__(self, compute: Callable[[Any], Specs]):
        self._compute = compute
        self._decides: "weakref.WeakKeyDictionary[type, bool]" = weakref.WeakKeyDictionary()
        self._by_class: "weakref.WeakKeyDictionary[type, Dict[FrozenSet[str], Specs]]" = (
            weakref.WeakKeyDictionary())
        self._by_object = _PerLiveObject()
        self.asked = self.computed = 0  # how many times Beam asked, and how many `compute` ran

    def __call__(self, dofn: Any) -> Specs:
        self.asked += 1
        cls = type(dofn)
        decides = self._decides.get(cls)
        if decides is None:
            decides = self._decides[cls] = _class_decides(cls)
        hidden = self._hidden_names(dofn, cls) if decides else None
        if hidden is None:
            return self._per_object(dofn)
        answers = self._by_class.setdefault(cls, {})
        specs = answers.get(hidden)
        if specs is None:
            specs = answers[hidden] = self._computed(dofn)
        return specs

    @staticmethod
    def _hidden_names(dofn: Any, cls: type) -> Optional[FrozenSet[str]]:
        """The class attributes that attributes of the object hide; None when one of the object's attributes
        is a bound method (Beam's walk would inspect it) or the object has no __dict__ (slots)."""
        own = getattr(dofn, "__dict__", None)
        if own is None or any(isinstance(value, types.MethodType) for value in own.values()):
            return None
        return frozenset(name for name in own if hasattr(cls, name))

    def _computed(self, dofn: Any) -> Specs:
        self.computed += 1
        return self._compute(dofn)

    def _per_object(self, dofn: Any) -> Specs:
        specs = self._by_object.get(dofn)
        if specs is None:
            specs = self._by_object.put(dofn, self._computed(dofn))  # no weak reference: asked every time
        return specs

    def __len__(self) -> int:
        """Answers held: per class and hidden names, and per object."""
        return sum(len(answers) for answers in self._by_class.values()) + len(self._by_object)


class RememberedViews:
    """A drop-in for PipelineOptions.view_as that makes one view per live options object and view class."""

    def __init__(self, view_as: Callable[[Any, type], Any]):
        self._view_as = view_as
        self._views = _PerLiveObject()  # per options object: {view class: view}
        self.asked = self.made = 0

    def __call__(self, options: Any, cls: type) -> Any:
        self.asked += 1
        views = self._views.get(options)
        if views is None:
            views = self._views.put(options, {})
        view = views.get(cls)
        if view is None:
            view = views[cls] = self._view_as(options, cls)
            self.made += 1
        return view

    def __len__(self) -> int:
        return len(self._views)


class RememberedCompression:
    """Stands in for the bz2 module in Beam's picklers: `compress` and `decompress` compute once per distinct
    input of at most MAX_KEPT bytes (the same bytes out); every other name is bz2's. With `in_process`,
    `compress` keeps the payload as it is behind UNCOMPRESSED (bz2 streams start with b"BZh"), and
    `decompress` returns such a payload as it is."""

    MAX_KEPT = 1 << 20
    UNCOMPRESSED = b"\x00tfxp: uncompressed, in-process\x00"

    def __init__(self, bz2_module: Any, in_process: bool = False):
        self._bz2 = bz2_module
        self._in_process = in_process
        self._compressed: Dict[Tuple[bytes, int], bytes] = {}
        self._decompressed: Dict[bytes, bytes] = {}
        self.asked = self.computed = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._bz2, name)

    def _remembered(self, kept: Dict, key: Any, data: bytes, compute: Callable[[], bytes]) -> bytes:
        self.asked += 1
        if len(data) > self.MAX_KEPT:
            self.computed += 1
            return compute()
        out = kept.get(key)
        if out is None:
            self.computed += 1
            out = kept[key] = compute()
        return out

    def compress(self, data: bytes, compresslevel: int = 9) -> bytes:
        data = bytes(data)
        if self._in_process:
            self.asked += 1
            return self.UNCOMPRESSED + data
        return self._remembered(self._compressed, (data, compresslevel), data,
                                lambda: self._bz2.compress(data, compresslevel))

    def decompress(self, data: bytes) -> bytes:
        data = bytes(data)
        if data.startswith(self.UNCOMPRESSED):
            self.asked += 1
            return data[len(self.UNCOMPRESSED):]
        return self._remembered(self._decompressed, data, data, lambda: self._bz2.decompress(data))

    def __len__(self) -> int:
        return len(self._compressed) + len(self._decompressed)


class RememberedModuleGlobals:
    """`vars()` of every object in `modules` that has them (objsize's `_iter_modules_globals`), listed again
    only when `modules` holds other objects than at the last ask; with the set of their ids."""

    def __init__(self, modules: Dict[str, Any]):
        self._modules = modules
        self._seen: list = []
        self._globals: list = []
        self._ids: FrozenSet[int] = frozenset()
        self.asked = self.computed = 0

    def __call__(self) -> list:
        self.asked += 1
        modules = list(self._modules.values())
        if modules != self._seen:  # identity first: the same module objects compare equal without __eq__
            self.computed += 1
            self._globals = [own for own in map(_vars_or_none, modules) if own is not None]
            self._seen, self._ids = modules, frozenset(map(id, self._globals))
        return self._globals

    def ids(self) -> FrozenSet[int]:
        """The ids of what a call returns; the objects stay alive while they are the answer."""
        self()
        return self._ids

    def update_exclude_set(self, context: Any) -> None:
        """objsize's `TraversalContext._update_exclude_set` (objsize 0.7.1) with the module globals' ids
        merged as a set: ~30 us, where objsize hashes ~7,900 new ids at every weighing (~0.7 ms)."""
        if context.settings.exclude_modules_globals:
            context.exclude_set.update(self.ids())
        context.exclude_set.add(id(None))
        if context.settings.exclude is not None:
            collections.deque(context.traverse_bfs(*context.settings.exclude, exclude=True), maxlen=0)


class RememberedSubmodules:
    """Stands in for cloudpickle's `_find_imported_submodules(code, top_level_dependencies)`: the same list, its
    modules' names in `modules` found once per (code names, packages among the dependencies) while `modules`
    has not changed, and looked up there at every ask.

    "Not changed" is judged by the number of modules and the last one added, name and object (0.3 us, where
    comparing every name and object took ~0.26 ms, about what the search costs): an import adds at the end, a
    removal shortens. Only removals and re-imports that end with the same count, the same last name and the
    same object there would go unseen, and the names found would then still be modules sys.modules held."""

    def __init__(self, modules: Dict[str, Any]):
        self._modules = modules
        self._seen: Tuple[Any, ...] = ()
        self._answers: Dict[Tuple[Any, ...], Tuple[str, ...]] = {}
        self.asked = self.computed = 0

    def _fingerprint(self) -> Tuple[Any, ...]:
        if not self._modules:
            return (0,)
        last = next(reversed(self._modules))
        return len(self._modules), last, id(self._modules[last])

    def __call__(self, code: Any, top_level_dependencies: Any) -> list:
        self.asked += 1
        # cloudpickle looks only at dependencies that are packages (a module with a __package__).
        packages = tuple(x for x in top_level_dependencies
                         if isinstance(x, types.ModuleType) and getattr(x, "__package__", None))
        seen = self._fingerprint()
        if seen != self._seen:
            self._seen, self._answers = seen, {}
        key = (code.co_names, packages)
        names = self._answers.get(key)
        if names is None:
            self.computed += 1
            names = self._answers[key] = self._find(code, packages)
        return [self._modules[name] for name in names]

    def _find(self, code: Any, packages: Tuple[Any, ...]) -> Tuple[str, ...]:
        """cloudpickle's search (2.2.1), giving the names in sys.modules of what it would return."""
        names, code_names = [], set(code.co_names)
        for package in packages:
            prefix = package.__name__ + "."
            for name in list(self._modules):
                if name is not None and name.startswith(prefix):
                    if set(name[len(prefix):].split(".")) <= code_names:
                        names.append(name)
        return tuple(names)

    def __len__(self) -> int:
        return len(self._answers)


def _vars_or_none(obj: Any) -> Optional[Dict[str, Any]]:
    try:
        return vars(obj)
    except TypeError:
        return None


class Remembered:
    """What the block below remembers: `specs`, `views`, `compression`, `module_globals` and `submodules`,
    with their counts."""

    def __init__(self, specs: RememberedSpecs, views: RememberedViews, compression: RememberedCompression,
                 module_globals: RememberedModuleGlobals, submodules: RememberedSubmodules):
        self.specs, self.views, self.compression = specs, views, compression
        self.module_globals, self.submodules = module_globals, submodules


@contextlib.contextmanager
def remembered_beam_answers(in_process: bool = False) -> Iterator[Remembered]:
    """Within the block Beam's get_dofn_specs answers once per DoFn class (or object),
    PipelineOptions.view_as once per options object and class, its picklers' bz2 once per payload (none at
    all with `in_process`: every bundle of the block's pipelines is processed in this process), the
    state cache's weighings list modules' globals once per set of modules, and cloudpickle finds a function's
    submodules once per code names and packages; Beam's, objsize's and cloudpickle's own functions and modules
    are restored afterwards.

    Beam's callers look get_dofn_specs up in its module at each call (`userstate.get_dofn_specs(...)`, and
    `is_stateful_dofn` / `validate_stateful_dofn` inside that module), except the DirectRunner's legacy
    transform evaluators, which imported the names and keep Beam's own function. view_as is a method, looked
    up on the class. The picklers call `bz2.compress` / `bz2.decompress` on their module's `bz2`. Each objsize
    weighing makes a TraversalContext, whose constructor calls its `_update_exclude_set`. cloudpickle's
    `_function_getstate` calls the `_find_imported_submodules` its module imported."""
    import bz2
    import sys

    from cloudpickle import cloudpickle_fast
    from objsize import traverse

    from apache_beam.internal import cloudpickle_pickler, dill_pickler
    from apache_beam.options.pipeline_options import PipelineOptions
    from apache_beam.transforms import userstate

    from config.process import replaced

    remembered = Remembered(RememberedSpecs(userstate.get_dofn_specs),
                            RememberedViews(PipelineOptions.__dict__["view_as"]),
                            RememberedCompression(bz2, in_process),
                            RememberedModuleGlobals(sys.modules),
                            RememberedSubmodules(sys.modules))
    views = remembered.views
    with contextlib.ExitStack() as stack:
        stack.enter_context(replaced(userstate, "get_dofn_specs", remembered.specs))
        stack.enter_context(replaced(PipelineOptions, "view_as", lambda self, cls: views(self, cls)))
        for pickler in (cloudpickle_pickler, dill_pickler):
            stack.enter_context(replaced(pickler, "bz2", remembered.compression))
        module_globals = remembered.module_globals
        stack.enter_context(replaced(traverse.TraversalContext, "_update_exclude_set",
                                     lambda context: module_globals.update_exclude_set(context)))
        stack.enter_context(replaced(cloudpickle_fast, "_find_imported_submodules", remembered.submodules))
        yield remembered
