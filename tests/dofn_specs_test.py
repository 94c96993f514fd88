"""pipeline/dofn_specs.py: Beam's DoFn state/timer introspection answered once per DoFn object, with the same
answers, and pipelines with state and timers still run under it."""
from __future__ import annotations

import gc

import apache_beam as beam
from apache_beam.coders import VarIntCoder
from apache_beam.testing.util import assert_that, equal_to
from apache_beam.transforms import userstate
from apache_beam.transforms.timeutil import TimeDomain

from pipeline.dofn_specs import RememberedSpecs, remembered_dofn_specs

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


def test_the_same_specs_as_beam_computed_once_per_object():
    remembered = RememberedSpecs(userstate.get_dofn_specs)
    stateful, plain = SumPerKey(), Doubled()
    for _ in range(5):
        assert remembered(stateful) == userstate.get_dofn_specs(stateful)
        assert remembered(plain) == userstate.get_dofn_specs(plain) == (set(), set())
    states, timers = remembered(stateful)
    assert {s.name for s in states} == {"values"} and {t.name for t in timers} == {"ts-flush"}
    assert remembered.computed == 2 and len(remembered) == 2
    del stateful
    gc.collect()
    assert len(remembered) == 1  # the entry went with its DoFn: a reused id cannot hit it
    assert remembered(SumPerKey()) is not None and remembered.computed == 3


def test_pipelines_with_state_and_timers_run_under_it_and_beam_is_restored():
    original = userstate.get_dofn_specs
    with remembered_dofn_specs() as remembered:
        assert userstate.get_dofn_specs is remembered
        with beam.Pipeline(argv=BEAM_ARGS) as p:
            counts = (p | beam.Create([("a", 1), ("b", 2), ("a", 3), ("b", 4), ("a", 5)])
                      | beam.ParDo(SumPerKey()))
            doubled = p | "Numbers" >> beam.Create([1, 2, 3]) | beam.ParDo(Doubled())
            assert_that(counts, equal_to([("a", 9), ("b", 6)]), label="counts")
            assert_that(doubled, equal_to([2, 4, 6]), label="doubled")
        # Beam asked about each DoFn several times while building and running the pipeline.
        assert 0 < remembered.computed and remembered.asked >= 3 * remembered.computed
    assert userstate.get_dofn_specs is original
