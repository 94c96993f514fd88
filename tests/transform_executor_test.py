"""components/transform: TFX's Transform executor with the preprocessing_fn traced once for its inspections
and a Parquet payload read without tfx-bsl's per-row telemetry. On a taxi sample, as tf.Examples and as a
Parquet payload, with and without the analyzer cache, it makes the transform graph TFX's own executor makes
(the same vocabulary files, the same outputs for the same raw values), with two fewer traces of the
preprocessing_fn."""
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_transform as tft
from tensorflow_transform import impl_helper, inspect_preprocessing_fn
from tensorflow_transform.beam import analysis_graph_builder
from tensorflow_transform.beam import impl as tft_beam_impl
from tfx.components.transform import executor as tfx_module
from tfx.components.transform.executor import Executor as TfxExecutor
from tfx.proto import example_gen_pb2
from tfx.types import standard_artifacts
from tfx_bsl.tfxio import parquet_tfxio

from conftest import REPO, run_example_gen, sample_taxi_csv
from components.example_gen import executor as columnar_executor
from components.parquet_read import ParquetPayloadTFXIO
from components.transform import executor as transform_executor
from components.transform.executor import Executor, SharedTraces, shared_inspection_traces
from config import load_config
from pipeline import nodes
from pipeline.pipeline import pipeline_node


@pytest.fixture(scope="module")
def taxi_examples(tmp_path_factory):
    root = tmp_path_factory.mktemp("transform_executor")
    (root / "data").mkdir()
    sample_taxi_csv(root / "data" / "sample.csv", 2000)
    examples = {payload: run_example_gen(columnar_executor.Executor, root / "data", root / f"examples_{payload}",
                                         payload_format)
                for payload, payload_format in (("tf_example", example_gen_pb2.FORMAT_TF_EXAMPLE),
                                                ("parquet", example_gen_pb2.FORMAT_PARQUET))}
    schema_dir = root / "schema"
    schema_dir.mkdir()
    shutil.copy(os.path.join(REPO, "configs", "taxi.schema.pbtxt"), schema_dir / "schema.pbtxt")
    schema = standard_artifacts.Schema()
    schema.uri = str(schema_dir)
    return root, examples, schema


def run_transform(executor_class, examples, schema, out, analyzer_cache=False):
    """The executor as the pipeline runs it on the taxi config (analyzers only; with analyzer_cache, writing
    the analyzer cache, as the pipeline does with spans); returns the graph's URI,
    how many times the preprocessing_fn was traced and the types of the TFXIOs TFX's TransformProcessor
    made."""
    config = load_config(os.path.join(REPO, "configs", "taxi.yaml"))
    graph = standard_artifacts.TransformGraph()
    graph.uri = str(out / "transform_graph")
    outputs = {"transform_graph": [graph]}
    if analyzer_cache:
        cache = standard_artifacts.TransformCache()
        cache.uri = str(out / "cache")
        outputs["updated_analyzer_cache"] = [cache]
    original, traces = impl_helper.trace_preprocessing_function, []
    tfxios = []

    def counted(*args, **kwargs):
        traces.append(args[0])
        return original(*args, **kwargs)

    def recorded(create, processor_class):
        """`create`, noting what it made for an object of processor_class (ours calls TFX's in turn)."""
        def create_tfxio(processor, dataset, schema):
            tfxio = create(processor, dataset, schema)
            if type(processor) is processor_class:
                tfxios.append(type(tfxio))
            return tfxio
        return create_tfxio

    impl_helper.trace_preprocessing_function = counted
    tfx_create, tfxp_create = (tfx_module.TransformProcessor._CreateTFXIO,
                               transform_executor.TransformProcessor.__dict__["_CreateTFXIO"])
    tfx_module.TransformProcessor._CreateTFXIO = recorded(tfx_create, tfx_module.TransformProcessor)
    transform_executor.TransformProcessor._CreateTFXIO = recorded(tfxp_create,
                                                                   transform_executor.TransformProcessor)
    try:
        executor_class(executor_class.Context(beam_pipeline_args=config.beam.pipeline_args(),
                                              tmp_dir=str(out / "tmp"), unique_id="1")).Do(
            {"examples": [examples], "schema": [schema]}, outputs,
            {**pipeline_node(config, nodes.TRANSFORM).exec_properties, "disable_analyzer_cache": not analyzer_cache})
    finally:
        impl_helper.trace_preprocessing_function = original
        tfx_module.TransformProcessor._CreateTFXIO = tfx_create
        transform_executor.TransformProcessor._CreateTFXIO = tfxp_create
    return graph.uri, len(traces), set(tfxios)


