"""data.payload: parquet. The columnar ExampleGen writes the taxi rows as a Parquet payload holding what its
tf.Example payload holds; StatisticsGen (tfxp's executor: TFX's with each split in one Beam combine and a
Parquet read without tfx-bsl's per-row telemetry), TFX's Transform, tfxp's Trainer input, the columnar Evaluator and the pusher's readers
get the same data from either (the same rows in both: each split is its own input
file here, so no hashing is involved); hash splits of the Parquet payload are deterministic; iris runs end
to end on it."""
import glob
import json
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf
from tfx.components.util import examples_utils
from tfx.dsl.components.base.base_beam_executor import BaseBeamExecutor
from tfx.proto import example_gen_pb2
from tfx.types import standard_artifacts

from components.example_gen import cell_encoding, chunk_writes, csv_blocks
from components.example_gen import executor as example_gen_executor
from components.statistics_gen import executor as statistics_gen_executor
from config import PARQUET_PAYLOAD, TF_EXAMPLE_PAYLOAD, load_config, resolve_data_path
from conftest import REPO, assert_same_statistics, run_example_gen
from preprocessing import payload

TAXI = resolve_data_path("package://tfx/examples/chicago_taxi_pipeline/data/big_tipper_label", REPO)
TAXI_SCHEMA = os.path.join(REPO, "configs", "taxi.schema.pbtxt")
BEAM_ARGS = ["--direct_running_mode=in_memory"]
FORMATS = {TF_EXAMPLE_PAYLOAD: example_gen_pb2.FORMAT_TF_EXAMPLE, PARQUET_PAYLOAD: example_gen_pb2.FORMAT_PARQUET}


@pytest.fixture(scope="module")
def payloads(tmp_path_factory):
    """{payload: Examples artifact} of the taxi table's rows, every third row in eval (the input's splits)."""
    root = tmp_path_factory.mktemp("payloads")
    [path] = glob.glob(os.path.join(TAXI, "*.csv"))
    header, *rows = open(path).read().splitlines()
    for split, part in (("train", [r for i, r in enumerate(rows) if i % 3]), ("eval", rows[::3])):
        os.makedirs(root / "data" / split)
        (root / "data" / split / "part.csv").write_text("\n".join([header] + part) + "\n")
    return {name: run_example_gen(example_gen_executor.Executor, root / "data", root / name, payload_format,
                                  splits={"train": "train/*", "eval": "eval/*"})
            for name, payload_format in FORMATS.items()}


def split_files(examples, split):
    return sorted(glob.glob(os.path.join(examples.uri, f"Split-{split}", "*")))


def rows(files, columns=None):
    """Every row of the files as a sorted list of tuples of (column, values) pairs."""
    return batch_rows(payload.record_batches(files, columns=columns))


def batch_rows(batches):
    """Every row of RecordBatches as a sorted list of tuples of (column, values) pairs."""
    out = []
    for batch in batches:
        names = sorted(batch.schema.names)
        columns_of = {name: batch.column(batch.schema.get_field_index(name)).to_pylist() for name in names}
        out += [tuple((name, tuple(columns_of[name][i] or ())) for name in names) for i in range(batch.num_rows)]
    return sorted(out)


def test_the_parquet_payload_holds_the_tf_examples_rows(payloads):
    parquet = payloads[PARQUET_PAYLOAD]
    assert examples_utils.get_payload_format(parquet) == example_gen_pb2.FORMAT_PARQUET
    assert parquet.get_string_custom_property("file_format") == "FILE_FORMAT_PARQUET"
    import pyarrow.parquet as pq

    for split in ("train", "eval"):
        files = {name: split_files(examples, split) for name, examples in payloads.items()}
        assert all(path.endswith(".parquet") for path in files[PARQUET_PAYLOAD])
        assert payload.payload_of(files[TF_EXAMPLE_PAYLOAD]) == TF_EXAMPLE_PAYLOAD
        expected = rows(files[TF_EXAMPLE_PAYLOAD])
        assert len(expected) > 4000 and rows(files[PARQUET_PAYLOAD]) == expected
        schema = pq.read_schema(files[PARQUET_PAYLOAD][0])
        assert schema.names == sorted(schema.names)  # the types tfx-bsl gives the schema's features
        assert str(schema.field("company").type) == "large_list<item: large_binary>"
        assert str(schema.field("fare").type) == "large_list<item: float>"
        assert str(schema.field("trip_start_hour").type) == "large_list<item: int64>"


