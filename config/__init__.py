"""tfxp's config: the typed records (schema), loading and validation (load, sections), the cloud
translation (cloud), the CSV probe (csv_probe), spans (spans) and the process exit (process). Imports nothing
else of tfxp's.

The names most code needs are re-exported here: `from config import PipelineConfig, load_config`.
"""
from config.load import load_config
from config.schema import (CLOUD_TARGETS, IDEAL_SIZE_RATIO, METRICS, NUMERIC_TREATMENTS, ON_GATE_FAILURE,
                           PARQUET_PAYLOAD, PAYLOADS, TF_EXAMPLE_PAYLOAD, TFXP_TRANSFORM,
                           QUANTIZATION_METHODS, TASK_METRICS, TASKS, TREATMENTS, BeamConfig, CloudConfig,
                           CustomConfig, DataConfig, EvaluationConfig, FeatureConfig, LabelConfig, Metric,
                           ModelCardConfig, ModelConfig, PipelineConfig, QuantizationConfig, TrainingConfig, TransformConfig,
                           ValidationConfig,
                           default_float_serving_dir, default_gates, default_metadata_path, is_remote)
from config.load import default_schema_file
from config.sections import ConfigError, resolve_data_path
from config.text import MAX_LISTED, listed

__all__ = ["load_config", "CLOUD_TARGETS", "IDEAL_SIZE_RATIO", "METRICS", "NUMERIC_TREATMENTS", "ON_GATE_FAILURE",
           "PARQUET_PAYLOAD", "PAYLOADS", "TF_EXAMPLE_PAYLOAD", "TFXP_TRANSFORM",
           "QUANTIZATION_METHODS", "TASK_METRICS", "TASKS", "TREATMENTS", "BeamConfig", "CloudConfig",
           "CustomConfig", "DataConfig", "EvaluationConfig", "FeatureConfig", "LabelConfig", "Metric",
           "ModelCardConfig", "ModelConfig", "PipelineConfig", "QuantizationConfig", "TrainingConfig", "TransformConfig",
           "ValidationConfig",
           "default_float_serving_dir", "default_gates", "default_metadata_path", "is_remote",
           "default_schema_file", "ConfigError", "resolve_data_path", "MAX_LISTED", "listed"]
