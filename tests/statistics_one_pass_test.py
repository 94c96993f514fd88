"""validation.one_pass_statistics (components/statistics_gen/one_pass.py): a split's statistics in one Beam
combine of TFDV's generators, TFDV's exact top-k and uniques among them as a combiner. The same
DatasetFeatureStatisticsList as TFDV's GenerateStatistics (one_pass.same_statistics: every field, floats to
1e-12 relative, since TFDV's own runs differ in the last bits with the order its batches are merged in):
strings with tied counts, a categorical int feature (from a schema), numbers with missing cells, example
weights, TFDV's batching, an empty split. Options it cannot compute in one pass are refused, and the executor runs TFDV's for them
(tests/payload_test.py runs both executors on the taxi rows)."""
import os

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pytest
import tensorflow_data_validation as tfdv
from google.protobuf import text_format
from tensorflow_metadata.proto.v0 import schema_pb2, statistics_pb2
from tfx_bsl.public.proto import slicing_spec_pb2

from components.statistics_gen import one_pass

BEAM_ARGS = ["--direct_running_mode=in_memory"]
SCHEMA = text_format.Parse("""
feature { name: "company" type: BYTES }
feature { name: "area" type: INT int_domain { is_categorical: true } }
feature { name: "fare" type: FLOAT }
feature { name: "weight" type: FLOAT }
""", schema_pb2.Schema())


def _batches(rows=3000, batch_rows=250, seed=7):
    """RecordBatches of list columns as tfx-bsl reads them: `company` strings (Zipf-like counts with ties,
    empty lists and missing cells), `area` ints, `fare` floats with missing cells, integer `weight`s."""
    rng = np.random.default_rng(seed)
    names = [f"c{i:02d}".encode() for i in range(40)]
    counts = rng.zipf(1.6, rows) % len(names)
    batches = []
    for start in range(0, rows, batch_rows):
        n = min(batch_rows, rows - start)
        company = [None if i % 17 == 0 else [] if i % 29 == 0 else [names[counts[start + i]]] for i in range(n)]
        area = [[int(v) for v in rng.integers(0, 12, size=i % 3)] for i in range(n)]
        fare = [None if i % 11 == 0 else [float(np.round(rng.gamma(2.0, 7.0), 2))] for i in range(n)]
        weight = [[float(rng.integers(1, 4))] for _ in range(n)]
        batches.append(pa.RecordBatch.from_arrays(
            [pa.array(company, pa.large_list(pa.large_binary())), pa.array(area, pa.large_list(pa.int64())),
             pa.array(fare, pa.large_list(pa.float32())), pa.array(weight, pa.large_list(pa.float32()))],
            ["company", "area", "fare", "weight"]))
    return batches


def _statistics(batches, options, path, ours: bool):
    """The DatasetFeatureStatisticsList written for the batches: one_pass.SplitsStatistics and
    WriteSplitsStatistics on them as one split (keyed, with the split's marker), or TFDV's GenerateStatistics
    and WriteStatisticsToBinaryFile (as TFX's StatisticsGen runs them)."""
    with beam.Pipeline(argv=BEAM_ARGS) as p:
        record_batches = p | beam.Create(batches, reshuffle=False)
        if ours:
            pairs = p | "Pairs" >> beam.Create([("train", None)] + [("train", b) for b in batches], reshuffle=False)
            _ = pairs | one_pass.SplitsStatistics(options) | one_pass.WriteSplitsStatistics({"train": path})
        else:
            _ = record_batches | tfdv.GenerateStatistics(options) | tfdv.WriteStatisticsToBinaryFile(path)
    with open(path, "rb") as f:
        return statistics_pb2.DatasetFeatureStatisticsList.FromString(f.read())


def _compare(batches, options, tmp_path):
    ours_proto = _statistics(batches, options, str(tmp_path / "ours.pb"), ours=True)
    tfdv_proto = _statistics(batches, tfdv.StatsOptions.from_json(options.to_json()), str(tmp_path / "tfdv.pb"),
                             ours=False)
    assert one_pass.same_statistics(ours_proto, tfdv_proto)
    return ours_proto


def _features(statistics):
    return {f.path.step[0]: f for f in statistics.datasets[0].features}


@pytest.mark.parametrize("desired_batch_size", [None, 100])
def test_the_same_statistics_as_tfdvs_generate_statistics(tmp_path, desired_batch_size):
    """No schema: top-k and uniques for the strings only; with desired_batch_size 100 TFDV's combine
    concatenates and splits batches differently (the 250-row batches are processed as they come)."""
    statistics = _compare(_batches(), tfdv.StatsOptions(desired_batch_size=desired_batch_size), tmp_path)
    features = _features(statistics)
    company = features["company"].string_stats
    assert company.unique == 40 and len(company.top_values) == 20  # StatsOptions.num_top_values
    assert len(company.rank_histogram.buckets) == 40
    assert not features["area"].HasField("string_stats")  # no schema: area is a plain int
    assert statistics.datasets[0].num_examples == 3000


