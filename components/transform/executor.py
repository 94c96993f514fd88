"""TFX's Transform executor (tfx 1.16), with the preprocessing_fn traced once for the questions asked before
the analysis pipeline is built and for the pipeline itself, and a Parquet payload read without tfx-bsl's
per-row read telemetry.

Traces. Before it builds the Beam pipeline, TFX's Transform executor asks tf.Transform about the
preprocessing_fn four times: which columns the analyzers read (twice: in `Transform` and again in
`_RunBeamImpl`), which columns the transform reads, and which analysis cache entries there would be (asked
even with the cache off, to estimate the stage count). Each answer traced the preprocessing_fn into a new
graph, beside the one trace that AnalyzeDataset makes to build the pipeline: five traces of the whole
function per run, ~0.3-0.5 s each on the taxi config. The three column questions
(tensorflow_transform.inspect_preprocessing_fn) only read the graph they trace. Within one `Do`, that module
is handed a stand-in for tf.Transform's impl_helper whose `trace_preprocessing_function` returns the first
trace of the same function object on equal input specs (and, for a TF2 trace, the same temporary directory).
An analysis-graph build (analysis_graph_builder's cache question, or AnalyzeDataset in
tensorflow_transform.beam.impl) changes the trace's nodes: a trace it used must serve nobody after it
(sharing one with a second build made that build come out wrong and Transform fail to build its pipeline).
So their stand-in *takes* the shared trace: the trace leaves the share as it is handed over, and a later
request traces afresh. With no analyzer cache, TransformProcessor._OptimizeRun asks no cache question (its
answer would only size a Beam metric), so AnalyzeDataset takes the inspections' trace: one trace per run.
With the analyzer cache on (spans), the cache question takes it, and the datasets question and AnalyzeDataset
trace afresh: three traces. TFX's executor traces five and six times.

Read. TFX's executor reads each dataset through the TFXIO that `TransformProcessor._CreateTFXIO` makes; on a
Parquet payload that is tfx-bsl's ParquetTFXIO, whose BeamSource walks every row of a random 10% of the
batches in Python for its telemetry (components/parquet_read.py): ~1-1.5 s per sampled 65k-row row group,
none to several per 1M rows, so the same Transform took anywhere from 8 to 15 s. `Do` instantiates
TransformProcessor by its module name, so within one `Do` that name is this module's subclass, whose
_CreateTFXIO returns components/parquet_read's ParquetPayloadTFXIO for a ParquetTFXIO (the same files,
columns, schema and projection) and TFX's TFXIO otherwise.

The answers, the pipeline and the transform graph are what TFX's executor makes (tests/transform_executor_test.py).
"""
from __future__ import annotations

import contextlib
from typing import Any, Dict, Iterator, List, Tuple

import apache_beam as beam
from tfx import types
from tfx.components.transform import executor as tfx_transform_executor
from tfx_bsl.tfxio import tfxio as tfxio_module

from components.parquet_read import without_read_telemetry
from config.process import replaced


class SharedTraces:
    """Stands in for the tensorflow_transform.impl_helper module: every attribute is the module's, except
    `trace_preprocessing_function`, which traces a function on given specs once. `traced` counts the traces
    made, `asked` the requests; `taking()` is the stand-in for a user that changes the trace it gets."""

    def __init__(self, impl_helper: Any):
        self._impl_helper = impl_helper
        self._traces: List[Tuple[Any, Dict[str, Any], bool, Any, Any]] = []
        self.asked = self.traced = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._impl_helper, name)

    def _trace(self, preprocessing_fn, input_specs, use_tf_compat_v1, base_temp_dir, take: bool):
        self.asked += 1
        for i, (fn, specs, tf_compat_v1, temp_dir, trace) in enumerate(self._traces):
            # A TF1 trace does not use the temporary directory; a TF2 trace writes its dummy assets there.
            if (fn is preprocessing_fn and tf_compat_v1 == use_tf_compat_v1 and specs == input_specs
                    and (use_tf_compat_v1 or temp_dir == base_temp_dir)):
                if take:
                    del self._traces[i]
                return trace
        trace = self._impl_helper.trace_preprocessing_function(preprocessing_fn, input_specs, use_tf_compat_v1,
                                                               base_temp_dir)
        self.traced += 1
        if not take:
            self._traces.append((preprocessing_fn, dict(input_specs), use_tf_compat_v1, base_temp_dir, trace))
        return trace

    def trace_preprocessing_function(self, preprocessing_fn, input_specs, use_tf_compat_v1, base_temp_dir=None):
        return self._trace(preprocessing_fn, input_specs, use_tf_compat_v1, base_temp_dir, take=False)

    def taking(self) -> "TakenTraces":
        return TakenTraces(self)


