"""pipeline/beam_memo.py: Beam's DoFn state/timer introspection answered once per DoFn class (or object, when
the object could change the answer), PipelineOptions views made once per options object, and the picklers'
bz2 computed once per payload, the state cache's module globals listed once per set of modules, with Beam's
answers; pipelines with state and timers still run under it."""
from __future__ import annotations

import bz2
import gc
import random
import sys
import types

import apache_beam as beam
import pytest
from apache_beam.coders import VarIntCoder
from apache_beam.options.pipeline_options import DirectOptions, PipelineOptions, StandardOptions
from apache_beam.testing.util import assert_that, equal_to
from apache_beam.transforms import userstate
from apache_beam.transforms.core import CallableWrapperDoFn
from apache_beam.transforms.timeutil import TimeDomain

from apache_beam.internal import cloudpickle_pickler, dill_pickler, pickler
from apache_beam.runners.worker import statecache
from objsize import traverse

from cloudpickle import cloudpickle, cloudpickle_fast

from pipeline.beam_memo import (RememberedCompression, RememberedModuleGlobals, RememberedSpecs, RememberedSubmodules,
                                RememberedViews, remembered_beam_answers)

BEAM_ARGS = ["--direct_running_mode=in_memory", "--direct_num_workers=1"]


class SumPerKey(beam.DoFn):
    """Stateful: the values of a key in a bag, summed when a watermark timer fires."""
    VALUES = userstate.BagStateSpec("values", VarIntCoder())
    FLUSH = userstate.TimerSpec("flush", TimeDomain.WATERMARK)

    def process(self, element, values=beam.DoFn.StateParam(VALUES), flush=beam.DoFn.TimerParam(FLUSH),
                key=beam.DoFn.KeyParam):
        values.add(element[1])
        flush.set(0)

    @userstate.on_timer(FLUSH)
    def on_flush(self, key=beam.DoFn.KeyParam, values=beam.DoFn.StateParam(VALUES)):
        yield key, sum(values.read())


class Doubled(beam.DoFn):
    def process(self, element):
        yield element * 2


class WithProperty(beam.DoFn):
    """A property of its own could read as a different bound method for each object."""

    def __init__(self, target):
        self._target = target

    @property
    def extra(self):
        return self._target.process

    def process(self, element):
        yield element


def test_the_same_specs_as_beam_computed_once_per_class():
    remembered = RememberedSpecs(userstate.get_dofn_specs)
    for _ in range(5):
        stateful, plain = SumPerKey(), Doubled()
        assert remembered(stateful) == userstate.get_dofn_specs(stateful)
        assert remembered(plain) == userstate.get_dofn_specs(plain) == (set(), set())
    states, timers = remembered(SumPerKey())
    assert {s.name for s in states} == {"values"} and {t.name for t in timers} == {"ts-flush"}
    assert remembered.computed == 2 and len(remembered) == 2
    # Beam's wrapper of a function stores it as the object's `process`: one answer per class and hidden names.
    for fn in (lambda x: x, lambda x: [x]):
        wrapper = CallableWrapperDoFn(fn)
        assert remembered(wrapper) == userstate.get_dofn_specs(wrapper)
    assert remembered.computed == 3


def test_objects_that_can_change_the_answer_are_asked_per_object():
    remembered = RememberedSpecs(userstate.get_dofn_specs)
    # A bound method held by the object: Beam's walk inspects it, and finds the state and timer it declares.
    holding = Doubled()
    holding.flush_from = SumPerKey().process
    assert remembered(holding) == userstate.get_dofn_specs(holding) != (set(), set())
    assert remembered(Doubled()) == (set(), set())
    # A property of the class's own: per object too.
    stateful, plain = WithProperty(SumPerKey()), WithProperty(Doubled())
    assert remembered(stateful) == userstate.get_dofn_specs(stateful) != (set(), set())
    assert remembered(plain) == userstate.get_dofn_specs(plain) == (set(), set())
    assert remembered.computed == 4 and len(remembered) == 4
    del holding, stateful
    gc.collect()
    assert len(remembered) == 2  # the entries went with their objects: a reused id cannot hit them
    assert remembered(WithProperty(SumPerKey())) != (set(), set()) and remembered.computed == 5