def test_the_same_statistics_with_a_schema_and_example_weights(tmp_path):
    """With the schema, `area` is categorical (top-k and uniques of ints); with a weight feature every
    feature also gets weighted statistics, and the top values weighted ones."""
    options = tfdv.StatsOptions(schema=SCHEMA, weight_feature="weight", num_top_values=5,
                                num_rank_histogram_buckets=20)
    statistics = _compare(_batches(), options, tmp_path)
    features = _features(statistics)
    assert features["area"].string_stats.unique == 12
    assert len(features["area"].string_stats.top_values) == 5
    company = features["company"].string_stats
    assert len(company.weighted_string_stats.top_values) == 5
    assert len(company.rank_histogram.buckets) == 20


def test_ties_at_the_cut_keep_tfdvs_values(tmp_path):
    """Values with the same count where top-k cuts: TFDV keeps the larger values (its Top over (count,
    value) keeps max(num_top_values, num_rank_histogram_buckets) of them, before its proto sorts them)."""
    batch = pa.RecordBatch.from_arrays(
        [pa.array([[b"b"], [b"a"], [b"c"], [b"a"], [b"c"], [b"b"], [b"d"]], pa.large_list(pa.large_binary()))],
        ["s"])
    statistics = _compare([batch, batch], tfdv.StatsOptions(num_top_values=2, num_rank_histogram_buckets=2),
                          tmp_path)
    string_stats = _features(statistics)["s"].string_stats
    assert [(v.value, v.frequency) for v in string_stats.top_values] == [("c", 4), ("b", 4)]
    assert [b.label for b in string_stats.rank_histogram.buckets] == ["c", "b"]
    assert string_stats.unique == 4


def test_an_empty_split_gets_tfdvs_placeholder(tmp_path):
    statistics = _compare([], tfdv.StatsOptions(), tmp_path)
    assert statistics == statistics_pb2.DatasetFeatureStatisticsList(
        datasets=[statistics_pb2.DatasetFeatureStatistics()])


def test_sampling_and_the_allowlist_apply_as_in_tfdv(tmp_path):
    """sample_rate 1.0 keeps every batch (TFDV samples whole batches at random); the allowlist keeps only
    its features."""
    options = tfdv.StatsOptions(sample_rate=1.0, feature_allowlist=["fare", "company"])
    statistics = _compare(_batches(rows=600), options, tmp_path)
    assert sorted(_features(statistics)) == ["company", "fare"]


def test_splits_in_one_combine_each_get_tfdvs_statistics_at_their_own_sample_rate(tmp_path):
    """Two splits keyed in one SplitsStatistics: each split's statistics as GenerateStatistics computes them
    alone, the split's sample rate applied to it only (0.0 drops every batch of eval: TFDV's placeholder)."""
    train, evaluation = _batches(rows=900, seed=1), _batches(rows=600, seed=2)
    paths = {"train": str(tmp_path / "train.pb"), "eval": str(tmp_path / "eval.pb")}
    options = tfdv.StatsOptions(schema=SCHEMA)
    with beam.Pipeline(argv=BEAM_ARGS) as p:
        pairs = p | beam.Create([("train", None), ("eval", None)] + [("train", b) for b in train]
                                + [("eval", b) for b in evaluation], reshuffle=False)
        _ = (pairs | one_pass.SplitsStatistics(options, {"train": None, "eval": 0.0})
             | one_pass.WriteSplitsStatistics(paths))
    with open(paths["train"], "rb") as f:
        ours_train = statistics_pb2.DatasetFeatureStatisticsList.FromString(f.read())
    tfdv_train = _statistics(train, tfdv.StatsOptions(schema=SCHEMA), str(tmp_path / "tfdv_train.pb"), ours=False)
    assert one_pass.same_statistics(ours_train, tfdv_train)
    assert ours_train.datasets[0].num_examples == 900
    with open(paths["eval"], "rb") as f:
        assert statistics_pb2.DatasetFeatureStatisticsList.FromString(f.read()) == (
            statistics_pb2.DatasetFeatureStatisticsList(datasets=[statistics_pb2.DatasetFeatureStatistics()]))


