"""TFX's StatisticsGen executor (TFX 1.16's Do: the same exec properties, outputs and artifact properties),
with two changes:
- every split's statistics in one Beam combine keyed by split (a Parquet payload; other payloads one combine
  per split), and each file written in one step (components/statistics_gen/one_pass.py: TFDV's generators,
  the same statistics) where the statistics options allow it, instead of TFDV's GenerateStatistics and WriteStatisticsToBinaryFile per split (~22 Beam
  stages each); `TfdvExecutor` (validation.one_pass_statistics: false) keeps TFDV's;
- a Parquet payload read by components.parquet_read: ParquetTFXIO's batches without its per-row read
  telemetry (for the one-pass statistics, every split's files in one step: ReadKeyedRecordBatches). Other
  payloads are read exactly as TFX reads them.

TFX's Do builds each split's TFXIO and transforms inline, with no method to override, so this is its Do with
those two places changed: the TFXIO (`_split_tfxio`), and the read, statistics and write transforms.
"""
from __future__ import annotations

import os
from typing import Any, Dict, List

import apache_beam as beam
import tensorflow_data_validation as tfdv
from absl import logging
from tensorflow_data_validation.statistics import stats_options as options
from tfx import types
from tfx.components.statistics_gen import executor as tfx_executor
from tfx.components.statistics_gen import stats_artifact_utils
from tfx.components.util import examples_utils, tfxio_utils
from tfx.types import artifact_utils
from tfx.types import standard_component_specs as keys
from tfx.utils import io_utils, json_utils, stats_utils

from components.parquet_read import ParquetPayloadTFXIO, ReadKeyedRecordBatches, without_read_telemetry
from components.statistics_gen import one_pass


def _split_names(examples: types.Artifact, exclude_splits: List[str]) -> List[str]:
    if examples.has_custom_property(examples_utils.CUSTOM_SPLIT_PATTERN_PROPERTY_NAME):
        splits = list(json_utils.loads(examples.get_string_custom_property(
            examples_utils.CUSTOM_SPLIT_PATTERN_PROPERTY_NAME)).keys())
    else:
        splits = artifact_utils.decode_split_names(examples.split_names)
    return [split for split in splits if split not in exclude_splits]


