"""TFX Trainer entry point: `trainer.task.run_fn`.

Trains the tf_keras model on the transformed examples under a distribution strategy, writes TensorBoard logs
and `training_summary.json` to the model run dir, and exports a SavedModel with two signatures:
  serving_default(examples)    serialized tf.Example of RAW features -> {"predictions": ...}
                               (the tf.Transform graph is inside: no training/serving skew)
  transform_features(examples) serialized raw tf.Example (with label) -> transformed features, for TFMA.
"""
from __future__ import annotations

import json
import logging
import math
import os
import tempfile
from typing import Any, Dict, List, Mapping, Optional

import tensorflow as tf
import tensorflow_transform as tft
import tf_keras as keras

from serving.client import FEATURES_FILE  # read back to encode requests; TF Serving ignores assets.extra/
from preprocessing.transform import LABEL_VOCAB, transformed_name, vocab_filename
from trainer import strategy as strategy_lib
from trainer.autograph_rules import skip_tf_keras
from trainer.model import build_model, load_weights_from_saved_model

SUMMARY_FILE = "training_summary.json"


def _input_fn(file_pattern: List[str], data_accessor, tf_transform_output: tft.TFTransformOutput,
              label_key: str, task: str, batch_size: int) -> tf.data.Dataset:
    from tfx_bsl.public import tfxio

    dataset = data_accessor.tf_dataset_factory(
        file_pattern,
        tfxio.TensorFlowDatasetOptions(batch_size=batch_size, label_key=label_key, num_epochs=1),
        tf_transform_output.transformed_metadata.schema)
    # Parse and decompress the (small) transformed split once, then replay it from memory.
    dataset = dataset.cache().repeat()
    if task in ("binary", "regression"):  # heads with one unit: labels shaped [batch, 1]
        dataset = dataset.map(lambda x, y: (x, tf.reshape(tf.cast(y, tf.float32), [-1, 1])))
    return dataset.prefetch(tf.data.AUTOTUNE)


def vocab_sizes(tf_transform_output: tft.TFTransformOutput, features) -> Dict[str, int]:
    return {f["name"]: tf_transform_output.vocabulary_size_by_name(vocab_filename(f["name"])) + f["oov_buckets"]
            for f in features if f["treatment"] == "vocab"}


def num_classes(tf_transform_output: tft.TFTransformOutput, task: str) -> int:
    """Units of the output layer: the label vocabulary size for multiclass, else 1."""
    return tf_transform_output.vocabulary_size_by_name(LABEL_VOCAB) if task == "multiclass" else 1


def _raw_spec(tf_transform_output: tft.TFTransformOutput, names) -> Dict[str, Any]:
    spec = tf_transform_output.raw_feature_spec()
    return {name: spec[name] for name in names}


def add_signatures(model: keras.Model, tf_transform_output: tft.TFTransformOutput,
                   custom_config: Mapping[str, Any]) -> Dict[str, Any]:
    """Attaches the TFT layer to the model (so its tables are tracked) and builds the export signatures."""
    feature_names = [f["name"] for f in custom_config["features"]]
    label = custom_config["label"]["column"]
    model.tft_layer = tf_transform_output.transform_features_layer()
    serving_spec = _raw_spec(tf_transform_output, feature_names)
    eval_spec = _raw_spec(tf_transform_output, feature_names + [label])

    @tf.function(input_signature=[tf.TensorSpec(shape=[None], dtype=tf.string, name="examples")])
    def serve_tf_examples(serialized):
        transformed = model.tft_layer(tf.io.parse_example(serialized, serving_spec))
        transformed.pop(transformed_name(label), None)
        return {"predictions": model(transformed)}

    @tf.function(input_signature=[tf.TensorSpec(shape=[None], dtype=tf.string, name="examples")])
    def transform_features(serialized):
        return model.tft_layer(tf.io.parse_example(serialized, eval_spec))

    return {"serving_default": serve_tf_examples, "transform_features": transform_features}


def feature_info(tf_transform_output: tft.TFTransformOutput, custom_config: Mapping[str, Any]) -> Dict[str, Any]:
    """Raw feature dtypes of the serving signature, the label and task, and class names (multiclass)."""
    spec = tf_transform_output.raw_feature_spec()
    dtype_names = {tf.string: "string", tf.int64: "int64", tf.float32: "float"}
    label = custom_config["label"]
    info = {"features": {f["name"]: dtype_names[spec[f["name"]].dtype] for f in custom_config["features"]},
            "label": label["column"], "label_dtype": dtype_names[spec[label["column"]].dtype],
            "task": label["task"], "output": "predictions"}
    if label["task"] == "multiclass":
        info["classes"] = [c.decode() for c in tf_transform_output.vocabulary_by_name(LABEL_VOCAB)]
    return info


