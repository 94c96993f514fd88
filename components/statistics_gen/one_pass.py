"""Every split's statistics in one Beam combine: TFDV's statistics generators, TFDV's exact top-k and uniques
among them as a combiner, keyed by split, and each file written in one step.

TFDV's GenerateStatistics (what TFX's StatisticsGen runs per split) costs ~22 Beam stages per split whatever
the data size: its basic statistics in one combine with a hot-key fan-out (two stages), its exact top-k and
uniques as separate per-value combines (CombinePerKey, Top, Count: four more), telemetry (distinct slice keys,
input bytes), a count for the empty-input placeholder, a merge of the per-generator protos, and a sharded
text write with its finalize. On DirectRunner each stage costs ~10 ms plus its pickled functions, so at 150k
taxi rows those stages took longer than the statistics (README, "What each step does").

`SplitsStatistics` computes the same DatasetFeatureStatisticsList per split in one `CombinePerKey` over
(split, RecordBatch) pairs: TFDV's `_CombinerStatsGeneratorsCombineFn` (the combine that GenerateStatistics
runs its combiner generators in) over the generators GenerateStatistics would run, with TFDV's
TopKUniquesStatsGenerator replaced by `TopKUniquesCombinerStatsGenerator`: per feature, every distinct value's
count (and weight) from TFDV's own per-batch counts (`_to_topk_tuples`), turned into protos by TFDV's own
builders. The counts are exact, as TFDV's are (not the Misra-Gries/KMV sketches of its in-memory generators).
A (split, None) marker per split stands for the split itself, so a split without rows still gets TFDV's
placeholder without a stage of its own (Beam's CombineGlobally adds one per split to emit a default).
Numeric histograms are built on arrays (histograms.py: TFDV's protos, byte for byte). `WriteSplitsStatistics`
writes each proto where TFDV's WriteStatisticsToBinaryFile would, through a temporary file and a rename.
Two splits of a Parquet payload, read by components.parquet_read.ReadKeyedRecordBatches, take three Beam
stages (the files, read and combined per file; the merge and the writes), where per-split combines took
eight and TFDV's GenerateStatistics ~44. Splits read by sources of their own (tf.Examples, through TFX's
TFXIO) are combined one by one (`SplitStatistics`): keying their batches into one combine would need a
Flatten, which the DirectRunner materializes whole.

What differs: every distinct value of a split's string and categorical features is held in one accumulator,
as in the one-pass vocabularies (preprocessing/vocabularies.py): on DirectRunner TFDV's per-value combine
holds them all in memory too, but a distributed runner spreads them over keys. And weighted top-k sums each
value's weights batch by batch (TFDV sums them with numpy over all of a value's batches at once), so weighted
frequencies can differ in the last bits. Options that need TFDV's own stages (slicing, feature or result
partitions, sharded output, generators that are Beam transforms, e.g. lift with a label) are not supported
here: `supported` says so and the executor runs TFDV's GenerateStatistics for them.
"""
from __future__ import annotations

import heapq
import math
from collections import Counter
from typing import Dict, List, Optional, Tuple

import apache_beam as beam
import pyarrow as pa
from tensorflow_data_validation.api import stats_api
from tensorflow_data_validation.statistics import stats_impl, stats_options
from tensorflow_data_validation.statistics.generators import stats_generator
from tensorflow_data_validation.statistics.generators import top_k_uniques_stats_generator as tfdv_top_k
from tensorflow_data_validation.utils import preprocessing_util, schema_util
from tensorflow_data_validation.utils import top_k_uniques_stats_util as top_k_util
from tensorflow_data_validation.utils.example_weight_map import ExampleWeightMap
from tensorflow_metadata.proto.v0 import schema_pb2, statistics_pb2
from tfx_bsl.statistics import merge_util

from components.statistics_gen import histograms
from preprocessing.vocabularies import write_atomically

FeaturePathTuple = Tuple[str, ...]


class _TopKUniquesAccumulator:
    """Per feature path: each distinct value's example count, and with example weights its summed weight."""
    __slots__ = ("counts", "weights")

    def __init__(self):
        self.counts: Dict[FeaturePathTuple, Counter] = {}
        self.weights: Dict[FeaturePathTuple, Counter] = {}


