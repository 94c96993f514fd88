"""components/statistics_gen/histograms.py: TFDV's numeric histograms built on arrays give TFDV's protos byte
for byte, on quantile sketches of many shapes, and only within `on_arrays`."""
import numpy as np
import pyarrow as pa
import pytest
from tensorflow_data_validation.statistics.generators import basic_stats_generator
from tensorflow_data_validation.utils import quantiles_util
from tfx_bsl.sketches import QuantilesSketch

from components.statistics_gen import histograms

_rng = np.random.default_rng(7)
# Value shapes that take each branch of TFDV's code: ties (runs of equal bucket bounds), a constant column
# (finite_min == finite_max), point buckets on interval edges, infinities on either side, no finite value.
VALUES = {
    "normal": _rng.normal(size=50_000),
    "few_integers": _rng.integers(0, 5, 50_000).astype(float),
    "many_integers": _rng.integers(0, 300, 50_000).astype(float),
    "constant": np.full(1_000, 3.5),
    "two_values": np.array([1.0] * 500 + [2.0] * 3),
    "heavy_tail": _rng.exponential(size=20_000) ** 3,
    "mostly_zeros": np.where(_rng.random(50_000) < 0.8, 0.0, _rng.normal(size=50_000)),
    "three_rows": np.array([1.0, 2.0, 3.0]),
    "one_row": np.array([7.0]),
    "negative_integers": -_rng.integers(0, 20, 1_000).astype(float),
    "infinities": np.concatenate([_rng.normal(size=1_000), [np.inf] * 30, [-np.inf] * 20]),
    "positive_infinities_and_ties": np.concatenate([_rng.integers(0, 3, 1_000).astype(float), [np.inf] * 5]),
    "only_infinities": np.array([np.inf, -np.inf, np.inf]),
}


def _quantiles(values, weights, buckets):
    sketch = QuantilesSketch(0.01, 1 << 32, 1)
    sketch.AddValues(pa.array(values), *([] if weights is None else [pa.array(weights)]))
    quantiles, cumulative = sketch.GetQuantilesAndCumulativeWeights(buckets)
    return (quantiles.flatten().to_numpy(zero_copy_only=False),
            cumulative.flatten().to_numpy(zero_copy_only=False))


@pytest.mark.parametrize("weighted", [False, True], ids=["counts", "weights"])
@pytest.mark.parametrize("name", sorted(VALUES))
def test_tfdvs_histograms_byte_for_byte(name, weighted):
    values = VALUES[name]
    weights = _rng.random(values.size) * 3 if weighted else None
    finite = values[np.isfinite(values)]
    finite_min, finite_max = (finite.min(), finite.max()) if finite.size else (np.inf, -np.inf)
    positive_infinities = float(np.sum(values == np.inf) if weights is None else np.sum(weights[values == np.inf]))
    for sketch_buckets in (1_000, 100, 10, 3):  # TFDV's 1,000 for the standard histogram, 10 for quantiles
        quantiles, cumulative = _quantiles(values, weights, sketch_buckets)
        assert (histograms.generate_quantiles_histogram(quantiles, cumulative).SerializeToString()
                == quantiles_util.generate_quantiles_histogram(quantiles, cumulative).SerializeToString())
        for buckets in (10, 7, 1):
            ours = histograms.generate_equi_width_histogram(quantiles, cumulative, finite_min, finite_max,
                                                            buckets, positive_infinities)
            tfdvs = quantiles_util.generate_equi_width_histogram(quantiles, cumulative, finite_min, finite_max,
                                                                 buckets, positive_infinities)
            assert ours.SerializeToString() == tfdvs.SerializeToString(), (sketch_buckets, buckets)


def test_bin_weights_spread_ties_as_tfdv():
    boundaries = np.array([1.0, 1.0, 1.0, 2.0, 2.0, 2.0, 5.0])
    cumulative = np.array([3.0, 4.0, 4.5, 7.0, 7.25, 9.0, 10.0])
    ours, tfdvs = histograms.bin_weights(boundaries, cumulative), quantiles_util._get_bin_weights(
        boundaries, cumulative)
    for a, b in zip(ours, tfdvs):
        assert a.tobytes() == b.tobytes()
    # The weight below the first bound (3) spread over the two buckets identical to the first, [1, 1]; the runs
    # with upper bound 1 and 2 share their weights evenly.
    assert ours[2].tolist() == [0.75 + 1.5, 0.75 + 1.5, (2.5 + 0.25 + 1.75) / 3, (2.5 + 0.25 + 1.75) / 3,
                                (2.5 + 0.25 + 1.75) / 3, 1.0]


def _basic_statistics():
    generator = basic_stats_generator.BasicStatsGenerator()
    batch = pa.RecordBatch.from_arrays(
        [pa.array([[v] for v in _rng.gamma(2.0, 7.0, 20_000).round(2)]),
         pa.array([[int(v)] for v in _rng.integers(0, 24, 20_000)])], ["fare", "hour"])
    accumulator = generator.add_input(generator.create_accumulator(), batch)
    return generator, accumulator


def test_on_arrays_gives_the_generators_protos_and_restores_tfdvs_module():
    generator, accumulator = _basic_statistics()
    tfdvs = generator.extract_output(accumulator)
    with histograms.on_arrays():
        assert basic_stats_generator.quantiles_util is not quantiles_util
        assert (basic_stats_generator.quantiles_util.generate_equi_width_histogram
                is histograms.generate_equi_width_histogram)
        with histograms.on_arrays():  # re-entered in the same thread: no deadlock, still replaced
            ours = generator.extract_output(accumulator)
        assert basic_stats_generator.quantiles_util is not quantiles_util
    assert basic_stats_generator.quantiles_util is quantiles_util
    assert ours.SerializeToString() == tfdvs.SerializeToString()
    assert len(ours.features[0].num_stats.histograms[0].buckets) == 10


def test_on_arrays_restores_tfdvs_module_after_an_error():
    with pytest.raises(RuntimeError):
        with histograms.on_arrays():
            raise RuntimeError("boom")
    assert basic_stats_generator.quantiles_util is quantiles_util
