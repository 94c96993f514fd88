"""`tfxp schema freeze`: statistics of the configured data -> a schema with domains, for review.

The inferred TFDV schema (types, presence, VarLen shapes: what SchemaGen would infer) gets domains for every
column the config uses:
  numeric features      value range from the data, widened by `range_margin` of the range on each side
                        (not below 0 for a column that has no negative values); NaN and inf disallowed
  vocab features        text: the observed vocabulary, with at most `max_new_category_fraction` of values
                        outside it; integers: the observed range
  label                 binary: 0..1; multiclass: the observed classes, nothing else; regression: a range
  missing cells         tag `tfxp:max_missing_fraction=X` = observed fraction + `max_missing_increase`
                        (the label: 0)
Columns the config does not use keep their type only, so that they cannot block a run.
"""
from __future__ import annotations

import math
import os
import tempfile
import time
from typing import List, Tuple

from tensorflow_metadata.proto.v0 import schema_pb2, statistics_pb2

from components.data_gate.checks import MISSING_TAG, feature_stats, passthrough_warnings, present_fraction
from config import NUMERIC_TREATMENTS, PipelineConfig

# TFDV keeps this many distinct values per string feature in its rank histogram (StatsOptions default).
MAX_VOCABULARY_DOMAIN = 1000


def compute_statistics(config: PipelineConfig) -> statistics_pb2.DatasetFeatureStatisticsList:
    """TFDV statistics of the files the pipeline reads, every span's with spans, decoded as its ExampleGen
    decodes them (CSV: the same decoder and type inference as CsvExampleGen)."""
    import apache_beam as beam
    import tensorflow_data_validation as tfdv
    from apache_beam.options.pipeline_options import PipelineOptions

    options = PipelineOptions([f"--direct_running_mode={config.beam.direct_running_mode}",
                               f"--direct_num_workers={config.beam.direct_num_workers}"])
    stats_options = tfdv.StatsOptions(num_rank_histogram_buckets=MAX_VOCABULARY_DOMAIN)
    pattern = config.data.glob()
    if config.data.format == "csv":
        return tfdv.generate_statistics_from_csv(pattern, stats_options=stats_options, pipeline_options=options)
    if config.data.format == "tfrecord":
        return tfdv.generate_statistics_from_tfrecord(pattern, stats_options=stats_options,
                                                      pipeline_options=options)
    # Parquet: the same tf.Examples ParquetExampleGen writes, decoded back into record batches.
    import glob

    from tfx_bsl.coders import example_coder

    from components.example_gen.cell_encoding import encode_parquet_file

    decoder = example_coder.ExamplesToRecordBatchDecoder()
    batches = [decoder.DecodeBatch(block) for path in sorted(glob.glob(pattern))
               for block in encode_parquet_file(path)]
    output = os.path.join(tempfile.mkdtemp(prefix="tfxp_freeze_"), "stats.tfrecord")
    with beam.Pipeline(options=options) as p:
        _ = (p | beam.Create(batches) | tfdv.GenerateStatistics(stats_options)
             | tfdv.WriteStatisticsToBinaryFile(output))
    return tfdv.load_stats_binary(output)


def _widened(low: float, high: float, margin: float, integer: bool) -> Tuple[float, float]:
    pad = margin * (high - low)
    new_low, new_high = low - pad, high + pad
    if low >= 0:
        new_low = max(0.0, new_low)
    if integer:
        new_low, new_high = math.floor(new_low), math.ceil(new_high)
    return new_low, new_high


def _set_range(feature: schema_pb2.Feature, low: float, high: float) -> None:
    if feature.type == schema_pb2.INT:
        feature.int_domain.min, feature.int_domain.max = int(low), int(high)
    else:
        feature.float_domain.min, feature.float_domain.max = float(low), float(high)
        feature.float_domain.disallow_nan = True
        feature.float_domain.disallow_inf = True


def _set_vocabulary(feature: schema_pb2.Feature, stats, min_domain_mass: float) -> bool:
    values = sorted(b.label for b in stats.string_stats.rank_histogram.buckets)
    if not values or stats.string_stats.unique > len(values):
        return False  # more distinct values than the statistics keep: no enumerable domain
    feature.string_domain.value.extend(values)
    feature.distribution_constraints.min_domain_mass = min_domain_mass
    return True


