"""DataGate executor: collect anomalies per split; raise DataValidationError if there are any, else record
the statistics as accepted (the next run's drift baseline)."""
from __future__ import annotations

import json
import os
from typing import Any, Dict, List, Optional, Tuple

from absl import logging
from tfx.dsl.components.base import base_executor
from tfx.types import artifact_utils
from tfx.dsl.io import fileio
from tfx.utils import io_utils

from components.data_gate import checks
from components.data_gate.checks import STATS_FILE
from components.properties import AcceptedStatisticsProperties
from config import CustomConfig

ANOMALIES_FILE = "SchemaDiff.pb"  # ExampleValidator's output per split


def _split_file(artifact, split: str, name: str) -> str:
    return os.path.join(artifact.uri, f"Split-{split}", name)


def load_statistics(artifact, split: str):
    import tensorflow_data_validation as tfdv

    path = _split_file(artifact, split, STATS_FILE)
    return tfdv.load_stats_binary(path) if fileio.exists(path) else None


def load_anomalies(artifact, split: str):
    from tensorflow_metadata.proto.v0 import anomalies_pb2

    path = _split_file(artifact, split, ANOMALIES_FILE)
    return anomalies_pb2.Anomalies.FromString(io_utils.read_bytes_file(path)) if fileio.exists(path) else None


def gate(statistics, schema, anomalies, baseline, custom_config: CustomConfig, drift, skew
         ) -> Tuple[List[checks.Anomaly], List[checks.Distance]]:
    """All anomalies of one run, and the drift and skew distances measured; the artifacts are
    ExampleStatistics/Schema/ExampleAnomalies (baseline: the last AcceptedStatistics or None)."""
    import tensorflow_data_validation as tfdv

    found: List[checks.Anomaly] = []
    distances: List[checks.Distance] = []
    splits = artifact_utils.decode_split_names(statistics.split_names)
    by_split = {split: load_statistics(statistics, split) for split in splits}
    for split in splits:
        split_anomalies = load_anomalies(anomalies, split)
        if split_anomalies is not None:
            found += checks.from_tfdv(split_anomalies, split)
        if by_split[split] is None:
            continue
        dataset = by_split[split].datasets[0]
        found += checks.missing_value_checks(dataset, schema, split)
        found += checks.config_checks(dataset, custom_config, split)
    train = by_split.get("train")
    if train is not None:
        baseline_train = load_statistics(baseline, "train") if baseline is not None else None
        compared, distances = checks.comparator_checks(tfdv.validate_statistics, schema, train, baseline_train,
                                                       by_split.get("eval"), drift, skew)
        found += compared
    # One line per (split, feature, kind): the config checks repeat some of TFDV's findings in other words.
    unique: Dict[tuple, checks.Anomaly] = {}
    for anomaly in found:
        unique.setdefault((anomaly.split, anomaly.feature, anomaly.kind), anomaly)
    return list(unique.values()), distances


class Executor(base_executor.BaseExecutor):
    def Do(self, input_dict: Dict[str, List[Any]], output_dict: Dict[str, List[Any]],
           exec_properties: Dict[str, Any]) -> None:
        statistics = artifact_utils.get_single_instance(input_dict["statistics"])
        schema_artifact = artifact_utils.get_single_instance(input_dict["schema"])
        anomalies = artifact_utils.get_single_instance(input_dict["anomalies"])
        baselines = input_dict.get("baseline_statistics") or []
        baseline: Optional[Any] = baselines[0] if baselines else None
        accepted = artifact_utils.get_single_instance(output_dict["accepted_statistics"])
        schema = io_utils.SchemaReader().read(io_utils.get_only_uri_in_dir(schema_artifact.uri))

        custom_config = CustomConfig.from_json(json.loads(exec_properties["custom_config"]))
        found, distances = gate(statistics, schema, anomalies, baseline, custom_config,
                     json.loads(exec_properties["drift"]), json.loads(exec_properties["skew"]))
        report = checks.GateReport(anomalies=found, distances=distances,
                                   baseline_statistics=baseline.uri if baseline is not None else None)
        io_utils.write_string_file(os.path.join(accepted.uri, checks.GATE_REPORT_FILE), report.to_json())
        if found:
            raise checks.DataValidationError(found)
        logging.info("DataGate: no anomalies (drift baseline: %s)", baseline.uri if baseline else "none")
        splits = artifact_utils.decode_split_names(statistics.split_names)
        for split in splits:
            source = _split_file(statistics, split, STATS_FILE)
            if fileio.exists(source):
                io_utils.copy_file(source, _split_file(accepted, split, STATS_FILE), overwrite=True)
        train = load_statistics(statistics, "train")
        warnings = checks.passthrough_warnings(train.datasets[0], custom_config.features) if train is not None else []
        for warning in warnings:
            logging.warning("DataGate: %s", warning)
        AcceptedStatisticsProperties(split_names=statistics.split_names, statistics_id=statistics.id,
                                     warnings=warnings).write(accepted)
