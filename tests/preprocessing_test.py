"""preprocessing_fn run for real through tft_beam.AnalyzeAndTransformDataset, checked against numpy; traced
into a TF1 graph as the pipeline runs it by default (transform.tf_compat_v1), and as TF2 functions."""
import functools

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_transform.beam as tft_beam
from tensorflow_transform.tf_metadata import dataset_metadata, schema_utils

from config import CustomConfig, FeatureConfig, LabelConfig, ModelConfig, TrainingConfig
from preprocessing.transform import preprocessing_fn

NAN = float("nan")


def feature(name, treatment, **options):
    return FeatureConfig(name=name, treatment=treatment, **options)


def analyze_and_transform(rows, spec, config, tmp_path, tf_compat_v1=True, one_pass=False, batch_size=None):
    """rows: dicts of column -> list of values ([] = missing cell), as CsvExampleGen's VarLen features.
    config: {"label": {...}, "features": [FeatureConfig...]}, passed as Transform passes custom_config.
    tf_compat_v1: as transform.tf_compat_v1 (TFX Transform's force_tf_compat_v1); one_pass: as
    CustomConfig.one_pass_vocabularies (preprocessing/vocabularies.py); batch_size: rows per batch (None:
    tf.Transform's own choice)."""
    custom_config = CustomConfig(label=LabelConfig(**config["label"]), features=tuple(config["features"]),
                                 model=ModelConfig(), training=TrainingConfig(),
                                 one_pass_vocabularies=one_pass).to_json()
    metadata = dataset_metadata.DatasetMetadata(schema_utils.schema_from_feature_spec(spec))
    fn = functools.partial(preprocessing_fn, custom_config=custom_config)
    with tft_beam.Context(temp_dir=str(tmp_path), force_tf_compat_v1=tf_compat_v1, desired_batch_size=batch_size):
        (transformed, _), _ = ((rows, metadata) | tft_beam.AnalyzeAndTransformDataset(
            fn, output_record_batches=False))
    return {key: np.array([row[key] for row in transformed]) for key in transformed[0]}


@pytest.fixture(scope="module")
def binary_results(tmp_path_factory):
    """{tf_compat_v1: (columns, outputs)} for a TF1 graph (True) and TF2 functions (False)."""
    return {tf1: binary_case(tmp_path_factory.mktemp("tft"), tf1) for tf1 in (True, False)}


@pytest.fixture(params=[True, False], ids=["tf1_graph", "tf2_functions"])
def binary_result(request, binary_results):
    return binary_results[request.param]


def binary_case(tmp_path, tf_compat_v1, one_pass=False):
    x = [1.0, None, 3.0, 4.0, 10.0, 2.0]  # None = missing cell
    lat = [41.9, 41.8, None, 42.0, 41.7, 41.85]
    const = [7.0] * 5 + [None]
    city = ["paris", "rome", "paris", None, "paris", "oslo"]
    hour = [5, 5, 23, 7, 5, None]  # integer categorical
    passthrough = [0.5, None, 1.5, 2.5, 3.5, 4.5]
    label = [1, 0, 1, 1, 0, 0]
    columns = {"x": x, "xz0": x, "lat": lat, "const_z": const, "const_mm": const, "city": city, "hour": hour,
               "pt": passthrough, "y": label}
    rows = [{name: ([] if values[i] is None else [values[i].encode() if isinstance(values[i], str)
                                                  else values[i]])
             for name, values in columns.items()} for i in range(6)]
    spec = {"x": tf.io.VarLenFeature(tf.float32), "xz0": tf.io.VarLenFeature(tf.float32),
            "lat": tf.io.VarLenFeature(tf.float32),
            "const_z": tf.io.VarLenFeature(tf.float32), "const_mm": tf.io.VarLenFeature(tf.float32),
            "city": tf.io.VarLenFeature(tf.string), "hour": tf.io.VarLenFeature(tf.int64),
            "pt": tf.io.VarLenFeature(tf.float32), "y": tf.io.VarLenFeature(tf.int64)}
    config = {"label": {"column": "y", "task": "binary"}, "features": [
        feature("x", "zscore"), feature("xz0", "zscore", fill=-5), feature("lat", "minmax"), feature("const_z", "zscore"),
        feature("const_mm", "minmax"), feature("city", "vocab"), feature("hour", "vocab", top_k=2),
        feature("pt", "passthrough", fill=-1)]}
    return columns, analyze_and_transform(rows, spec, config, tmp_path, tf_compat_v1, one_pass)


