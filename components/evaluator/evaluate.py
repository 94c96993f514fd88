"""ColumnarEvaluator's work (its executor, components/evaluator/executor.py, imports this when it runs): TFX's
Evaluator contract (the same EvalConfig, inputs, outputs, TFMA's output files and the same blessing) with the
metrics computed a batch at a time.

Stock TFMA splits every batch into one Python dict per example and feeds each metric's combiner example by
example; on the taxi model that is ~90% of the Evaluator's time (a 150k-row profile: unbatching 28%,
per-example combiner inputs 25%, the model 7%). Here a Beam pipeline reads the eval split in batches (of
serialized tf.Examples, or of a Parquet payload's columns), runs each model's signatures on a batch, slices it
on its slicing columns alone, and sums the batch with numpy (components/evaluator/metrics.py);
one CombineFn merges the sums. TFMA's own code then does the rest: the EvalConfig defaults
(update_eval_config_with_defaults), threshold checks (metrics_validator.validate_metrics) and the writers, so
`tfma.load_metrics`, `tfma.load_validation_result` and `tfma.load_eval_result` read the output as TFMA's.
"""
from __future__ import annotations

import os
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple

import apache_beam as beam
import numpy as np
import tensorflow_model_analysis as tfma
from tensorflow_model_analysis import constants as tfma_constants
from tensorflow_model_analysis.evaluators import metrics_validator
from tensorflow_model_analysis.writers import eval_config_writer, metrics_plots_and_validations_writer
from tfx import types
from tfx.components.evaluator import constants
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import io_utils, json_utils, path_utils, proto_utils

from components.evaluator.metrics import METRIC_NAMES, Sums, batch_sums, metric_value
from components.evaluator.read import ReadBatches, payload_columns
from components.evaluator.slices import ExampleCells, arrow_cells, slice_columns, slices_of
from preprocessing.payload import encode_examples, single_value_columns
from serving.layout import EXAMPLES_SIGNATURE, JSON_SIGNATURE, read_feature_info


def _metric_classes(eval_config: tfma.EvalConfig) -> List[str]:
    """The metric classes of the config, each one the columnar Evaluator computes (else a clear error)."""
    classes = []
    for spec in eval_config.metrics_specs:
        for metric in spec.metrics:
            if metric.class_name not in METRIC_NAMES or metric.module or metric.config not in ("", "{}"):
                raise ValueError(f"evaluation: metric {metric.class_name!r} (module {metric.module!r}, config "
                                 f"{metric.config!r}) is not one the columnar Evaluator computes: "
                                 f"{', '.join(METRIC_NAMES)} with default settings. Use the stock TFMA "
                                 f"Evaluator for it.")
            classes.append(metric.class_name)
    return list(dict.fromkeys(classes))


def _model_paths(eval_config: tfma.EvalConfig, input_dict: Dict[str, List[types.Artifact]]) -> Dict[str, str]:
    """Each model spec's name and its SavedModel directory (Format-Serving of the Model artifact)."""
    paths = {}
    for spec in eval_config.model_specs:
        key = (standard_component_specs.BASELINE_MODEL_KEY if spec.is_baseline
               else standard_component_specs.MODEL_KEY)
        artifact = artifact_utils.get_single_instance(input_dict[key])
        paths[spec.name] = path_utils.serving_model_path(artifact.uri,
                                                         path_utils.is_old_model_artifact(artifact))
    return paths


def feature_infos(model_paths: Dict[str, str]) -> Dict[str, Optional[Dict[str, Any]]]:
    """Each model's features file (serving/layout.py: raw features, label, JSON inputs), read once per
    SavedModel; None for a model without one (not tfxp's)."""
    by_path: Dict[str, Optional[Dict[str, Any]]] = {}
    for path in sorted(set(model_paths.values())):
        try:
            by_path[path] = read_feature_info(path)
        except (OSError, ValueError):
            by_path[path] = None
    return {name: by_path[path] for name, path in model_paths.items()}