def test_hash_splits_are_the_same_every_run_and_keep_every_row(payloads, tmp_path):
    runs = [run_example_gen(example_gen_executor.Executor, TAXI, tmp_path / str(i), example_gen_pb2.FORMAT_PARQUET)
            for i in range(2)]
    splits = [{split: rows(split_files(run, split)) for split in ("train", "eval")} for run in runs]
    assert splits[0] == splits[1]
    everything = sorted(rows(split_files(payloads[TF_EXAMPLE_PAYLOAD], "train"))
                        + rows(split_files(payloads[TF_EXAMPLE_PAYLOAD], "eval")))
    assert sorted(splits[0]["train"] + splits[0]["eval"]) == everything
    assert 0.30 < len(splits[0]["eval"]) / len(everything) < 0.37  # 1 of 3 hash buckets
    # The rows of a file are shuffled (the input is in no particular order; the Trainer reads batches).
    first = next(payload.record_batches(split_files(runs[0], "train"), limit=500, columns=["trip_start_timestamp"]))
    timestamps = [v[0] for v in first.column(0).to_pylist()]
    assert timestamps != sorted(timestamps)


def test_row_groups_made_and_written_on_the_writers_thread_keep_every_row(payloads, tmp_path, monkeypatch):
    """Each row group of scalar cells is made payload lists and written on the output file's own thread while
    the next chunks are unpacked: with chunks of 300 rows and row groups of at least 500 (8 to 17 per file)
    the files hold every row, typed as with one row group per file."""
    import pyarrow.parquet as pq

    monkeypatch.setattr(example_gen_executor, "CHUNK_ROWS", 300)
    monkeypatch.setattr(chunk_writes._ParquetFileWriter, "ROW_GROUP_ROWS", 500)
    many = run_example_gen(example_gen_executor.Executor, TAXI, tmp_path / "many", example_gen_pb2.FORMAT_PARQUET)
    everything = sorted(rows(split_files(payloads[TF_EXAMPLE_PAYLOAD], "train"))
                        + rows(split_files(payloads[TF_EXAMPLE_PAYLOAD], "eval")))
    files = {split: split_files(many, split) for split in ("train", "eval")}
    assert sorted(rows(files["train"]) + rows(files["eval"])) == everything
    groups = {path: pq.ParquetFile(path).num_row_groups for path in files["train"] + files["eval"]}
    assert all(count > 5 for count in groups.values()), groups
    assert pq.read_schema(files["train"][0]) == pq.read_schema(split_files(payloads[PARQUET_PAYLOAD], "train")[0])


def test_an_output_file_with_no_rows_is_a_parquet_file_with_the_columns(tmp_path):
    import pyarrow.parquet as pq

    schema = cell_encoding.payload_schema({"b": csv_blocks.STRING, "a": csv_blocks.INT})
    writer = chunk_writes._ParquetFileWriter(open(tmp_path / "empty.parquet", "wb"), lambda: schema)
    writer.close()
    table = pq.read_table(tmp_path / "empty.parquet")
    assert table.num_rows == 0 and table.schema.names == ["a", "b"]


def _statistics(examples, out, executor=statistics_gen_executor.Executor, split="eval", properties=None):
    """The statistics of `split` that a StatisticsGen executor (default: tfxp's, which the pipeline runs)
    writes with these exec properties, and its output artifact."""
    from tensorflow_metadata.proto.v0 import statistics_pb2

    statistics = standard_artifacts.ExampleStatistics()
    statistics.uri = str(out)
    executor(BaseBeamExecutor.Context(beam_pipeline_args=BEAM_ARGS)).Do(
        {"examples": [examples]}, {"statistics": [statistics]}, dict(properties or {}))
    result = statistics_pb2.DatasetFeatureStatisticsList()
    with open(os.path.join(out, f"Split-{split}", "FeatureStats.pb"), "rb") as f:
        result.ParseFromString(f.read())
    return result, statistics