def test_tf1_graph_and_tf2_functions_transform_alike(binary_results):
    (_, tf1), (_, tf2) = binary_results[True], binary_results[False]
    assert sorted(tf1) == sorted(tf2)
    for name in tf1:
        assert tf1[name].dtype == tf2[name].dtype, name
        np.testing.assert_allclose(tf1[name], tf2[name], rtol=1e-6, err_msg=name)


def test_zscore_matches_numpy_and_puts_missing_at_the_training_mean(binary_result):
    columns, out = binary_result
    x = np.array([v for v in columns["x"] if v is not None])
    expected = [0.0 if v is None else (v - x.mean()) / x.std() for v in columns["x"]]
    np.testing.assert_allclose(out["x_xf"], expected, rtol=1e-5, atol=1e-6)


def test_minmax_matches_numpy_and_puts_missing_at_the_scaled_mean(binary_result):
    columns, out = binary_result
    lat = np.array([v for v in columns["lat"] if v is not None])
    expected = [(lat.mean() if v is None else v) for v in columns["lat"]]
    expected = (np.array(expected) - lat.min()) / (lat.max() - lat.min())
    # float32 latitudes (~42.0) carry ~4e-6 absolute error; divided by a 0.3 range that is ~1e-5.
    np.testing.assert_allclose(out["lat_xf"], expected, atol=1e-4)


def test_numeric_fill_value_is_filled_in_before_scaling(binary_result):
    columns, out = binary_result
    filled = np.array([-5.0 if v is None else v for v in columns["xz0"]])
    np.testing.assert_allclose(out["xz0_xf"], (filled - filled.mean()) / filled.std(), rtol=1e-5)


def test_constant_features_come_out_finite(binary_result):
    _, out = binary_result
    # const_z / const_mm have a missing cell too: it must come out as the same finite value.
    assert np.all(np.isfinite(out["const_z_xf"])) and np.all(np.isfinite(out["const_mm_xf"]))
    np.testing.assert_allclose(out["const_z_xf"], 0.0)
    assert np.all((out["const_mm_xf"] > 0) & (out["const_mm_xf"] < 1))
    np.testing.assert_allclose(out["const_mm_xf"], out["const_mm_xf"][0])


def test_vocab_ids_by_frequency_with_missing_as_its_own_token(binary_result):
    columns, out = binary_result
    ids = dict(zip(columns["city"], out["city_xf"]))
    assert ids["paris"] == 0  # most frequent token first
    assert len(set(out["city_xf"])) == 4  # paris, rome, oslo and '' (missing)
    assert ids[None] in (1, 2, 3)


def test_integer_vocab_with_top_k_sends_rare_values_to_oov(binary_result):
    columns, out = binary_result
    ids = dict(zip(columns["hour"], out["hour_xf"]))
    assert ids[5] == 0
    # top_k=2 keeps "5" and one other token; one OOV bucket gets id 2 for the rest.
    assert sorted(set(out["hour_xf"])) == [0, 1, 2]
    assert out["hour_xf"].dtype == np.int64


def test_passthrough_fills_missing_with_the_configured_number(binary_result):
    columns, out = binary_result
    expected = [-1.0 if v is None else v for v in columns["pt"]]
    np.testing.assert_allclose(out["pt_xf"], expected)


def test_binary_label_is_int64_and_unchanged(binary_result):
    columns, out = binary_result
    assert out["y_xf"].dtype == np.int64
    assert out["y_xf"].tolist() == columns["y"]