class _ScoreBatches(beam.DoFn):
    """A batch of the eval split -> {slice key: {model name: Sums of the batch}}. A batch is a list of
    serialized raw tf.Examples (a tf.Example payload) or a RecordBatch of a Parquet payload's columns. The
    label is the transformed label (the model spec's preprocessing function), as TFMA reads it; the
    predictions are the serving signature's output (for a column batch, its JSON twin where the model has
    one: see setup)."""

    def __init__(self, eval_config: tfma.EvalConfig, model_paths: Dict[str, str],
                 infos: Dict[str, Optional[Dict[str, Any]]], task: str):
        self._specs = {spec.name: spec for spec in eval_config.model_specs}
        self._slice_columns = slice_columns(eval_config)
        self._candidate = next(spec for spec in eval_config.model_specs if not spec.is_baseline)
        self._paths = model_paths
        self._infos = infos  # feature_infos(model_paths)
        self._task = task
        self._models: Dict[str, Any] = {}

    def setup(self):
        import tensorflow as tf

        # A model given as both candidate and baseline is loaded once.
        loaded = {path: tf.saved_model.load(path) for path in set(self._paths.values())}
        self._models = {name: loaded[path] for name, path in self._paths.items()}
        self._example_cells = ExampleCells(self._slice_columns)
        # Column batches (a Parquet payload) skip the tf.Example encoding where the model allows it: each
        # model scored through its JSON signature (serving_default's function, fed one dense column per raw
        # feature), the label transformed from examples of the label column alone.
        self._json_inputs = {name: info.get("json_inputs") for name, info in self._infos.items()
                             if info and JSON_SIGNATURE in self._models[name].signatures
                             and self._specs[name].signature_name in ("", EXAMPLES_SIGNATURE)}
        self._raw_label = (self._infos[self._candidate.name] or {}).get("label")

    def _predictions(self, name: str, serialized) -> np.ndarray:
        spec = self._specs[name]
        outputs = self._models[name].signatures[spec.signature_name or "serving_default"](examples=serialized)
        if spec.prediction_key:
            return outputs[spec.prediction_key].numpy()
        if len(outputs) != 1:
            raise ValueError(f"model {name!r}: the signature has outputs {sorted(outputs)}; set prediction_key")
        return next(iter(outputs.values())).numpy()

    def _json_predictions(self, name: str, batch, dense: Dict[Tuple[str, ...], Any]) -> Optional[np.ndarray]:
        """The model's predictions for a column batch through its JSON signature; None where it has none, or
        the batch does not fit it (a missing column, a cell with several values). dense: the batch's dense
        columns per set of input names, filled here, so that models with the same inputs (a candidate and
        its baseline) share one conversion."""
        import tensorflow as tf

        inputs = self._json_inputs.get(name)
        if not inputs:
            return None
        names = tuple(sorted(inputs))
        if names not in dense:
            dense[names] = single_value_columns(batch, names)
        columns = dense[names]
        if not columns:
            return None
        outputs = self._models[name].signatures[JSON_SIGNATURE](
            **{inputs[feature]: tf.constant(values) for feature, values in columns.items()})
        return outputs[self._specs[name].prediction_key or "predictions"].numpy()

    def _labels(self, serialized) -> np.ndarray:
        spec = self._candidate
        features: Dict[str, Any] = {}
        for function in spec.preprocessing_function_names:  # TFMA merges their outputs
            features.update(self._models[spec.name].signatures[function](examples=serialized))
        if spec.label_key not in features:
            raise ValueError(f"label {spec.label_key!r} is not an output of the candidate's preprocessing "
                             f"functions {list(spec.preprocessing_function_names)}: {sorted(features)}")
        return features[spec.label_key].numpy()

    def _label_column_labels(self, batch) -> Optional[np.ndarray]:
        """The labels of a column batch from examples of its label column alone; None when it has no label
        column, or (from then on) when the raw schema requires other features."""
        import pyarrow as pa
        import tensorflow as tf

        if self._raw_label not in batch.schema.names:
            return None
        only_label = pa.RecordBatch.from_arrays([batch.column(batch.schema.get_field_index(self._raw_label))],
                                                [self._raw_label])
        try:
            return self._labels(tf.constant(encode_examples(only_label)))
        except tf.errors.InvalidArgumentError:
            self._raw_label = None
            return None

    def process(self, batch) -> Iterable[Dict[Tuple, Dict[str, Sums]]]:
        """{slice key: {model name: Sums}} of one batch: the overall slice () and the config's slices."""
        import pyarrow as pa
        import tensorflow as tf

        serialized = None
        if isinstance(batch, pa.RecordBatch):
            cells = arrow_cells(batch, self._slice_columns)
            labels = self._label_column_labels(batch)
            if labels is None:
                serialized = tf.constant(encode_examples(batch))
                labels = self._labels(serialized)
        else:
            serialized = tf.constant(batch)
            cells = self._example_cells(batch, serialized) if self._slice_columns else {}
            labels = self._labels(serialized)
        # The same model under the same signature is scored once: a re-run whose Trainer came from cache
        # evaluates the latest blessed model against itself.
        scored: Dict[Tuple, np.ndarray] = {}
        dense: Dict[Tuple[str, ...], Any] = {}  # a column batch's JSON inputs, per set of names
        predictions = {}
        for name, spec in self._specs.items():
            key = (self._paths[name], spec.signature_name, spec.prediction_key)
            if key not in scored:
                values = self._json_predictions(name, batch, dense) if serialized is None else None
                if values is None:
                    if serialized is None:
                        serialized = tf.constant(encode_examples(batch))
                    values = self._predictions(name, serialized)
                scored[key] = values
            predictions[name] = scored[key]
        yield {slice_key: {name: batch_sums(self._task, labels[index], values[index])
                           for name, values in predictions.items()}
               for slice_key, index in slices_of(len(labels), cells).items()}