def test_option_views_made_once_and_alike():
    remembered = RememberedViews(PipelineOptions.view_as)
    options = PipelineOptions(["--direct_num_workers=3", "--runner=DirectRunner"])
    view = remembered(options, DirectOptions)
    assert remembered(options, DirectOptions) is view and view.direct_num_workers == 3
    # Values are shared with the options and every other view, Beam's own included.
    remembered(options, StandardOptions).streaming = True
    assert options.view_as(StandardOptions).streaming is True
    options.view_as(DirectOptions).direct_num_workers = 5
    assert view.direct_num_workers == 5
    assert (remembered.asked, remembered.made) == (3, 2)
    other = PipelineOptions(["--direct_num_workers=2"])
    assert remembered(other, DirectOptions).direct_num_workers == 2 and len(remembered) == 2
    del other
    gc.collect()
    assert len(remembered) == 1


def test_compression_is_bz2s_computed_once_per_payload():
    remembered = RememberedCompression(bz2)
    payload = b"a pickled DoFn " * 100
    packed = remembered.compress(payload, 9)
    assert packed == bz2.compress(payload, 9) and remembered.compress(bytearray(payload), 9) == packed
    assert remembered.compress(payload, 1) == bz2.compress(payload, 1)  # the level is part of the key
    assert remembered.decompress(packed) == payload and remembered.decompress(packed) == payload
    assert (remembered.asked, remembered.computed, len(remembered)) == (5, 3, 3)
    # Over the limit, compressed and not (random bytes do not compress): never kept.
    large = random.Random(0).randbytes(RememberedCompression.MAX_KEPT + 1)
    assert remembered.decompress(remembered.compress(large)) == large
    assert (remembered.asked, remembered.computed, len(remembered)) == (7, 5, 3)
    assert remembered.BZ2Compressor is bz2.BZ2Compressor  # the rest is bz2's


def test_in_process_payloads_are_kept_uncompressed_and_bz2_streams_still_read():
    remembered = RememberedCompression(bz2, in_process=True)
    payload = b"a pickled DoFn " * 100
    kept = remembered.compress(payload, 9)
    assert kept == RememberedCompression.UNCOMPRESSED + payload and not kept.startswith(b"BZh")
    assert remembered.decompress(kept) == payload
    assert remembered.decompress(bz2.compress(payload, 9)) == payload  # made outside the block
    assert len(remembered) == 1  # only the bz2 stream was decompressed (and kept)
    with pytest.raises(OSError):  # Beam's own bz2 outside the block would refuse such a payload loudly
        bz2.decompress(kept)
    # Beam's pickler round trip inside an in-process block, and its bz2 payloads as before outside.
    dofn = Doubled()
    outside = pickler.dumps(dofn)
    with remembered_beam_answers(in_process=True):
        inside = pickler.dumps(dofn)
        assert type(pickler.loads(inside)) is Doubled and type(pickler.loads(outside)) is Doubled
        with beam.Pipeline(argv=BEAM_ARGS) as p:
            assert_that(p | beam.Create([1, 2]) | beam.ParDo(Doubled()), equal_to([2, 4]))
    assert inside != outside and pickler.dumps(dofn) == outside