def test_one_pass_vocabularies_transform_as_one_at_a_time(binary_results, tmp_path):
    """The whole preprocessing_fn with every vocabulary analyzed in one pass: the same outputs."""
    (_, one_at_a_time), (_, one_pass) = binary_results[True], binary_case(tmp_path, True, one_pass=True)
    assert sorted(one_pass) == sorted(one_at_a_time)
    for name in one_pass:
        assert one_pass[name].dtype == one_at_a_time[name].dtype, name
        np.testing.assert_allclose(one_pass[name], one_at_a_time[name], rtol=1e-6, err_msg=name)


@pytest.mark.parametrize("one_pass", [False, True], ids=["one_at_a_time", "one_pass"])
def test_multiclass_text_label_becomes_class_ids(tmp_path, one_pass):
    labels = ["barolo", "barbera", "barolo", "grignolino", "barolo", "barbera"]
    rows = [{"v": [float(i)], "label": [name.encode()]} for i, name in enumerate(labels)]
    spec = {"v": tf.io.VarLenFeature(tf.float32), "label": tf.io.VarLenFeature(tf.string)}
    config = {"label": {"column": "label", "task": "multiclass"}, "features": [feature("v", "zscore")]}
    out = analyze_and_transform(rows, spec, config, tmp_path, one_pass=one_pass)
    ids = dict(zip(labels, out["label_xf"]))
    assert ids["barolo"] == 0 and ids["barbera"] == 1 and ids["grignolino"] == 2
    np.testing.assert_allclose(out["v_xf"], (np.arange(6) - 2.5) / np.arange(6).std(), rtol=1e-5)


def test_nan_and_inf_never_reach_the_scalers_they_count_as_missing(tmp_path):
    values = [1.0, NAN, 3.0, float("inf"), 5.0, -float("inf"), 7.0]
    rows = [{"z": [v], "m": [v], "y": [i % 2]} for i, v in enumerate(values)]
    spec = {"z": tf.io.VarLenFeature(tf.float32), "m": tf.io.VarLenFeature(tf.float32),
            "y": tf.io.VarLenFeature(tf.int64)}
    config = {"label": {"column": "y", "task": "binary"},
              "features": [feature("z", "zscore"), feature("m", "minmax")]}
    out = analyze_and_transform(rows, spec, config, tmp_path)
    finite = np.array([1.0, 3.0, 5.0, 7.0])  # the analyzers see only these
    expected_z = [0.0 if not np.isfinite(v) else (v - finite.mean()) / finite.std() for v in values]
    np.testing.assert_allclose(out["z_xf"], expected_z, rtol=1e-5, atol=1e-6)
    expected_m = [(finite.mean() if not np.isfinite(v) else v) for v in values]
    np.testing.assert_allclose(out["m_xf"], (np.array(expected_m) - 1.0) / 6.0, atol=1e-6)


@pytest.mark.parametrize("tf_compat_v1", [True, False], ids=["tf1_graph", "tf2_functions"])
def test_unit_weighted_vocabulary_is_tft_unweighted_vocabulary(tmp_path, tf_compat_v1):
    """apply_vocabulary (every token weighted 1.0, counted per batch) writes the same vocabulary files, in the
    same order, as tft.compute_and_apply_vocabulary without weights: ties broken alike, top_k cutting at the
    same token, counts summed across batches (batches of 3 rows), and the same ids."""
    import tensorflow_transform as tft

    from preprocessing.transform import apply_vocabulary

    tokens = ["a", "b", "c", "a", "e", "c", "b", "d", "a", "e", "", "f", "c", "g", "g", "b", "a", "h"]
    rows = [{"t": token.encode()} for token in tokens]
    metadata = dataset_metadata.DatasetMetadata(schema_utils.schema_from_feature_spec(
        {"t": tf.io.FixedLenFeature([], tf.string)}))

    def vocabularies(vocabulary_fn, out_dir):
        def fn(inputs):
            return {f"top_{k}": vocabulary_fn(inputs["t"], top_k=k, num_oov_buckets=1, vocab_filename=f"top_{k}")
                    for k in (None, 3, 4)}
        with tft_beam.Context(temp_dir=str(out_dir / "tmp"), desired_batch_size=3, force_tf_compat_v1=tf_compat_v1):
            (transformed, _), transform_fn = ((rows, metadata) | tft_beam.AnalyzeAndTransformDataset(
                fn, output_record_batches=False))
            _ = transform_fn | tft_beam.WriteTransformFn(str(out_dir / "graph"))
        output = tft.TFTransformOutput(str(out_dir / "graph"))
        files = {name: output.vocabulary_by_name(name) for name in ("top_None", "top_3", "top_4")}
        return files, {key: [row[key] for row in transformed] for key in transformed[0]}

    unweighted, weighted = (vocabularies(fn, tmp_path / name) for name, fn in (
        ("unweighted", tft.compute_and_apply_vocabulary), ("weighted", apply_vocabulary)))
    assert weighted == unweighted
    files, ids = weighted
    assert files["top_None"][:3] == [b"a", b"c", b"b"]  # 4, then 3 and 3 (ties: the larger token first)
    assert files["top_3"] == [b"a", b"c", b"b"] and ids["top_3"][tokens.index("e")] == 3  # OOV