class _MergeSums(beam.CombineFn):
    """Merges {slice key: {model name: Sums}} across batches."""

    def create_accumulator(self) -> Dict[Tuple, Dict[str, Sums]]:
        return {}

    def add_input(self, accumulator, sums):
        for slice_key, by_model in sums.items():
            merged = accumulator.setdefault(slice_key, {})
            for name, value in by_model.items():
                merged.setdefault(name, Sums()).merge(value)
        return accumulator

    def merge_accumulators(self, accumulators):
        merged: Dict[Tuple, Dict[str, Sums]] = {}
        for accumulator in accumulators:
            self.add_input(merged, accumulator)
        return merged

    def extract_output(self, accumulator):
        return accumulator


def sliced_metrics(eval_config: tfma.EvalConfig, classes: List[str], slice_key: Tuple,
                   sums: Dict[str, Sums]) -> Tuple[Tuple, Dict[tfma.metrics.MetricKey, float]]:
    """TFMA's (slice key, metrics) of one slice: each model's metrics, and with a baseline each candidate
    metric's difference from it (TFMA's diff keys, which change thresholds check)."""
    baseline = next((s.name for s in eval_config.model_specs if s.is_baseline), None)
    metrics: Dict[tfma.metrics.MetricKey, float] = {}
    for spec in eval_config.model_specs:
        model_sums = sums.get(spec.name, Sums())
        for class_name in classes:
            key = tfma.metrics.MetricKey(name=METRIC_NAMES[class_name], model_name=spec.name,
                                         example_weighted=False)
            metrics[key] = metric_value(class_name, model_sums)
    if baseline is not None:
        for key, value in list(metrics.items()):
            if key.model_name != baseline:
                metrics[key.make_diff_key()] = value - metrics[key.make_baseline_key(baseline)]
    return slice_key, metrics