def test_statistics_gen_reads_the_parquet_payload(payloads, tmp_path):
    """The same statistics; pickup_census_tract, empty in every row, is typed INT by the Parquet payload (as
    the taxi schema types it) and has no type in tf.Examples (TFDV says STRING)."""
    (tf_example, _), (parquet, _) = [_statistics(payloads[name], tmp_path / name) for name in FORMATS]
    assert_same_statistics(tf_example, parquet, untyped=("pickup_census_tract",))
    types = {f.path.step[0]: f.type for f in parquet.datasets[0].features}
    assert types["pickup_census_tract"] == types["trip_start_hour"]  # INT


@pytest.mark.parametrize("split", ["train", "eval"])
def test_tfxps_statistics_gen_writes_tfxs_statistics_and_artifact(payloads, tmp_path, split):
    """tfxp's StatisticsGen executor (each split in one Beam combine, its Parquet read without tfx-bsl's
    telemetry) against TFX's, on the Parquet payload: the same statistics of each split, proto for proto, the
    same output artifact properties."""
    from tfx.components.statistics_gen.executor import Executor as TfxExecutor

    ours, ours_artifact = _statistics(payloads[PARQUET_PAYLOAD], tmp_path / "ours", split=split)
    tfx, tfx_artifact = _statistics(payloads[PARQUET_PAYLOAD], tmp_path / "tfx", TfxExecutor, split)
    assert ours == tfx
    assert ours_artifact.split_names == tfx_artifact.split_names == '["train", "eval"]'
    assert (ours_artifact.get_json_value_custom_property("sample_rate_by_split")
            == tfx_artifact.get_json_value_custom_property("sample_rate_by_split"))
    assert ours_artifact.span == tfx_artifact.span


def test_tfxps_statistics_gen_honours_tfxs_exec_properties(payloads, tmp_path):
    """The exec properties TFX's StatisticsGen takes, on both executors: exclude_splits leaves eval out (no
    directory, not in split_names), sample_rate_by_split is recorded as TFX records it, and stats_options_json
    reaches TFDV (a feature allowlist: only those features)."""
    import json

    import tensorflow_data_validation as tfdv
    from tfx.components.statistics_gen.executor import Executor as TfxExecutor

    properties = {"exclude_splits": json.dumps(["eval"]), "sample_rate_by_split": json.dumps({"train": 1.0}),
                  "stats_options_json": tfdv.StatsOptions(feature_allowlist=["fare", "company"]).to_json()}
    artifacts = {}
    for name, executor in (("ours", statistics_gen_executor.Executor), ("tfx", TfxExecutor)):
        result, statistics = _statistics(payloads[PARQUET_PAYLOAD], tmp_path / name, executor, "train", properties)
        assert os.listdir(statistics.uri) == ["Split-train"], name
        assert sorted(f.path.step[0] for f in result.datasets[0].features) == ["company", "fare"], name
        artifacts[name] = statistics
    assert artifacts["ours"].split_names == artifacts["tfx"].split_names == '["train"]'
    assert (artifacts["ours"].get_json_value_custom_property("sample_rate_by_split")
            == artifacts["tfx"].get_json_value_custom_property("sample_rate_by_split"))


def test_statistics_options_that_need_tfdvs_stages_run_tfdvs(payloads, tmp_path):
    """Slicing (stats_options_json's slicing_config) cannot be computed in one combine: tfxp's executor runs
    TFDV's GenerateStatistics for it, and writes what TFX's writes (all examples, then one dataset per
    payment type)."""
    import tensorflow_data_validation as tfdv
    from google.protobuf import text_format
    from tensorflow_metadata.proto.v0 import statistics_pb2
    from tfx.components.statistics_gen.executor import Executor as TfxExecutor
    from tfx_bsl.public.proto import slicing_spec_pb2

    slicing = text_format.Parse('slicing_specs { feature_keys: "payment_type" }', slicing_spec_pb2.SlicingConfig())
    properties = {"stats_options_json": tfdv.StatsOptions(slicing_config=slicing).to_json()}
    results = {name: _statistics(payloads[PARQUET_PAYLOAD], tmp_path / name, executor, "eval", properties)[0]
               for name, executor in (("ours", statistics_gen_executor.Executor), ("tfx", TfxExecutor))}
    names = sorted(d.name for d in results["ours"].datasets)
    assert "All Examples" in names and "payment_type_Cash" in names
    assert names == sorted(d.name for d in results["tfx"].datasets)
    for ours in results["ours"].datasets:
        [tfx] = [d for d in results["tfx"].datasets if d.name == ours.name]
        assert_same_statistics(statistics_pb2.DatasetFeatureStatisticsList(datasets=[ours]),
                               statistics_pb2.DatasetFeatureStatisticsList(datasets=[tfx]))