@pytest.mark.parametrize("tf_compat_v1", [True, False], ids=["tf1_graph", "tf2_functions"])
def test_one_pass_vocabularies_write_tfts_files_and_ids(tmp_path, tf_compat_v1):
    """compute_and_apply_vocabularies (one analyzer for all) against tft.compute_and_apply_vocabulary, one
    analyzer each, on batches of 3 rows: the same files (ties broken alike, top_k cutting at the same token,
    empty tokens and tokens with a newline left out, an empty vocabulary's dummy token), the same asset map and
    vocabulary sizes, and the same ids (OOV buckets included)."""
    import json
    import os

    import tensorflow_transform as tft

    from preprocessing.vocabularies import VocabularySpec, compute_and_apply_vocabularies

    tokens = ["a", "b", "c", "a", "e", "c", "b", "d", "a", "e", "", "f", "c", "g", "g", "b", "a", "h", "x\ny",
              "\u00e9", "\u00e9", "x\ny"]
    rows = [{"t": token.encode(), "e": b""} for token in tokens]
    metadata = dataset_metadata.DatasetMetadata(schema_utils.schema_from_feature_spec(
        {"t": tf.io.FixedLenFeature([], tf.string), "e": tf.io.FixedLenFeature([], tf.string)}))
    specs = [VocabularySpec(f"top_{k}", k, 1) for k in (None, 3, 4)] + [VocabularySpec("empty", None, 2)]

    def one_at_a_time(inputs):
        return {spec.name: tft.compute_and_apply_vocabulary(
            inputs["e" if spec.name == "empty" else "t"], top_k=spec.top_k, num_oov_buckets=spec.num_oov_buckets,
            vocab_filename=spec.name) for spec in specs}

    def one_pass(inputs):
        texts = [inputs["e" if spec.name == "empty" else "t"] for spec in specs]
        return dict(zip((spec.name for spec in specs), compute_and_apply_vocabularies(texts, specs)))

    def run(fn, out_dir):
        with tft_beam.Context(temp_dir=str(out_dir / "tmp"), desired_batch_size=3, force_tf_compat_v1=tf_compat_v1):
            (transformed, _), transform_fn = ((rows, metadata) | tft_beam.AnalyzeAndTransformDataset(
                fn, output_record_batches=False))
            _ = transform_fn | tft_beam.WriteTransformFn(str(out_dir / "graph"))
        output = tft.TFTransformOutput(str(out_dir / "graph"))
        asset_map = json.load(open(os.path.join(str(out_dir / "graph"), "transformed_metadata", "asset_map")))
        return ({spec.name: output.vocabulary_by_name(spec.name) for spec in specs},
                {spec.name: output.vocabulary_size_by_name(spec.name) for spec in specs}, asset_map,
                {key: [int(row[key]) for row in transformed] for key in transformed[0]})

    theirs, ours = run(one_at_a_time, tmp_path / "tft"), run(one_pass, tmp_path / "one_pass")
    assert ours == theirs
    files, sizes, asset_map, ids = ours
    assert files["top_None"][:4] == [b"a", b"c", b"b", b"\xc3\xa9"]  # 4, then 3, 3 (ties: larger token first)
    assert files["top_3"] == [b"a", b"c", b"b"] and ids["top_3"][tokens.index("e")] == 3  # OOV
    assert b"" not in files["top_None"] and b"x\ny" not in files["top_None"]
    assert len(files["empty"]) == 1 and sizes["empty"] == 1 and set(ids["empty"]) <= {1, 2}
    assert asset_map == {spec.name: spec.name for spec in specs}