class Executor(tfx_executor.Executor):
    # Every split's statistics in one combine (one_pass.SplitsStatistics) where the options allow it.
    one_pass_statistics = True

    @staticmethod
    def _split_tfxio(examples: types.Artifact, split: str, schema):
        return without_read_telemetry(tfxio_utils.get_split_tfxio(
            examples=[examples], split=split, telemetry_descriptors=tfx_executor._TELEMETRY_DESCRIPTORS,
            schema=schema))

    def Do(self, input_dict: Dict[str, List[types.Artifact]], output_dict: Dict[str, List[types.Artifact]],
           exec_properties: Dict[str, Any]) -> None:
        self._log_startup(input_dict, output_dict, exec_properties)
        exclude_splits = json_utils.loads(exec_properties.get(keys.EXCLUDE_SPLITS_KEY, "null")) or []
        if not isinstance(exclude_splits, list):
            raise ValueError(f"exclude_splits in execution properties needs to be a list. Got "
                             f"{type(exclude_splits)} instead.")
        sample_rate_by_split = json_utils.loads(exec_properties.get(keys.SAMPLE_RATE_BY_SPLIT_KEY, "null")) or {}
        examples = artifact_utils.get_single_instance(input_dict[keys.EXAMPLES_KEY])
        split_names = _split_names(examples, exclude_splits)

        statistics_artifact = artifact_utils.get_single_instance(output_dict[keys.STATISTICS_KEY])
        statistics_artifact.split_names = artifact_utils.encode_split_names(split_names)
        statistics_artifact.span = examples.span
        try:
            link = stats_utils.generate_stats_dashboard_link(statistics_artifact)
        except Exception as e:  # pylint: disable=broad-except  (as TFX: the link is cosmetic)
            logging.exception("Failed to generate stats dashboard link because %s", e)
            link = ""
        statistics_artifact.set_string_custom_property(tfx_executor.STATS_DASHBOARD_LINK, link)

        stats_options = options.StatsOptions()
        stats_options_json = exec_properties.get(keys.STATS_OPTIONS_JSON_KEY)
        if stats_options_json:
            stats_options = options.StatsOptions.from_json(stats_options_json)
        sample_rates = {split: stats_options.sample_rate or 1.0 for split in split_names}
        for split, rate in sample_rate_by_split.items():
            if split not in split_names:
                logging.error("Split %s provided in sample_rate_by_split is not valid.", split)
                continue
            sample_rates[split] = rate
        statistics_artifact.set_json_value_custom_property(
            tfx_executor.SAMPLE_RATE_BY_SPLIT_PROPERTY_NAME, json_utils.dumps(sample_rates))

        write_sharded_output = exec_properties.get(keys.SHARDED_STATS_OUTPUT_KEY, False)
        if write_sharded_output and not tfdv.default_sharded_output_supported():
            raise ValueError("Sharded output requested but not supported.")
        if input_dict.get(keys.SCHEMA_KEY):
            if stats_options.schema:
                raise ValueError("A schema was provided as an input and the stats_options exec_property also "
                                 "contains a schema value. At most one of these may be set.")
            stats_options.schema = io_utils.SchemaReader().read(io_utils.get_only_uri_in_dir(
                artifact_utils.get_single_uri(input_dict[keys.SCHEMA_KEY])))
        tfxio_schema = None
        if stats_options.experimental_filter_read_paths:
            if stats_options.feature_allowlist:
                if any(isinstance(path, str) for path in stats_options.feature_allowlist):
                    raise ValueError("experimental_filter_read_paths requires allowlist passed as paths.")
                tfxio_schema = tfdv.generate_dummy_schema_with_paths(stats_options.feature_allowlist)
            elif stats_options.schema is None:
                raise ValueError("experimental_filter_read_paths requires allowlist features or schema.")
            else:
                tfxio_schema = stats_options.schema

        split_and_tfxio = [(split, self._split_tfxio(examples, split, tfxio_schema)) for split in split_names]
        if not split_and_tfxio:
            raise ValueError(f"No splits for examples artifact: {examples}")
        paths = {split: os.path.join(artifact_utils.get_split_uri(output_dict[keys.STATISTICS_KEY], split),
                                     tfx_executor.DEFAULT_FILE_NAME) for split in split_names}
        with self._make_beam_pipeline() as p:
            if self.one_pass_statistics and one_pass.supported(stats_options, write_sharded_output):
                logging.info("Generating statistics for splits %s in one pass.", split_names)
                _ = (self._one_pass_statistics(p, dict(split_and_tfxio), stats_options, sample_rate_by_split)
                     | "WriteStatsOutput" >> one_pass.WriteSplitsStatistics(paths))
                return
            for split, tfxio in split_and_tfxio:
                logging.info("Generating statistics for split %s.", split)
                split_stats_options = tfdv.StatsOptions.from_json(stats_options.to_json())
                if sample_rate_by_split.get(split) is not None:
                    split_stats_options.sample_rate = sample_rate_by_split[split]
                statistics = (p | f"TFXIORead[{split}]" >> tfxio.BeamSource()
                              | f"GenerateStatistics[{split}]" >> tfdv.GenerateStatistics(split_stats_options))
                if write_sharded_output:
                    write_transform = tfdv.WriteStatisticsToRecordsAndBinaryFile(
                        binary_proto_path=paths[split],
                        records_path_prefix=os.path.join(
                            os.path.dirname(paths[split]),
                            stats_artifact_utils.SHARDED_STATS_PREFIX + tfdv.default_sharded_output_suffix()))
                else:
                    write_transform = tfdv.WriteStatisticsToBinaryFile(paths[split])
                _ = statistics | f"WriteStatsOutput[{split}]" >> write_transform
                logging.info("Statistics for split %s written to %s.", split, os.path.dirname(paths[split]))

    @staticmethod
    def _one_pass_statistics(p: beam.Pipeline, tfxios: Dict[str, Any], stats_options: options.StatsOptions,
                             sample_rates: Dict[str, Any]) -> beam.PCollection:
        """(split, DatasetFeatureStatisticsList) of every split: a Parquet payload's splits read in one step
        and combined in one CombinePerKey (parquet_read.ReadKeyedRecordBatches, one_pass.SplitsStatistics);
        another payload read by each split's TFXIO as TFX reads it and combined split by split
        (one_pass.SplitStatistics), only the statistics flattened."""
        if all(isinstance(tfxio, ParquetPayloadTFXIO) for tfxio in tfxios.values()):
            return (p | "TFXIORead" >> ReadKeyedRecordBatches(tfxios)
                    | "SplitsStatistics" >> one_pass.SplitsStatistics(stats_options, sample_rates))
        per_split = [p | f"TFXIORead[{split}]" >> tfxio.BeamSource()
                     | f"SplitStatistics[{split}]" >> one_pass.SplitStatistics(stats_options, split,
                                                                               sample_rates.get(split))
                     for split, tfxio in tfxios.items()]
        return per_split | "FlattenStatistics" >> beam.Flatten()


class TfdvExecutor(Executor):
    """validation.one_pass_statistics: false: TFDV's GenerateStatistics and WriteStatisticsToBinaryFile for
    every split, as TFX runs them (the Parquet read as Executor's)."""
    one_pass_statistics = False