class TopKUniquesCombinerStatsGenerator(stats_generator.CombinerStatsGenerator):
    """TFDV's exact top-k and uniques statistics (top_k_uniques_stats_generator.TopKUniquesStatsGenerator, a
    Beam transform of per-value combines) as a combiner: the same features, counts, order and protos."""

    def __init__(self, schema: Optional[schema_pb2.Schema], example_weight_map: ExampleWeightMap,
                 num_top_values: int, frequency_threshold: int, weighted_frequency_threshold: float,
                 num_rank_histogram_buckets: int, name: str = "TopKUniquesCombinerStatsGenerator") -> None:
        super().__init__(name, schema)
        self._bytes_features = frozenset(schema_util.get_bytes_features(schema) if schema else [])
        self._categorical_numeric_types = (schema_util.get_categorical_numeric_feature_types(schema)
                                           if schema else {})
        self._example_weight_map = example_weight_map
        self._weighted = bool(example_weight_map.all_weight_features())
        self._num_top_values = num_top_values
        self._frequency_threshold = frequency_threshold
        self._weighted_frequency_threshold = weighted_frequency_threshold
        self._num_rank_histogram_buckets = num_rank_histogram_buckets

    @classmethod
    def from_options(cls, options: stats_options.StatsOptions) -> "TopKUniquesCombinerStatsGenerator":
        """The generator for the options TFDV builds its TopKUniquesStatsGenerator from
        (stats_impl._get_default_generators)."""
        return cls(schema=options.schema, example_weight_map=options.example_weight_map,
                   num_top_values=options.num_top_values, frequency_threshold=options.frequency_threshold,
                   weighted_frequency_threshold=options.weighted_frequency_threshold,
                   num_rank_histogram_buckets=options.num_rank_histogram_buckets)

    def create_accumulator(self) -> _TopKUniquesAccumulator:
        return _TopKUniquesAccumulator()

    def add_input(self, accumulator: _TopKUniquesAccumulator,
                  input_record_batch: pa.RecordBatch) -> _TopKUniquesAccumulator:
        # TFDV's per-batch (feature, value) -> (count, weight) tuples, for the same features.
        for (_, path, value), (count, weight) in tfdv_top_k._to_topk_tuples(
                (None, input_record_batch), bytes_features=self._bytes_features,
                categorical_numeric_types=self._categorical_numeric_types,
                example_weight_map=self._example_weight_map):
            counts = accumulator.counts.get(path)
            if counts is None:
                counts = accumulator.counts[path] = Counter()
                if self._weighted:
                    accumulator.weights[path] = Counter()
            counts[value] += count
            if self._weighted:
                accumulator.weights[path][value] += weight
        return accumulator

    def merge_accumulators(self, accumulators) -> _TopKUniquesAccumulator:
        it = iter(accumulators)
        result = next(it)
        for accumulator in it:
            for totals, more in ((result.counts, accumulator.counts), (result.weights, accumulator.weights)):
                for path, values in more.items():
                    if path in totals:
                        totals[path].update(values)
                    else:  # a copy: the other accumulator is not the result's to change
                        totals[path] = Counter(values)
        return result

    def _top(self, totals: Counter) -> List[top_k_util.FeatureValueCount]:
        # TFDV's Top.PerKey over (count or weight, value): the largest first, ties by the larger value.
        top = heapq.nlargest(max(self._num_top_values, self._num_rank_histogram_buckets),
                             ((total, value) for value, total in totals.items()))
        return [top_k_util.FeatureValueCount(value, total) for total, value in top]

    def extract_output(self, accumulator: _TopKUniquesAccumulator) -> statistics_pb2.DatasetFeatureStatistics:
        protos = []
        for path, counts in accumulator.counts.items():
            protos.append(top_k_util.make_dataset_feature_stats_proto_topk_single(
                feature_path_tuple=path, value_count_list=self._top(counts), is_weighted_stats=False,
                num_top_values=self._num_top_values, frequency_threshold=self._frequency_threshold,
                num_rank_histogram_buckets=self._num_rank_histogram_buckets))
            protos.append(top_k_util.make_dataset_feature_stats_proto_unique_single(
                feature_path_tuple=path, num_uniques=len(counts)))
            if self._weighted:
                protos.append(top_k_util.make_dataset_feature_stats_proto_topk_single(
                    feature_path_tuple=path, value_count_list=self._top(accumulator.weights[path]),
                    is_weighted_stats=True, num_top_values=self._num_top_values,
                    frequency_threshold=self._weighted_frequency_threshold,
                    num_rank_histogram_buckets=self._num_rank_histogram_buckets))
        if not protos:
            return statistics_pb2.DatasetFeatureStatistics()
        return merge_util.merge_dataset_feature_statistics(protos).datasets[0]


def _generators(options: stats_options.StatsOptions) -> List[stats_generator.StatsGenerator]:
    """The generators TFDV's GenerateStatistics runs for the options, its exact top-k and uniques transform as
    TopKUniquesCombinerStatsGenerator."""
    return [TopKUniquesCombinerStatsGenerator.from_options(options)
            if isinstance(generator, tfdv_top_k.TopKUniquesStatsGenerator) else generator
            for generator in stats_impl.get_generators(options)]