def _read_labels(tfxio):
    """The labels of the Beam transforms that a TFXIO's BeamSource applies."""
    import apache_beam as beam

    labels = []

    class Labels(beam.pipeline.PipelineVisitor):
        def visit_transform(self, node):
            labels.append(node.full_label)

        def enter_composite_transform(self, node):
            labels.append(node.full_label)

    pipeline = beam.Pipeline()
    _ = pipeline | "Read" >> tfxio.BeamSource()
    pipeline.visit(Labels())
    return labels


def test_the_parquet_payload_is_read_without_tfx_bsls_per_row_telemetry(payloads):
    """StatisticsGen's TFXIO for a Parquet payload: tfx-bsl's ParquetTFXIO (which profiles a random 10% of the
    batches row by row) becomes components.parquet_read's, with the same files, columns, schema and batches,
    and no ProfileRecordBatches step; a projection of it reads the same way."""
    import apache_beam as beam
    from apache_beam.testing.util import assert_that
    from tfx.components.util import tfxio_utils
    from tfx_bsl.tfxio import parquet_tfxio

    from components import parquet_read

    examples = payloads[PARQUET_PAYLOAD]
    stock = tfxio_utils.get_split_tfxio([examples], "eval", ["test"], schema=_raw_schema())
    ours = statistics_gen_executor.Executor._split_tfxio(examples, "eval", _raw_schema())
    assert type(stock) is parquet_tfxio.ParquetTFXIO and isinstance(ours, parquet_read.ParquetPayloadTFXIO)
    assert any("ProfileRecordBatches" in label for label in _read_labels(stock))
    assert not any("ProfileRecordBatches" in label for label in _read_labels(ours))
    assert ours.ArrowSchema().equals(stock.ArrowSchema())
    assert ours.TensorRepresentations() == stock.TensorRepresentations()
    projected = ours.Project(["fare", "company"])
    assert not any("ProfileRecordBatches" in label for label in _read_labels(projected))
    assert projected.ArrowSchema().names == stock.Project(["fare", "company"]).ArrowSchema().names

    files = split_files(examples, "eval")
    for tfxio, columns in ((stock, None), (ours, None), (projected, ["company", "fare"])):
        def check(batches, expected=rows(files, columns)):
            assert len(batches) > 1 and all(batch.num_rows <= 1000 for batch in batches)
            assert batch_rows(batches) == expected
        with beam.Pipeline() as p:
            assert_that(p | tfxio.BeamSource(batch_size=1000), check)


def test_the_parquet_read_is_typed_and_sized_from_arrow_buffers(payloads):
    """The read's row groups and batches are typed PCollections whose coders Beam sizes them with: an Arrow
    IPC stream (a RecordBatch byte for byte as TFDV's coder writes it), the size taken from the buffers
    rather than by pickling or writing out each sampled element."""
    import apache_beam as beam
    import pyarrow as pa
    import pyarrow.parquet as pq
    from tensorflow_data_validation import types as tfdv_types

    from components import parquet_read

    files = split_files(payloads[PARQUET_PAYLOAD], "eval")
    table = pa.concat_tables([pq.read_table(f) for f in files])
    batch = table.combine_chunks().to_batches()[0]
    assert isinstance(beam.coders.registry.get_coder(pa.RecordBatch), parquet_read.ArrowRecordBatchCoder)
    assert isinstance(beam.coders.registry.get_coder(pa.Table), parquet_read.ArrowTableCoder)
    ours, tfdvs = parquet_read.ArrowRecordBatchCoder(), tfdv_types._ArrowRecordBatchCoder()
    assert ours.encode(batch) == tfdvs.encode(batch) and ours.decode(tfdvs.encode(batch)).equals(batch)
    assert ours.estimate_size(batch) == batch.nbytes > 0
    assert parquet_read.ArrowTableCoder().decode(parquet_read.ArrowTableCoder().encode(table)).equals(table)
    assert parquet_read.ArrowTableCoder().estimate_size(table) == table.nbytes

    pipeline = beam.Pipeline()
    batches = pipeline | parquet_read.ParquetPayloadTFXIO(os.path.join(os.path.dirname(files[0]), "*")).BeamSource()
    row_groups = batches.producer.inputs[0]  # the files' row groups, flattened
    assert (row_groups.element_type, batches.element_type) == (pa.Table, pa.RecordBatch)
    assert [read.element_type for read in row_groups.producer.inputs] == [pa.Table]