class TakenTraces:
    """Stands in for impl_helper where the trace is changed after it is handed over: the shared trace of the
    same function and specs leaves the share as it is given (later requests trace afresh); with none shared,
    a fresh trace that is never shared."""

    def __init__(self, shared: SharedTraces):
        self._shared = shared

    def __getattr__(self, name: str) -> Any:
        return getattr(self._shared, name)

    def trace_preprocessing_function(self, preprocessing_fn, input_specs, use_tf_compat_v1, base_temp_dir=None):
        return self._shared._trace(preprocessing_fn, input_specs, use_tf_compat_v1, base_temp_dir, take=True)


@contextlib.contextmanager
def shared_inspection_traces() -> Iterator[SharedTraces]:
    """Within the block, tf.Transform's column inspections of a preprocessing_fn share one trace, which the
    first analysis-graph build after them takes: the cache question's with an analyzer cache, AnalyzeDataset's
    without one (TransformProcessor._OptimizeRun then asks no cache question)."""
    from tensorflow_transform import impl_helper, inspect_preprocessing_fn
    from tensorflow_transform.beam import analysis_graph_builder
    from tensorflow_transform.beam import impl as tft_beam_impl

    shared = SharedTraces(impl_helper)
    taking = shared.taking()
    with replaced(inspect_preprocessing_fn, "impl_helper", shared), \
            replaced(analysis_graph_builder, "impl_helper", taking), replaced(tft_beam_impl, "impl_helper", taking):
        yield shared


class TransformProcessor(tfx_transform_executor.TransformProcessor):
    """TFX's TransformProcessor; a Parquet payload is read without tfx-bsl's per-row telemetry, and with no
    analyzer cache the cache question is not asked."""

    def _CreateTFXIO(self, dataset: Any, schema: Any) -> tfxio_module.TFXIO:
        return without_read_telemetry(super()._CreateTFXIO(dataset, schema))

    class _OptimizeRun(tfx_transform_executor.TransformProcessor._OptimizeRun):
        """TFX's _OptimizeRun; with no input or output analyzer cache (and no incremental cache) it returns what
        TFX's returns without asking tf.Transform which cache entries the analysis would have.

        TFX asks it whatever the cache, by building the analysis graph of a fresh trace of the preprocessing_fn;
        with no cache, the answer only sizes its `estimated_stage_count_with_cache` Beam metric (and a warning
        to turn a cache off), and every dataset is analyzed either way. Not asking it leaves the inspections'
        shared trace to AnalyzeDataset: one trace of the preprocessing_fn per run instead of two (~0.3 s of the
        taxi Transform). The metric is then recorded as 0: not estimated."""

        def expand(self, pipeline):
            if (self._input_cache_dir is not None or self._output_cache_dir is not None
                    or self._enable_incremental_cache):
                return super().expand(pipeline)
            # As TFX's expand (the Create keeps this transform a composite one for Beam).
            _ = pipeline | "WorkaroundForBug170304777" >> beam.Create([None])
            # As TFX's loop with no cache: every dataset, latest first.
            analyze_data = {dataset.dataset_key: dataset for dataset in self._analyze_data_list[::-1]}
            return analyze_data, None, 0


class Executor(tfx_transform_executor.Executor):
    """TFX's Transform executor; its inspections of the preprocessing_fn share one trace, and a Parquet
    payload is read without the per-row telemetry."""

    def Do(self, input_dict: Dict[str, List[types.Artifact]], output_dict: Dict[str, List[types.Artifact]],
           exec_properties: Dict[str, Any]) -> None:
        # TFX's Do instantiates TransformProcessor by its module name.
        with shared_inspection_traces(), replaced(tfx_transform_executor, "TransformProcessor",
                                                  TransformProcessor):
            super().Do(input_dict, output_dict, exec_properties)