def supported(options: stats_options.StatsOptions, write_sharded_output: bool = False) -> bool:
    """Whether SplitsStatistics computes what GenerateStatistics would for these options: no slicing, one
    feature and one result partition, no sharded output, no derived features (none in TFDV's open-source
    build: its metadata generator for them is None), and every generator a combiner once TFDV's top-k and
    uniques is (custom Beam-transform generators and lift statistics need TFDV's own stages)."""
    if write_sharded_output or options.slicing_config or options.experimental_slice_functions \
            or options.experimental_slice_sqls:
        return False
    if options.experimental_num_feature_partitions != 1 or options.experimental_result_partitions != 1:
        return False
    if options.schema is not None and preprocessing_util.get_metadata_generator() is not None:
        return False
    return all(isinstance(g, stats_generator.CombinerStatsGenerator) for g in _generators(options))


class _SplitStatisticsCombineFn(beam.CombineFn):
    """TFDV's combine of its combiner generators, whose output is the split's DatasetFeatureStatisticsList;
    with no RecordBatch at all, TFDV's placeholder (one empty dataset), as GenerateStatistics writes for an
    empty split. The accumulator is None until the first RecordBatch; a None input (a split's marker, see
    SplitsStatistics) adds nothing."""

    def __init__(self, generators: List[stats_generator.CombinerStatsGenerator],
                 desired_batch_size: Optional[int]) -> None:
        self._combine = stats_impl._CombinerStatsGeneratorsCombineFn(generators, desired_batch_size)

    def setup(self):
        self._combine.setup()

    def create_accumulator(self):
        return None

    def add_input(self, accumulator, record_batch: Optional[pa.RecordBatch]):
        if record_batch is None:
            return accumulator
        if accumulator is None:
            accumulator = self._combine.create_accumulator()
        return self._combine.add_input(accumulator, record_batch)

    def merge_accumulators(self, accumulators):
        present = [a for a in accumulators if a is not None]
        return self._combine.merge_accumulators(present) if present else None

    def compact(self, accumulator):
        return accumulator if accumulator is None else self._combine.compact(accumulator)

    def extract_output(self, accumulator) -> statistics_pb2.DatasetFeatureStatisticsList:
        statistics = statistics_pb2.DatasetFeatureStatisticsList()
        dataset = statistics.datasets.add()
        if accumulator is not None:
            with histograms.on_arrays():  # TFDV's histograms, built on arrays: the same protos
                dataset.CopyFrom(self._combine.extract_output(accumulator))
        return statistics


def _sampled(pair: Tuple[str, Optional[pa.RecordBatch]], sample_rates: Dict[str, Optional[float]],
             default_rate: Optional[float]):
    split, record_batch = pair
    rate = sample_rates.get(split, default_rate)
    if record_batch is None or rate is None:
        yield pair
    else:
        for sampled in stats_api._sample_at_rate(record_batch, sample_rate=rate):
            yield split, sampled


def _allowed(pair: Tuple[str, Optional[pa.RecordBatch]], feature_allowlist):
    split, record_batch = pair
    if record_batch is None:
        return pair
    return split, stats_impl._filter_features(record_batch, feature_allowlist=feature_allowlist)


class _Prepared(beam.PTransform):
    """(split, RecordBatch) pairs as GenerateStatistics prepares a split's batches, in its order: sampling at
    the split's rate, derived features (none: see `supported`), the allowlist. Markers pass as they are."""

    def __init__(self, options: stats_options.StatsOptions, sample_rates: Dict[str, Optional[float]]) -> None:
        super().__init__()
        self._options = options
        self._sample_rates = sample_rates

    def expand(self, pairs):
        options = self._options
        if options.sample_rate is not None or any(rate is not None for rate in self._sample_rates.values()):
            pairs |= "SampleExamplesAtRate" >> beam.FlatMap(_sampled, sample_rates=self._sample_rates,
                                                               default_rate=options.sample_rate)
        if options.feature_allowlist:
            pairs |= "FilterFeaturesByAllowList" >> beam.Map(_allowed, feature_allowlist=options.feature_allowlist)
        return pairs


def _checked(options: stats_options.StatsOptions) -> stats_options.StatsOptions:
    if not supported(options):
        raise ValueError("These statistics options need TFDV's GenerateStatistics (slicing, partitions or "
                         "generators that are Beam transforms)")
    return options


def _rates(options: stats_options.StatsOptions,
           sample_rates: Optional[Dict[str, Optional[float]]]) -> Dict[str, Optional[float]]:
    return {split: options.sample_rate if rate is None else rate for split, rate in (sample_rates or {}).items()}