def test_every_splits_parquet_files_read_in_one_step_under_their_keys(payloads, tmp_path):
    """parquet_read.ReadKeyedRecordBatches (the one-pass StatisticsGen's read): each key's batches are the ones
    its TFXIO's BeamSource gives, under the key, typed for the Arrow coder; one (key, None) marker per key, so
    a split whose file has no rows is still seen; a pattern that matches no file is an error naming it."""
    import apache_beam as beam
    import pyarrow as pa
    from apache_beam.testing.util import assert_that

    from components import parquet_read

    examples = payloads[PARQUET_PAYLOAD]
    tfxios = {split: statistics_gen_executor.Executor._split_tfxio(examples, split, None)
              for split in ("train", "eval")}
    empty = tmp_path / "empty"
    os.makedirs(empty)
    writer = chunk_writes._ParquetFileWriter(
        open(empty / "data_parquet-00000-of-00001.parquet", "wb"),
        lambda: cell_encoding.payload_schema({"fare": csv_blocks.FLOAT}))
    writer.close()
    tfxios["empty"] = parquet_read.ParquetPayloadTFXIO(str(empty / "*"))
    expected = {split: rows(split_files(examples, split)) for split in ("train", "eval")}

    def check(pairs):
        keys = [key for key, _ in pairs]
        assert sorted(key for key, batch in pairs if batch is None) == ["empty", "eval", "train"]
        assert keys.count("empty") == 1
        for split in ("train", "eval"):
            batches = [batch for key, batch in pairs if key == split and batch is not None]
            assert len(batches) > 1 and all(batch.num_rows <= 1000 for batch in batches)
            assert batch_rows(batches) == expected[split]

    with beam.Pipeline() as p:
        pairs = p | parquet_read.ReadKeyedRecordBatches(tfxios, batch_size=1000)
        assert pairs.element_type == beam.typehints.Tuple[str, beam.typehints.Optional[pa.RecordBatch]]
        assert_that(pairs, check)
    with pytest.raises(IOError, match="No files found based on the file pattern .*nowhere"):
        parquet_read.matched_files([str(tmp_path / "nowhere" / "*")])
    assert parquet_read.matched_files([str(tmp_path / "nowhere" / "*")], validate=False) == []


def _transform_graph(examples, out):
    from tfx.components.transform.executor import Executor

    from pipeline.pipeline import PREPROCESSING_FN

    config = load_config(os.path.join(REPO, "configs", "taxi.yaml"))
    schema = standard_artifacts.Schema()
    schema.uri = str(out / "schema")
    os.makedirs(schema.uri)
    shutil.copy(TAXI_SCHEMA, os.path.join(schema.uri, "schema.pbtxt"))
    graph = standard_artifacts.TransformGraph()
    graph.uri = str(out / "transform_graph")
    Executor(BaseBeamExecutor.Context(beam_pipeline_args=BEAM_ARGS, tmp_dir=str(out / "tmp"), unique_id="1")).Do(
        {"examples": [examples], "schema": [schema]}, {"transform_graph": [graph]},
        {"preprocessing_fn": PREPROCESSING_FN, "custom_config": json.dumps(config.to_custom_config().to_json()),
         "disable_statistics": True, "force_tf_compat_v1": False, "disable_analyzer_cache": True,
         "splits_config": None})
    return graph.uri