def test_module_globals_are_objsizes_listed_again_when_the_modules_change():
    modules = dict(sys.modules)
    remembered = RememberedModuleGlobals(modules)
    # What objsize lists: the same count, and every module's own dictionary. (A few objects in sys.modules,
    # such as typing.io, a class, and cffi's lib modules, give a new mapping at every vars().)
    listed = remembered()
    assert len(listed) == len(list(traverse._iter_modules_globals()))
    kept = {id(own) for own in listed}
    own_dicts = [vars(module) for module in modules.values()
                 if isinstance(module, types.ModuleType) and vars(module) is vars(module)]
    assert len(own_dicts) > 1000 and all(id(own) in kept for own in own_dicts)
    assert remembered() is remembered() and (remembered.asked, remembered.computed) == (3, 1)
    added = types.ModuleType("tfxp_test_added")
    modules[added.__name__] = added
    assert any(own is vars(added) for own in remembered()) and remembered.computed == 2
    modules[added.__name__] = types.ModuleType(added.__name__)  # the same name, another module
    assert not any(own is vars(added) for own in remembered()) and remembered.computed == 3
    modules["not a module"] = 3  # objects without vars() are skipped, as objsize skips them
    assert len(remembered()) == len(modules) - 1
    assert remembered.ids() == {id(own) for own in remembered()}


def _uses_submodules():
    import concurrent.futures  # noqa: F401  (a submodule reached as an attribute of its package)
    import os.path  # noqa: F401
    import xml.etree.ElementTree  # noqa: F401

    def function():
        return concurrent.futures.ThreadPoolExecutor, xml.etree.ElementTree.Element, os.path.join
    return function, [concurrent, xml, os, sys, 3, "not a module"]


def test_submodules_are_cloudpickles_found_again_when_the_modules_change():
    function, dependencies = _uses_submodules()
    modules = dict(sys.modules)
    remembered = RememberedSubmodules(modules)
    code = function.__code__
    theirs = cloudpickle._find_imported_submodules(code, iter(dependencies))
    assert {m.__name__ for m in theirs} >= {"concurrent.futures", "xml.etree", "xml.etree.ElementTree"}
    assert remembered(code, iter(dependencies)) == theirs
    assert remembered(code, iter(dependencies)) == theirs and (remembered.asked, remembered.computed) == (2, 1)
    concurrent = dependencies[0]
    assert remembered(code, iter([concurrent])) == cloudpickle._find_imported_submodules(code, [concurrent])
    assert remembered.computed == 2
    # An import adds a module at the end: found again, with it.
    added = types.ModuleType("concurrent.futures.tfxp_test_added")
    modules[added.__name__] = added
    tokens_code = (lambda: concurrent.futures.tfxp_test_added).__code__
    assert added in remembered(tokens_code, [concurrent]) and remembered.computed == 3
    # A removal shortens sys.modules: found again, without it.
    del modules[added.__name__]
    assert added not in remembered(tokens_code, [concurrent]) and remembered.computed == 4
    # A module replaced under its name at the end: found again.
    last = next(reversed(modules))
    modules[last] = types.ModuleType(last)
    remembered(code, iter(dependencies))
    assert remembered.computed == 5


def test_pickles_are_cloudpickles_with_submodules_remembered():
    function, _ = _uses_submodules()
    payload = cloudpickle_pickler.dumps(function)  # the pickler tfxp's pipelines use (beam.pickle_library)
    with remembered_beam_answers() as remembered:
        assert cloudpickle_fast._find_imported_submodules is remembered.submodules
        assert cloudpickle_pickler.dumps(function) == payload and cloudpickle_pickler.dumps(function) == payload
        assert remembered.submodules.asked >= 2 and remembered.submodules.computed == 1
        assert cloudpickle_pickler.loads(payload)()[0].__name__ == "ThreadPoolExecutor"
    assert cloudpickle_fast._find_imported_submodules is cloudpickle._find_imported_submodules