@pytest.mark.parametrize("batch_counts", [True, False])
def test_preprocessing_fn_counts_vocabulary_tokens_per_batch_unless_configured_off(batch_counts):
    """transform.batch_vocabulary_counts reaches the preprocessing_fn through custom_config: on (default), the
    vocabulary analyzers get each batch's unique tokens (a UniqueWithCounts op per vocabulary, feature and
    multiclass label alike); off, tf.Transform's unweighted analyzer, which takes every token as it is."""
    custom_config = CustomConfig(label=LabelConfig(column="y", task="multiclass"),
                                 features=(feature("city", "vocab"), feature("x", "zscore")), model=ModelConfig(),
                                 training=TrainingConfig(), batch_vocabulary_counts=batch_counts).to_json()
    graph = tf.Graph()
    with graph.as_default():
        inputs = {name: tf.compat.v1.sparse_placeholder(dtype, shape=[None, None], name=name)
                  for name, dtype in (("city", tf.string), ("x", tf.float32), ("y", tf.string))}
        preprocessing_fn(inputs, custom_config)
    uniques = [op for op in graph.get_operations() if op.type == "UniqueWithCounts"]
    assert len(uniques) == (2 if batch_counts else 0)


def test_numeric_features_scaled_side_by_side_come_out_as_numpy_column_by_column(tmp_path):
    """scale_numeric stacks the numeric features of one treatment and one kind of fill and analyzes them
    elementwise: each column still gets its own statistics over its own present values (missing in other
    rows than its neighbours', on other scales), a column with no value at all gets the documented fill, and
    numeric fills are filled in before scaling, column by column."""
    a = [1.0, None, 3.0, 4.0, 10.0, 2.0]
    b = [1500.0, 900.0, 1200.0, None, None, 2400.0]
    empty = [None] * 6
    c = [-3.0, -1.0, None, -2.0, -8.0, -0.5]
    columns = {"za": a, "zb": b, "zn": empty, "ma": a, "mb": b, "mn": empty, "pa": a, "pn": empty,
               "fa": a, "fb": b, "ga": c, "y": [1, 0, 1, 1, 0, 0]}
    rows = [{name: ([] if values[i] is None else [values[i]]) for name, values in columns.items()} for i in range(6)]
    spec = {name: tf.io.VarLenFeature(tf.int64 if name == "y" else tf.float32) for name in columns}
    config = {"label": {"column": "y", "task": "binary"}, "features": [
        feature("za", "zscore"), feature("zb", "zscore"), feature("zn", "zscore"),
        feature("ma", "minmax"), feature("mb", "minmax"), feature("mn", "minmax"),
        feature("pa", "passthrough"), feature("pn", "passthrough"),
        feature("fa", "zscore", fill=-5), feature("fb", "zscore", fill=0), feature("ga", "minmax", fill=0)]}
    out = analyze_and_transform(rows, spec, config, tmp_path)

    def present(values):
        return np.array([v for v in values if v is not None])

    def filled(values, fill):
        return np.array([fill if v is None else v for v in values])

    for name, values in (("za", a), ("zb", b)):
        x = present(values)
        np.testing.assert_allclose(out[f"{name}_xf"], [0.0 if v is None else (v - x.mean()) / x.std() for v in values],
                                   rtol=1e-5, atol=1e-6, err_msg=name)
    for name, values in (("ma", a), ("mb", b)):
        x = present(values)
        np.testing.assert_allclose(out[f"{name}_xf"], (filled(values, x.mean()) - x.min()) / (x.max() - x.min()),
                                   atol=1e-6, err_msg=name)
    np.testing.assert_allclose(out["pa_xf"], filled(a, present(a).mean()), rtol=1e-6)
    for name, fill in (("fa", -5.0), ("fb", 0.0)):
        x = filled(dict(fa=a, fb=b)[name], fill)
        np.testing.assert_allclose(out[f"{name}_xf"], (x - x.mean()) / x.std(), rtol=1e-5, atol=1e-6, err_msg=name)
    x = filled(c, 0.0)
    np.testing.assert_allclose(out["ga_xf"], (x - x.min()) / (x.max() - x.min()), atol=1e-6)
    # No value in the training split: z-score 0.0, min-max the sigmoid of a mean of 0, passthrough 0.
    np.testing.assert_allclose(out["zn_xf"], 0.0)
    np.testing.assert_allclose(out["mn_xf"], 0.5)
    np.testing.assert_allclose(out["pn_xf"], 0.0)