def test_stock_transform_reads_the_parquet_payload(payloads, tmp_path):
    """The same vocabularies and scaling: the same transformed values of the same raw examples (to float32
    rounding: a missing value is filled with the mean, a float32 sum over rows read in another order)."""
    import tensorflow_transform as tft

    outputs = {name: tft.TFTransformOutput(_transform_graph(examples, tmp_path / name))
               for name, examples in payloads.items()}
    assets = {name: {os.path.basename(p): open(p).read() for p in glob.glob(
        os.path.join(output.transform_savedmodel_dir, "assets", "*"))} for name, output in outputs.items()}
    assert assets[PARQUET_PAYLOAD] == assets[TF_EXAMPLE_PAYLOAD] and len(assets[PARQUET_PAYLOAD]) >= 3
    records = payload.serialized_examples(split_files(payloads[TF_EXAMPLE_PAYLOAD], "eval"), 500)
    transformed = {}
    for name, output in outputs.items():
        parsed = tf.io.parse_example(tf.constant(records), output.raw_feature_spec())
        transformed[name] = {k: v.numpy() for k, v in output.transform_features_layer()(parsed).items()}
    for key, value in transformed[TF_EXAMPLE_PAYLOAD].items():
        np.testing.assert_allclose(transformed[PARQUET_PAYLOAD][key], value, rtol=1e-5, atol=1e-4, err_msg=key)


def _raw_schema():
    from google.protobuf import text_format
    from tensorflow_metadata.proto.v0 import schema_pb2

    return text_format.Parse(open(TAXI_SCHEMA).read(), schema_pb2.Schema())


def dataset_rows(dataset):
    """Every row of a dataset of raw feature batches, as a sorted list of tuples of (feature, values)."""
    out = []
    for batch in dataset:
        size = int(next(iter(batch.values())).dense_shape[0])
        rows = [[] for _ in range(size)]
        for name in sorted(batch):
            values = [[] for _ in range(size)]
            tensor = batch[name]
            for (row, _), value in zip(tensor.indices.numpy(), tensor.values.numpy()):
                values[row].append(value)
            for row, items in zip(rows, values):
                row.append((name, tuple(items)))
        out += [tuple(row) for row in rows]
    return sorted(out)


def test_the_trainer_input_reads_the_parquet_payload(payloads):
    """payload.parquet_dataset gives the rows, as the same tensors, that tfx-bsl's TFXIO gives the Trainer
    from the tf.Example payload; shuffled, the same rows in an order fixed by the seed."""
    from tfx_bsl.public import tfxio

    schema = _raw_schema()
    files = split_files(payloads[PARQUET_PAYLOAD], "eval")
    parquet = payload.parquet_dataset(files, schema, 512, shuffle_buffer_size=1)
    assert {name: type(t).__name__ for name, t in next(iter(parquet)).items()} == {
        f.name: "SparseTensor" for f in schema.feature}
    stock = tfxio.TFExampleRecord(file_pattern=split_files(payloads[TF_EXAMPLE_PAYLOAD], "eval"),
                                  schema=schema).TensorFlowDataset(
        tfxio.TensorFlowDatasetOptions(batch_size=512, num_epochs=1, shuffle=False))
    expected = dataset_rows(stock)
    assert len(expected) > 4000 and dataset_rows(parquet) == expected

    def order(seed):
        dataset = payload.parquet_dataset(files, schema, 512, shuffle_seed=seed, shuffle_buffer_size=2000)
        return [v for batch in dataset for v in tf.sparse.to_dense(batch["trip_start_timestamp"]).numpy()[:, 0]]

    first = order(7)
    assert first == order(7) and sorted(first) == sorted(order(8)) and first != order(8)


def test_the_columnar_evaluator_reads_the_parquet_payload(taxi_run, payloads, tmp_path):
    """The same metrics, overall and per slice (a text and an integer column), from the two payloads: the
    Parquet one is read as column batches, never a row at a time, and sliced on its columns."""
    import dataclasses

    from tfma_compare import evaluate_both

    config = taxi_run["config"]
    config = dataclasses.replace(config, evaluation=dataclasses.replace(
        config.evaluation, slices=("payment_type", "trip_start_hour")))
    metrics = {name: evaluate_both(config, tmp_path / name, engines=("columnar",),
                                   examples=examples)["columnar"]["sliced_metrics"]
               for name, examples in payloads.items()}
    assert metrics[PARQUET_PAYLOAD][((), "", "example_count", False)] > 4000
    assert (("trip_start_hour", 19),) in {key[0] for key in metrics[PARQUET_PAYLOAD]}
    assert metrics[PARQUET_PAYLOAD].keys() == metrics[TF_EXAMPLE_PAYLOAD].keys()
    for key, value in metrics[TF_EXAMPLE_PAYLOAD].items():
        assert metrics[PARQUET_PAYLOAD][key] == pytest.approx(value, rel=1e-6, nan_ok=True), key