def transformed(graph_dir):
    """The graph's outputs for two raw rows holding 1 and 2 (as text for string features) in every column."""
    output = tft.TFTransformOutput(graph_dir)
    raw = {}
    for name, feature in output.raw_feature_spec().items():
        values = tf.constant(["1", "2"]) if feature.dtype == tf.string else tf.constant([1, 2], feature.dtype)
        raw[name] = tf.sparse.from_dense(tf.reshape(values, [2, 1]))
    return {name: value.numpy() for name, value in output.transform_features_layer()(raw).items()}


def assets(graph_dir):
    folder = os.path.join(graph_dir, "transform_fn", "assets")
    return {name: open(os.path.join(folder, name)).read() for name in sorted(os.listdir(folder))}


@pytest.mark.parametrize("payload,analyzer_cache", [("tf_example", False), ("parquet", False), ("tf_example", True)])
def test_one_trace_for_the_column_inspections_and_the_same_transform_graph(taxi_examples, payload, analyzer_cache):
    root, examples, schema = taxi_examples
    out = root / f"{payload}_{analyzer_cache}"
    stock_graph, stock_traces, stock_tfxios = run_transform(TfxExecutor, examples[payload], schema, out / "tfx",
                                                            analyzer_cache)
    graph, traces, tfxios = run_transform(Executor, examples[payload], schema, out / "tfxp", analyzer_cache)
    # TFX's executor: two inspections of the analyzers' columns, one of the transform's, one of the cache
    # entries (and, with the cache on, one of the datasets to read), and AnalyzeDataset's own trace. tfxp's:
    # one trace for the three column inspections, which the cache entries' inspection then takes (and the
    # datasets' inspection and AnalyzeDataset trace afresh); with no cache, no cache question is asked and
    # AnalyzeDataset takes that one trace.
    assert (stock_traces, traces) == ((6, 3) if analyzer_cache else (5, 1))
    if payload == "parquet":  # tfx-bsl's ParquetTFXIO, with its read telemetry, for TFX's executor only
        assert (stock_tfxios, tfxios) == ({parquet_tfxio.ParquetTFXIO}, {ParquetPayloadTFXIO})
    else:
        assert tfxios == stock_tfxios and ParquetPayloadTFXIO not in tfxios
    assert assets(graph) == assets(stock_graph) and len(assets(graph)) >= 5
    ours, theirs = transformed(graph), transformed(stock_graph)
    assert sorted(ours) == sorted(theirs) and len(ours) > 10
    for name in ours:
        if np.issubdtype(ours[name].dtype, np.floating):
            # The analyzers sum over batches whose sizes Beam's BatchElements picks by timing when it reads
            # tf.Examples, so a mean or variance can differ in its last float32 bit between any two runs
            # (seen once in ~20 suites: -0.90731394 against -0.90731406 in fare_xf).
            np.testing.assert_allclose(ours[name], theirs[name], rtol=1e-6, atol=1e-6, err_msg=name)
        else:
            assert np.array_equal(ours[name], theirs[name]), name
    # The stand-ins are gone after the run.
    assert inspect_preprocessing_fn.impl_helper is impl_helper
    assert analysis_graph_builder.impl_helper is impl_helper and tft_beam_impl.impl_helper is impl_helper
    if analyzer_cache:  # the same cache entries, under the same keys
        def entries(cache):
            return sorted(os.path.relpath(os.path.join(d, f), cache) for d, _, files in os.walk(cache) for f in files)
        assert entries(out / "tfxp" / "cache") == entries(out / "tfx" / "cache") != []
    assert tfx_module.TransformProcessor is not transform_executor.TransformProcessor


def test_shared_traces_trace_each_function_and_specs_once():
    def double(inputs):
        return {"y": inputs["x"] * 2}

    def triple(inputs):
        return {"y": inputs["x"] * 3}

    specs = {"x": tf.io.FixedLenFeature([], tf.float32)}
    with shared_inspection_traces() as shared:
        assert isinstance(inspect_preprocessing_fn.impl_helper, SharedTraces)
        assert tft.get_analyze_input_columns(double, specs, force_tf_compat_v1=True) == []
        assert tft.get_transform_input_columns(double, dict(specs), force_tf_compat_v1=True) == ["x"]
        assert (shared.asked, shared.traced) == (2, 1)  # equal specs, the same function: one trace
        tft.get_transform_input_columns(triple, specs, force_tf_compat_v1=True)
        tft.get_transform_input_columns(double, {"x": tf.io.FixedLenFeature([], tf.int64)}, force_tf_compat_v1=True)
        assert (shared.asked, shared.traced) == (4, 3)
        # Everything else of the module is tf.Transform's own.
        assert shared.batched_placeholders_from_specs is impl_helper.batched_placeholders_from_specs
    assert inspect_preprocessing_fn.impl_helper is impl_helper