class SplitsStatistics(beam.PTransform):
    """(split, RecordBatch) pairs, with one (split, None) marker per split -> (split,
    DatasetFeatureStatisticsList) per split, each as tfdv.GenerateStatistics computes it for `options` with
    the split's sample rate (`sample_rates`; None: the options' own), in one CombinePerKey for all splits. The
    marker gives a split with no rows TFDV's placeholder, as GenerateStatistics writes for an empty split.

    For pairs from one source (parquet_read.ReadKeyedRecordBatches). Pairs flattened from several sources
    would be held in memory whole before the combine: the DirectRunner materializes every multi-input
    Flatten (+0.8 GB at 1M taxi rows on tf.Examples); SplitStatistics is for those, one split each."""

    def __init__(self, options: stats_options.StatsOptions,
                 sample_rates: Optional[Dict[str, Optional[float]]] = None) -> None:
        super().__init__()
        self._options = _checked(options)
        self._sample_rates = _rates(options, sample_rates)

    def expand(self, pairs):
        options = self._options
        return (pairs | "Prepare" >> _Prepared(options, self._sample_rates)
                | "CombineStatistics" >> beam.CombinePerKey(
                    _SplitStatisticsCombineFn(_generators(options), options.desired_batch_size)))


class SplitStatistics(beam.PTransform):
    """One split's RecordBatches -> (split, DatasetFeatureStatisticsList), as SplitsStatistics computes it, in a
    CombineGlobally of its own (whose default, one more Beam stage, gives an empty split TFDV's placeholder):
    for a split read by a source of its own, so that its batches are combined as they are read."""

    def __init__(self, options: stats_options.StatsOptions, split: str, sample_rate: Optional[float] = None) -> None:
        super().__init__()
        self._options = _checked(options)
        self._split = split
        self._sample_rates = _rates(options, {split: sample_rate})

    def expand(self, record_batches):
        options, split = self._options, self._split
        return (record_batches | "KeyBySplit" >> beam.Map(lambda batch, split: (split, batch), split=split)
                | "Prepare" >> _Prepared(options, self._sample_rates)
                | "Batches" >> beam.Values()
                | "CombineStatistics" >> beam.CombineGlobally(
                    _SplitStatisticsCombineFn(_generators(options), options.desired_batch_size))
                | "WithSplit" >> beam.Map(lambda statistics, split: (split, statistics), split=split))


def write_statistics(statistics: statistics_pb2.DatasetFeatureStatisticsList, path: str) -> str:
    """The list proto at `path` (as tfdv.WriteStatisticsToBinaryFile writes it), whole or not at all: written
    beside and renamed (preprocessing.vocabularies.write_atomically, as the one-pass vocabularies' files)."""
    write_atomically(path, statistics.SerializeToString())
    return path


def same_statistics(first, second, rel_tol: float = 1e-12) -> bool:
    """Whether two statistics protos hold the same statistics: every field equal, floating-point values to
    `rel_tol`. TFDV's own runs over the same rows differ in the last bits of means and standard deviations when
    the batches arrive in another order (its combine spreads them over random hot-key fan-out keys, and Beam's
    batching of tf.Examples follows timing), so two correct runs need not be byte-identical."""
    if type(first) is not type(second):
        return False
    first_fields, second_fields = first.ListFields(), second.ListFields()
    if [f.name for f, _ in first_fields] != [f.name for f, _ in second_fields]:
        return False
    for (field, a), (_, b) in zip(first_fields, second_fields):
        pairs = list(zip(a, b)) if field.label == field.LABEL_REPEATED else [(a, b)]
        if field.label == field.LABEL_REPEATED and len(a) != len(b):
            return False
        for x, y in pairs:
            if field.type == field.TYPE_MESSAGE:
                if not same_statistics(x, y, rel_tol):
                    return False
            elif field.type in (field.TYPE_DOUBLE, field.TYPE_FLOAT):
                if not math.isclose(x, y, rel_tol=rel_tol):
                    return False
            elif x != y:
                return False
    return True


class WriteSplitsStatistics(beam.PTransform):
    """Each split's DatasetFeatureStatisticsList written to its binary file (`paths`, by split), in one Beam
    step."""

    def __init__(self, paths: Dict[str, str]) -> None:
        super().__init__()
        self._paths = dict(paths)

    def expand(self, statistics):
        return statistics | "WriteStatistics" >> beam.Map(_write_split, paths=self._paths)


def _write_split(pair: Tuple[str, statistics_pb2.DatasetFeatureStatisticsList], paths: Dict[str, str]) -> str:
    split, statistics = pair
    return write_statistics(statistics, paths[split])