def _analyzer_outputs(features):
    """How many tensors tf.Transform's analyzers bind in the preprocessing_fn's graph for these features; and
    the transformed features' dtypes and static shapes."""
    from tensorflow_transform import analyzer_nodes

    custom_config = CustomConfig(label=LabelConfig(column="y", task="binary"), features=tuple(features),
                                 model=ModelConfig(), training=TrainingConfig()).to_json()
    graph = tf.Graph()
    with graph.as_default():
        inputs = {name: tf.compat.v1.sparse_placeholder(tf.float32, shape=[None, None], name=name)
                  for name in [f.name for f in features] + ["y"]}
        outputs = preprocessing_fn(inputs, custom_config)
    return (len(graph.get_collection(analyzer_nodes.TENSOR_REPLACEMENTS)),
            {name: (tensor.dtype, tensor.shape.as_list()) for name, tensor in outputs.items()})


@pytest.mark.parametrize("treatment", ["zscore", "minmax", "passthrough"])
def test_numeric_analyzers_do_not_grow_with_the_features_of_a_treatment(treatment):
    """One feature or five of a treatment: the same analyzers (elementwise over the group). Before, each
    feature had its own: a z-score feature's mean and variance, a min-max feature's four analyzers."""
    (one, _), (five, outputs) = (_analyzer_outputs([feature(name, treatment) for name in names])
                                 for names in ("a", "abcde"))
    assert one > 0 and five == one
    # Each comes out alone: float32, one value per row.
    assert outputs == {**{f"{name}_xf": (tf.float32, [None]) for name in "abcde"}, "y_xf": (tf.int64, [None])}


def test_zscore_constants_are_as_close_as_float64_numpy_on_a_large_offset_column(tmp_path):
    """Elementwise, tf.Transform sums each batch column by column in order, which in float32 left the taxi
    table's standard deviations up to 2e-4 off (150k rows); the group's means and variances are analyzed in
    float64. Here 60,000 rows in one batch, as the pipeline's batches are."""
    rng = np.random.default_rng(7)
    values = (10_000.0 + rng.gamma(1.5, 3.0, size=60_000)).astype(np.float32)
    rows = [{"x": [float(v)], "w": [float(v) / 2], "y": [i % 2]} for i, v in enumerate(values)]
    spec = {"x": tf.io.VarLenFeature(tf.float32), "w": tf.io.VarLenFeature(tf.float32),
            "y": tf.io.VarLenFeature(tf.int64)}
    config = {"label": {"column": "y", "task": "binary"}, "features": [feature("x", "zscore"), feature("w", "zscore")]}
    out = analyze_and_transform(rows, spec, config, tmp_path, batch_size=len(rows))  # one batch, as in a pipeline
    x = values.astype(np.float64)
    # z = (x - mean) / std: a least-squares line through every (x, z) gives back the graph's mean and std.
    slope, intercept = np.polyfit(x, out["x_xf"].astype(np.float64), 1)
    std, mean = 1 / slope, -intercept / slope
    # Measured: float64 ~5e-14 and ~2e-10; float32 ~3e-8 and ~2e-6.
    assert abs(mean / x.mean() - 1) < 1e-9
    assert abs(std / x.std() - 1) < 1e-7