def test_exclude_sets_are_objsizes():
    """objsize's own _update_exclude_set against the stand-in, on contexts as objsize makes them: id(None),
    what `exclude` reaches, and every module's own dictionary; plus, in both, one id for each of the few objects
    in sys.modules that give a new mapping at every vars() (objsize's are of mappings already freed)."""
    remembered = RememberedModuleGlobals(sys.modules)
    own_dicts = {id(vars(module)) for module in sys.modules.values()
                 if isinstance(module, types.ModuleType) and vars(module) is vars(module)}
    changing = len(remembered()) - sum(1 for module in sys.modules.values()  # (some are there by two names)
                                       if isinstance(module, types.ModuleType) and vars(module) is vars(module))
    for settings in (traverse.ObjSizeSettings(), traverse.ObjSizeSettings(exclude=[[1, 2], "x"]),
                     traverse.ObjSizeSettings(exclude_modules_globals=False)):
        reached = traverse.TraversalContext(settings.replace(exclude_modules_globals=False)).exclude_set
        theirs = traverse.TraversalContext(settings).exclude_set
        ours = traverse.TraversalContext(settings)
        ours.exclude_set = set()
        remembered.update_exclude_set(ours)
        if settings.exclude_modules_globals:
            assert own_dicts <= remembered.ids() and len(remembered.ids() - own_dicts) == changing
            assert ours.exclude_set == reached | remembered.ids()
            assert reached | own_dicts <= theirs and len(theirs - reached - own_dicts) <= changing
        else:
            assert ours.exclude_set == reached == theirs
        assert id(None) in reached and (len(reached) > 3) == (settings.exclude is not None)


def test_state_cache_weights_are_objsizes():
    values = [[b"a side input"] * 50, {"key": list(range(100))}, statecache, (1.5, "x", None)]
    weights = [statecache.get_deep_size(value) for value in values]
    with remembered_beam_answers() as remembered:
        assert [statecache.get_deep_size(value) for value in values] == weights
        assert [statecache.get_deep_size(value) for value in values] == weights
        assert (remembered.module_globals.asked, remembered.module_globals.computed) == (8, 1)
    assert [statecache.get_deep_size(value) for value in values] == weights


def test_pipelines_with_state_and_timers_run_under_it_and_beam_is_restored():
    original_specs, original_view_as = userstate.get_dofn_specs, PipelineOptions.view_as
    original_update = traverse.TraversalContext._update_exclude_set
    with remembered_beam_answers() as remembered:
        assert userstate.get_dofn_specs is remembered.specs
        assert cloudpickle_pickler.bz2 is remembered.compression is dill_pickler.bz2
        # Beam's pickler, as its payloads are written and read: the same bytes as with bz2 itself.
        dofn = Doubled()
        assert pickler.dumps(dofn) == pickler.dumps(dofn)
        assert type(pickler.loads(pickler.dumps(dofn))) is Doubled
        with beam.Pipeline(argv=BEAM_ARGS) as p:
            counts = (p | beam.Create([("a", 1), ("b", 2), ("a", 3), ("b", 4), ("a", 5)])
                      | beam.ParDo(SumPerKey()))
            doubled = p | "Numbers" >> beam.Create([1, 2, 3]) | beam.ParDo(Doubled())
            offset = p | "Offset" >> beam.Create([10])
            shifted = doubled | beam.Map(lambda x, by: x + by[0], by=beam.pvalue.AsList(offset))
            assert_that(counts, equal_to([("a", 9), ("b", 6)]), label="counts")
            assert_that(doubled, equal_to([2, 4, 6]), label="doubled")
            assert_that(shifted, equal_to([12, 14, 16]), label="shifted")
        # Beam asked about each DoFn class several times while building and running the pipeline, and for
        # the same views of the pipeline's options.
        specs, views = remembered.specs, remembered.views
        assert 0 < specs.computed and specs.asked >= 3 * specs.computed
        assert 0 < views.made and views.asked >= 3 * views.made
        compression = remembered.compression
        assert 0 < compression.computed < compression.asked
        assert remembered.module_globals.asked > 0  # the side input was weighed for the state cache
        assert remembered.module_globals.computed < remembered.module_globals.asked
        payload = pickler.dumps(dofn)
    assert userstate.get_dofn_specs is original_specs and PipelineOptions.view_as is original_view_as
    assert cloudpickle_pickler.bz2 is bz2 and dill_pickler.bz2 is bz2
    assert traverse.TraversalContext._update_exclude_set is original_update
    assert pickler.dumps(dofn) == payload  # Beam's own, byte for byte