def evaluate(make_beam_pipeline: Callable[[], beam.Pipeline], input_dict: Dict[str, List[types.Artifact]],
             output_dict: Dict[str, List[types.Artifact]], exec_properties: Dict[str, Any]) -> None:
    """The Evaluator's inputs, outputs and exec properties (an EvalConfig is required), in a Beam pipeline
    from `make_beam_pipeline` (the executor's, with its beam_pipeline_args)."""
    has_baseline = bool(input_dict.get(standard_component_specs.BASELINE_MODEL_KEY))
    eval_config = tfma.EvalConfig()
    proto_utils.json_to_proto(exec_properties[standard_component_specs.EVAL_CONFIG_KEY], eval_config)
    # As TFX's Evaluator: rubber stamp (a change threshold is ignored when there is no baseline).
    eval_config = tfma.utils.update_eval_config_with_defaults(eval_config, has_baseline=has_baseline,
                                                              rubber_stamp=True)
    tfma.utils.verify_eval_config(eval_config)
    classes = _metric_classes(eval_config)
    slicing = slice_columns(eval_config)  # refuses unsupported slicing specs before any work
    task = exec_properties["task"]
    splits = json_utils.loads(exec_properties.get(standard_component_specs.EXAMPLE_SPLITS_KEY) or "null")
    examples = artifact_utils.get_single_instance(input_dict[standard_component_specs.EXAMPLES_KEY])
    model_paths = _model_paths(eval_config, input_dict)
    infos = feature_infos(model_paths)
    output_uri = artifact_utils.get_single_uri(output_dict[constants.EVALUATION_KEY])

    with make_beam_pipeline() as pipeline:
        metrics = (pipeline
                   | "ReadBatches" >> ReadBatches(  # pylint: disable=no-value-for-parameter
                       examples, splits or ["eval"], payload_columns(infos.values(), slicing))
                   | "Score" >> beam.ParDo(_ScoreBatches(eval_config, model_paths, infos, task))
                   | "MergeSums" >> beam.CombineGlobally(_MergeSums())
                   | "Metrics" >> beam.FlatMap(lambda sums: [
                       sliced_metrics(eval_config, classes, key, by_model)
                       # the overall slice even without examples (its metrics are NaN then)
                       for key, by_model in sorted({(): {}, **sums}.items(), key=lambda kv: repr(kv[0]))]))
        evaluation = {
            tfma_constants.METRICS_KEY: metrics,
            tfma_constants.VALIDATIONS_KEY: metrics | "Validate" >> beam.Map(
                metrics_validator.validate_metrics, eval_config=eval_config),
            tfma_constants.PLOTS_KEY: pipeline | "NoPlots" >> beam.Create([]),
            tfma_constants.ATTRIBUTIONS_KEY: pipeline | "NoAttributions" >> beam.Create([]),
        }
        writers = [
            eval_config_writer.EvalConfigWriter(output_uri, eval_config=eval_config,
                                                model_locations=model_paths),
            metrics_plots_and_validations_writer.MetricsPlotsAndValidationsWriter(
                output_paths={key: os.path.join(output_uri, key) for key in (
                    tfma_constants.METRICS_KEY, tfma_constants.PLOTS_KEY, tfma_constants.ATTRIBUTIONS_KEY,
                    tfma_constants.VALIDATIONS_KEY)},
                eval_config=eval_config),  # rubber_stamp=False, as TFX's Evaluator
        ]
        _ = evaluation | "WriteResults" >> tfma.WriteResults(writers=writers)
    write_blessing(input_dict, output_dict, exec_properties, output_uri)


def write_blessing(input_dict, output_dict, exec_properties, output_uri: str) -> None:
    """The blessing artifact, exactly as TFX's Evaluator writes it (LatestBlessedModelStrategy and the
    pusher read these properties)."""
    blessing = artifact_utils.get_single_instance(output_dict[standard_component_specs.BLESSING_KEY])
    model = input_dict[standard_component_specs.MODEL_KEY][0]
    blessing.set_string_custom_property(constants.ARTIFACT_PROPERTY_CURRENT_MODEL_URI_KEY, model.uri)
    blessing.set_int_custom_property(constants.ARTIFACT_PROPERTY_CURRENT_MODEL_ID_KEY, model.id)
    if input_dict.get(standard_component_specs.BASELINE_MODEL_KEY):
        baseline = input_dict[standard_component_specs.BASELINE_MODEL_KEY][0]
        blessing.set_string_custom_property(constants.ARTIFACT_PROPERTY_BASELINE_MODEL_URI_KEY, baseline.uri)
        blessing.set_int_custom_property(constants.ARTIFACT_PROPERTY_BASELINE_MODEL_ID_KEY, baseline.id)
    if "current_component_id" in exec_properties:
        blessing.set_string_custom_property("component_id", exec_properties["current_component_id"])
    blessed = tfma.load_validation_result(output_uri).validation_ok
    io_utils.write_string_file(os.path.join(
        blessing.uri, constants.BLESSED_FILE_NAME if blessed else constants.NOT_BLESSED_FILE_NAME), "")
    blessing.set_int_custom_property(constants.ARTIFACT_PROPERTY_BLESSED_KEY,
                                     constants.BLESSED_VALUE if blessed else constants.NOT_BLESSED_VALUE)