def test_column_batches_are_scored_through_the_json_signature_without_encoding_the_features(
        taxi_run, payloads, monkeypatch):
    """The Evaluator's DoFn on a Parquet column batch: the predictions come from the model's JSON signature
    and only the label column is encoded (for transform_features); the same predictions and labels as
    serving_default and transform_features give on the same rows as tf.Examples. A batch that does not fit
    the JSON signature (a column missing) is encoded and scored by serving_default."""
    import pyarrow as pa

    from components.evaluator import evaluate as evaluator
    from pipeline import nodes
    from pipeline.pipeline import eval_config
    from pipeline.summary import latest_output_uri

    config = taxi_run["config"]
    model = os.path.join(latest_output_uri(config.metadata_path, config.name, nodes.TRAINER, "model"),
                         "Format-Serving")
    spec = eval_config(config)
    batch = next(iter(payload.record_batches(split_files(payloads[PARQUET_PAYLOAD], "eval"), limit=500)))
    encoded = []
    monkeypatch.setattr(evaluator, "encode_examples",
                        lambda b: encoded.append(sorted(b.schema.names)) or payload.encode_examples(b))
    paths = {s.name: model for s in spec.model_specs}
    score = evaluator._ScoreBatches(spec, paths, evaluator.feature_infos(paths), config.label.task)
    score.setup()
    [sums] = list(score.process(batch))
    assert encoded == [[config.label.column]]
    serialized = tf.constant(payload.encode_examples(batch))
    loaded = tf.saved_model.load(model)
    expected = evaluator.batch_sums(config.label.task,
                                    loaded.signatures["transform_features"](examples=serialized)["big_tipper_xf"].numpy(),
                                    loaded.signatures["serving_default"](examples=serialized)["predictions"].numpy())
    [got] = sums[()].values()
    assert (got.count, got.correct) == (expected.count, expected.correct) and got.count == batch.num_rows
    np.testing.assert_allclose(got.histogram, expected.histogram, rtol=1e-6)
    dense = payload.single_value_columns(batch, ["fare", "company"])
    assert dense["fare"].dtype == np.float64 and dense["company"].dtype == object
    assert np.isnan(dense["fare"]).sum() == sum(not v for v in batch.column(batch.schema.get_field_index("fare")).to_pylist())
    doubled = pa.RecordBatch.from_arrays(
        [pa.array([[1.0, 2.0]] + [[1.0]] * (batch.num_rows - 1), pa.large_list(pa.float32())) if n == "fare"
         else batch.column(i) for i, n in enumerate(batch.schema.names)], batch.schema.names)
    assert payload.single_value_columns(doubled, ["fare"]) is None
    # Without the fare column the JSON signature cannot be fed: the rows are encoded for serving_default.
    names = [n for n in batch.schema.names if n != "fare"]
    no_fare = pa.RecordBatch.from_arrays([batch.column(batch.schema.get_field_index(n)) for n in names], names)
    assert payload.single_value_columns(no_fare, ["fare"]) is None
    encoded.clear()
    [sums] = list(score.process(no_fare))
    assert encoded == [[config.label.column], names]
    serialized = tf.constant(payload.encode_examples(no_fare))
    expected = evaluator.batch_sums(config.label.task,
                                    loaded.signatures["transform_features"](examples=serialized)["big_tipper_xf"].numpy(),
                                    loaded.signatures["serving_default"](examples=serialized)["predictions"].numpy())
    [got] = sums[()].values()
    assert (got.count, got.correct) == (expected.count, expected.correct)