def export_serving_model(model: keras.Model, tf_transform_output: tft.TFTransformOutput,
                         custom_config: Mapping[str, Any], export_dir: str) -> None:
    """SavedModel with the serving signatures, plus assets.extra/tfxp_features.json. Its checkpoint names
    the Dense weights `layer_with_weights-<i>/{kernel,bias}` (the quantizer reads them from there)."""
    # A new, uncompiled model over the same layers: no optimizer slots or metric state in the checkpoint,
    # only what serving needs.
    model = keras.Model(model.inputs, model.outputs)
    signatures = add_signatures(model, tf_transform_output, custom_config)
    tf.saved_model.save(model, export_dir, signatures=signatures)
    write_feature_info(export_dir, tf_transform_output, custom_config)


def write_feature_info(export_dir: str, tf_transform_output: tft.TFTransformOutput,
                       custom_config: Mapping[str, Any]) -> None:
    tf.io.gfile.makedirs(os.path.join(export_dir, os.path.dirname(FEATURES_FILE)))
    with tf.io.gfile.GFile(os.path.join(export_dir, FEATURES_FILE), "w") as f:
        json.dump(feature_info(tf_transform_output, custom_config), f, indent=2)


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite: the model is not exported, so nothing downstream can use it."""


def check_converged(history: Dict[str, List[float]]) -> None:
    for name in ("loss", "val_loss"):
        values = history.get(name) or []
        if values and not all(math.isfinite(v) for v in values):
            raise TrainingDiverged(f"training diverged: {name} is {values[-1]} (lower model.learning_rate, "
                                   f"now in the config, or check the data for extreme values)")


def warm_start_from(model: keras.Model, base_model_dir: Optional[str]) -> Dict[str, Any]:
    """Loads the latest blessed model's weights into `model` when every layer's shape matches (a grown
    vocabulary changes the first layer's): returns what happened, for training_summary.json."""
    if not base_model_dir:
        return {"from": None, "reason": "no blessed model yet"}
    try:
        load_weights_from_saved_model(model, base_model_dir)
    except (ValueError, tf.errors.OpError) as e:
        logging.warning("Trainer: training from scratch, not warm-started from %s: %s", base_model_dir, e)
        return {"from": None, "reason": f"shapes differ: {e}"}
    logging.info("Trainer: warm-started from %s", base_model_dir)
    return {"from": base_model_dir, "reason": None}


def train_and_export(fn_args) -> Dict[str, Any]:
    """Trains and exports; returns the training summary (also written to the model run dir)."""
    skip_tf_keras()
    config = fn_args.custom_config
    task = config["label"]["task"]
    label_key = transformed_name(config["label"]["column"])
    tf_transform_output = tft.TFTransformOutput(fn_args.transform_output)

    strategy = strategy_lib.make_strategy()
    batch_size = strategy_lib.global_batch_size(config["training"]["batch_size_per_replica"], strategy)
    train_dataset = _input_fn(fn_args.train_files, fn_args.data_accessor, tf_transform_output, label_key,
                              task, batch_size)
    eval_dataset = _input_fn(fn_args.eval_files, fn_args.data_accessor, tf_transform_output, label_key,
                             task, batch_size)
    with strategy.scope():
        model = build_model(config["features"], vocab_sizes(tf_transform_output, config["features"]), task,
                            num_classes(tf_transform_output, task), config["model"])
    warm_start = (warm_start_from(model, fn_args.base_model) if config["training"].get("warm_start")
                  else {"from": None, "reason": "training.warm_start is off"})

    history = model.fit(
        train_dataset, epochs=1, steps_per_epoch=fn_args.train_steps,
        validation_data=eval_dataset, validation_steps=fn_args.eval_steps,
        callbacks=[keras.callbacks.TensorBoard(log_dir=fn_args.model_run_dir, update_freq=50),
                   keras.callbacks.TerminateOnNaN()],
        verbose=2)
    check_converged(history.history)

    summary = {
        "strategy": type(strategy).__name__,
        "num_replicas_in_sync": strategy.num_replicas_in_sync,
        "batch_size_per_replica": config["training"]["batch_size_per_replica"],
        "global_batch_size": batch_size,
        "train_steps": fn_args.train_steps,
        "eval_steps": fn_args.eval_steps,
        "num_classes": num_classes(tf_transform_output, task),
        "warm_start": warm_start,
        "metrics": {name: float(values[-1]) for name, values in history.history.items()},
    }
    is_chief = strategy_lib.is_chief(strategy_lib.tf_config())
    # Non-chief workers of a multi-worker run must save too (collective ops), but to a throwaway dir.
    export_dir = fn_args.serving_model_dir if is_chief else tempfile.mkdtemp(prefix="tfxp_worker_model_")
    export_serving_model(model, tf_transform_output, config, export_dir)
    if is_chief:
        tf.io.gfile.makedirs(fn_args.model_run_dir)
        with tf.io.gfile.GFile(os.path.join(fn_args.model_run_dir, SUMMARY_FILE), "w") as f:
            json.dump(summary, f, indent=2)
    return summary


def run_fn(fn_args) -> None:
    """TFX Trainer `run_fn` (GenericExecutor)."""
    train_and_export(fn_args)