def test_the_analysis_graph_inspection_takes_the_shared_trace_and_answers_as_with_its_own():
    """analysis_graph_builder builds on (changes) the trace it gets: it takes the shared one, with the same
    answers as from a trace of its own, and whoever asks after it gets a fresh trace."""
    from tensorflow_transform.beam import analyzer_cache as tft_cache

    def scaled(inputs):
        return {"z": tft.scale_to_z_score(inputs["x"]), "v": tft.compute_and_apply_vocabulary(inputs["s"])}

    specs = {"x": tf.io.FixedLenFeature([], tf.float32), "s": tf.io.FixedLenFeature([], tf.string)}
    keys = [tft_cache.DatasetKey("span-1"), tft_cache.DatasetKey("span-2")]
    own = analysis_graph_builder.get_analysis_cache_entry_keys(scaled, specs, keys, True)
    own_datasets = analysis_graph_builder.get_analysis_dataset_keys(scaled, specs, keys, {}, True)
    with shared_inspection_traces() as shared:
        assert sorted(tft.get_analyze_input_columns(scaled, specs, force_tf_compat_v1=True)) == ["s", "x"]
        assert (shared.asked, shared.traced) == (1, 1)
        assert analysis_graph_builder.get_analysis_cache_entry_keys(scaled, specs, keys, True) == own
        assert (shared.asked, shared.traced) == (2, 1)  # the shared trace, taken
        assert analysis_graph_builder.get_analysis_dataset_keys(scaled, specs, keys, {}, True) == own_datasets
        assert (shared.asked, shared.traced) == (3, 2)  # a fresh one: the taken trace was built on
        assert sorted(tft.get_transform_input_columns(scaled, specs, force_tf_compat_v1=True)) == ["s", "x"]
        assert (shared.asked, shared.traced) == (4, 3)  # and the inspections share a fresh one again
        assert sorted(tft.get_analyze_input_columns(scaled, specs, force_tf_compat_v1=True)) == ["s", "x"]
        assert (shared.asked, shared.traced) == (5, 3)
    assert len(own) == 2 and analysis_graph_builder.impl_helper is impl_helper  # mean-and-var, vocabulary


def test_with_no_analyzer_cache_the_cache_question_is_not_asked_and_every_dataset_is_analyzed():
    """TransformProcessor._OptimizeRun with no input or output cache: TFX's answer (every dataset, latest
    first, no input cache) without tracing the preprocessing_fn for the cache entries. (With a cache, TFX's
    own, which asks: test_one_trace_for_the_column_inspections_and_the_same_transform_graph.)"""
    import collections

    import apache_beam as beam
    from tensorflow_transform.beam import analyzer_cache as tft_cache

    def scaled(inputs):
        return {"z": tft.scale_to_z_score(inputs["x"])}

    Dataset = collections.namedtuple("Dataset", "dataset_key")
    datasets = [Dataset(tft_cache.DatasetKey(f"span-{i}")) for i in range(3)]
    specs = {"x": tf.TensorSpec([None], tf.float32)}
    asked = []
    original = analysis_graph_builder.get_analysis_cache_entry_keys

    def counted(*args, **kwargs):
        asked.append(args[0])
        return original(*args, **kwargs)

    def optimize(processor_class, cache_dir):
        with beam.Pipeline() as p:
            return p | processor_class._OptimizeRun(cache_dir, None, datasets, specs, scaled, None, True, False, False)

    analysis_graph_builder.get_analysis_cache_entry_keys = counted
    try:
        theirs_data, theirs_cache, theirs_estimate = optimize(tfx_module.TransformProcessor, None)
        assert len(asked) == 1 and theirs_cache is None and theirs_estimate == 10 * len(datasets)
        ours_data, ours_cache, ours_estimate = optimize(transform_executor.TransformProcessor, None)
        assert len(asked) == 1  # not asked
        assert list(ours_data.items()) == list(theirs_data.items()) and list(ours_data) == [
            d.dataset_key for d in reversed(datasets)]
        assert ours_cache is None and ours_estimate == 0
    finally:
        analysis_graph_builder.get_analysis_cache_entry_keys = original