def _clear_domain(feature: schema_pb2.Feature) -> None:
    for field in ("domain", "int_domain", "float_domain", "string_domain", "bool_domain",
                  "distribution_constraints"):
        feature.ClearField(field)


def frozen_schema(statistics: statistics_pb2.DatasetFeatureStatisticsList, config: PipelineConfig
                  ) -> Tuple[schema_pb2.Schema, List[str]]:
    """The schema to freeze, and notes on what could not be constrained."""
    import tensorflow_data_validation as tfdv

    dataset = statistics.datasets[0]
    schema = tfdv.infer_schema(statistics, infer_feature_shape=False,
                               max_string_domain_size=MAX_VOCABULARY_DOMAIN)
    schema.ClearField("string_domain")  # domains go inline, per feature
    stats_by_name = feature_stats(dataset)
    treatments = {f.name: f.treatment for f in config.features}
    validation, label = config.validation, config.label
    notes = [f"warning: {w}" for w in passthrough_warnings(dataset, config.features)]
    for feature in schema.feature:
        _clear_domain(feature)
        # CsvExampleGen writes an empty cell as a feature with no values, where TFDV's CSV reader drops the
        # feature: neither value_count.min nor presence.min_fraction means "no empty cells" in both, so
        # empty cells are the missing-fraction tag's job.
        feature.value_count.ClearField("min")
        feature.presence.ClearField("min_fraction")
        stats = stats_by_name[feature.name]
        missing = 1.0 - present_fraction(stats, dataset.num_examples)
        numeric = stats.HasField("num_stats")
        if feature.name == label.column:
            if label.task == "binary" and numeric:
                _set_range(feature, 0, 1)
            elif label.task == "regression" and numeric:
                _set_range(feature, *_widened(stats.num_stats.min, stats.num_stats.max, validation.range_margin,
                                              feature.type == schema_pb2.INT))
            elif numeric:
                _set_range(feature, stats.num_stats.min, stats.num_stats.max)
            else:
                _set_vocabulary(feature, stats, 1.0)
            feature.annotation.tag.append(f"{MISSING_TAG}0")
            continue
        treatment = treatments.get(feature.name)
        if treatment is None:
            feature.presence.ClearField("min_count")  # unused column: type only, may even be all empty
            continue
        if treatment in NUMERIC_TREATMENTS and numeric:
            _set_range(feature, *_widened(stats.num_stats.min, stats.num_stats.max, validation.range_margin,
                                          feature.type == schema_pb2.INT))
        elif treatment == "vocab" and numeric:
            _set_range(feature, stats.num_stats.min, stats.num_stats.max)
        elif treatment == "vocab":
            if not _set_vocabulary(feature, stats, 1.0 - validation.max_new_category_fraction):
                notes.append(f"{feature.name}: {stats.string_stats.unique} distinct values, more than the "
                             f"{MAX_VOCABULARY_DOMAIN} the statistics keep; no vocabulary domain frozen")
        allowed = min(1.0, math.ceil((missing + validation.max_missing_increase) * 10000) / 10000)
        feature.annotation.tag.append(f"{MISSING_TAG}{allowed:g}")
    return schema, notes


def schema_text(schema: schema_pb2.Schema, config: PipelineConfig) -> str:
    from google.protobuf import text_format

    header = (f"# Frozen by `tfxp schema freeze --config {os.path.basename(config.source)}` on "
              f"{time.strftime('%Y-%m-%d')} from that config's data files.\n"
              "# Review it, commit it, and edit domains by hand where the data did not show the full range.\n"
              f"# `{MISSING_TAG}X` tags: the largest share of empty cells the data gate accepts.\n")
    return header + text_format.MessageToString(schema)


def freeze(config: PipelineConfig, output_path: str) -> List[str]:
    """Computes statistics of the config's data and writes the frozen schema; returns notes."""
    schema, notes = frozen_schema(compute_statistics(config), config)
    os.makedirs(os.path.dirname(os.path.abspath(output_path)), exist_ok=True)
    tmp = f"{output_path}.tmp"
    with open(tmp, "w") as f:
        f.write(schema_text(schema, config))
    os.replace(tmp, output_path)
    return notes