def test_a_split_in_a_combine_of_its_own_gets_tfdvs_statistics_and_placeholder(tmp_path):
    """SplitStatistics (a split read by a source of its own: tf.Examples through TFX's TFXIO): its batches
    combined as they come, without a Flatten; TFDV's statistics, and TFDV's placeholder for no batch."""
    train = _batches(rows=900, seed=3)
    paths = {"train": str(tmp_path / "train.pb"), "eval": str(tmp_path / "eval.pb")}
    options = tfdv.StatsOptions(schema=SCHEMA)
    with beam.Pipeline(argv=BEAM_ARGS) as p:
        ours = p | "Train" >> beam.Create(train, reshuffle=False) | "TrainStatistics" >> one_pass.SplitStatistics(
            options, "train")
        empty = (p | "Eval" >> beam.Create([], reshuffle=False).with_output_types(pa.RecordBatch)
                 | "EvalStatistics" >> one_pass.SplitStatistics(options, "eval", sample_rate=1.0))
        _ = (ours, empty) | beam.Flatten() | one_pass.WriteSplitsStatistics(paths)
    with open(paths["train"], "rb") as f:
        ours_train = statistics_pb2.DatasetFeatureStatisticsList.FromString(f.read())
    tfdv_train = _statistics(train, tfdv.StatsOptions(schema=SCHEMA), str(tmp_path / "tfdv.pb"), ours=False)
    assert one_pass.same_statistics(ours_train, tfdv_train) and ours_train.datasets[0].num_examples == 900
    with open(paths["eval"], "rb") as f:
        assert statistics_pb2.DatasetFeatureStatisticsList.FromString(f.read()) == (
            statistics_pb2.DatasetFeatureStatisticsList(datasets=[statistics_pb2.DatasetFeatureStatistics()]))


@pytest.mark.parametrize("options, sharded", [
    (dict(slicing_config=text_format.Parse('slicing_specs { feature_keys: "company" }',
                                           slicing_spec_pb2.SlicingConfig())), False),
    (dict(experimental_num_feature_partitions=2), False),
    (dict(experimental_result_partitions=2), False),
    (dict(schema=SCHEMA, label_feature="area"), False),  # lift statistics: a Beam-transform generator
    (dict(), True),
])
def test_options_that_need_tfdvs_stages_are_refused(options, sharded):
    stats_options = tfdv.StatsOptions(**options)
    assert not one_pass.supported(stats_options, write_sharded_output=sharded)
    if not sharded:
        with pytest.raises(ValueError, match="need TFDV's GenerateStatistics"):
            one_pass.SplitsStatistics(stats_options)
        with pytest.raises(ValueError, match="need TFDV's GenerateStatistics"):
            one_pass.SplitStatistics(stats_options, "train")


def test_the_default_options_and_a_schema_are_supported():
    assert one_pass.supported(tfdv.StatsOptions())
    assert one_pass.supported(tfdv.StatsOptions(schema=SCHEMA, weight_feature="weight"))


def test_the_file_is_replaced_whole_and_no_temporary_file_stays(tmp_path):
    path = tmp_path / "Split-train" / "FeatureStats.pb"
    first = statistics_pb2.DatasetFeatureStatisticsList(datasets=[statistics_pb2.DatasetFeatureStatistics(
        num_examples=1)])
    second = statistics_pb2.DatasetFeatureStatisticsList(datasets=[statistics_pb2.DatasetFeatureStatistics(
        num_examples=2)])
    one_pass.write_statistics(first, str(path))
    one_pass.write_statistics(second, str(path))
    assert statistics_pb2.DatasetFeatureStatisticsList.FromString(path.read_bytes()) == second
    assert os.listdir(path.parent) == ["FeatureStats.pb"]


def test_same_statistics_allows_only_the_last_bits_of_floats():
    """The comparison the tests and bench/statistics use: floats to 1e-12 relative, everything else exact."""
    def statistics(mean=1.0, count=3, name="a", value="x"):
        result = statistics_pb2.DatasetFeatureStatisticsList()
        dataset = result.datasets.add(num_examples=count)
        number, text = dataset.features.add(), dataset.features.add()
        number.path.step.append(name)
        number.num_stats.mean = mean
        text.path.step.append("t")
        text.string_stats.top_values.add(value=value, frequency=1.0)
        return result

    assert one_pass.same_statistics(statistics(), statistics(mean=1.0 + 2e-16))
    assert not one_pass.same_statistics(statistics(), statistics(mean=1.0 + 1e-9))
    assert not one_pass.same_statistics(statistics(), statistics(count=4))
    assert not one_pass.same_statistics(statistics(), statistics(name="b"))
    assert not one_pass.same_statistics(statistics(), statistics(value="y"))
    two = statistics()
    two.datasets.add()
    assert not one_pass.same_statistics(statistics(), two)