def test_the_pushers_readers_and_the_constant_baseline_read_the_parquet_payload(payloads):
    from components.quantizer.gates import read_examples
    from pipeline.constant_baseline import read_labels

    decoded = {}
    for name, examples in payloads.items():
        serialized = read_examples(os.path.join(examples.uri, "Split-eval", "*"), 10**6)
        decoded[name] = sorted(tf.train.Example.FromString(r).SerializeToString(deterministic=True)
                               for r in serialized)
        labels = [values[0] for batch in payload.record_batches(split_files(examples, "eval"), columns=["big_tipper"])
                  for values in batch.column(0).to_pylist() if values]
        assert sorted(read_labels(os.path.join(examples.uri, "Split-eval"), "big_tipper")) == sorted(labels)
    # tf.Example bytes differ in feature order only: parsed into the same values.
    assert len(decoded[PARQUET_PAYLOAD]) == len(decoded[TF_EXAMPLE_PAYLOAD]) > 4000
    assert rows_of_examples(decoded[PARQUET_PAYLOAD]) == rows_of_examples(decoded[TF_EXAMPLE_PAYLOAD])


def rows_of_examples(records):
    out = []
    for record in records:
        example = tf.train.Example.FromString(record)
        row = []
        for name in sorted(example.features.feature):
            feature = example.features.feature[name]
            kind = feature.WhichOneof("kind")
            row.append((name, tuple(getattr(feature, kind).value) if kind else ()))
        out.append(tuple(row))
    return sorted(out)


def test_iris_runs_end_to_end_on_a_parquet_payload(tmp_path):
    from pipeline.local_runner import run_local

    shutil.copytree(os.path.join(REPO, "data", "iris"), tmp_path / "data" / "iris")
    (tmp_path / "configs").mkdir()
    text = (open(os.path.join(REPO, "configs", "iris.yaml")).read().replace("../runs/iris/", "../out/")
            .replace("  split: {train: 3, eval: 1}", "  split: {train: 3, eval: 1}\n  payload: parquet"))
    (tmp_path / "configs" / "iris.yaml").write_text(text)
    config = load_config(str(tmp_path / "configs" / "iris.yaml"))
    assert config.data.payload == PARQUET_PAYLOAD
    summary = run_local(config, emit_line=lambda line: None)
    assert summary.pushed, summary.push_blocked_reasons
    examples = glob.glob(os.path.join(config.pipeline_root, "CsvExampleGen", "examples", "*", "Split-*", "*"))
    assert examples and all(path.endswith(".parquet") for path in examples)
    accuracy = "sparse_categorical_accuracy"
    assert summary.metrics[accuracy] > summary.constant_metrics[accuracy] and summary.warnings == []


def test_parquet_files_on_a_remote_filesystem_are_read_through_tensorflow(payloads):
    """gs:// and other non-local paths go through tf.io.gfile (here TensorFlow's in-memory ram:// files)."""
    [local] = split_files(payloads[PARQUET_PAYLOAD], "eval")
    remote = "ram://payload_test/eval/data.parquet"
    tf.io.gfile.makedirs(os.path.dirname(remote))
    tf.io.gfile.copy(local, remote, overwrite=True)
    assert rows([remote]) == rows([local])
    assert rows_of_examples(payload.serialized_examples([remote], 50)) == rows_of_examples(
        payload.serialized_examples([local], 50))


def test_parquet_input_files_of_different_column_types_give_one_payload_schema(tmp_path):
    """A column that is int64 in one Parquet file and double in another is float in every payload file."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    (tmp_path / "data").mkdir()
    pq.write_table(pa.table({"x": pa.array([1, 2, 3], pa.int64()), "y": ["a", "b", None]}), tmp_path / "data" / "a.pq")
    pq.write_table(pa.table({"x": pa.array([0.5, None]), "y": ["c", "d"]}), tmp_path / "data" / "b.pq")
    examples = run_example_gen(example_gen_executor.ParquetExecutor, tmp_path / "data", tmp_path / "out",
                               example_gen_pb2.FORMAT_PARQUET)
    files = split_files(examples, "train") + split_files(examples, "eval")
    assert {str(pq.read_schema(path).field("x").type) for path in files} == {"large_list<item: float>"}
    values = sorted(row for batch in payload.record_batches(files) for row in zip(*[
        batch.column(i).to_pylist() for i in range(batch.num_columns)]))
    assert values == sorted([([1.0], [b"a"]), ([2.0], [b"b"]), ([3.0], []), ([0.5], [b"c"]), ([], [b"d"])])
