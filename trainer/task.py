"""TFX Trainer entry point: `trainer.task.run_fn`.

Trains the tf_keras model on the raw examples, transformed by the tf.Transform graph, under a distribution strategy, writes TensorBoard logs
and `training_summary.json` to the model run dir, and exports the SavedModel (trainer/export.py).
"""
from __future__ import annotations

import json
import logging
import math
import os
import tempfile
from typing import Any, Dict, List, Optional

import tensorflow as tf
import tensorflow_transform as tft
import tf_keras as keras

from config import CustomConfig
from preprocessing.transform import transformed_name
from trainer import strategy as strategy_lib
from trainer.autograph_rules import skip_tf_keras
from trainer.export import export_serving_model
from trainer.model import build_model, load_weights_from_saved_model, num_classes, vocab_sizes

SUMMARY_FILE = "training_summary.json"


def _input_fn(file_pattern: List[str], data_accessor, tf_transform_output: tft.TFTransformOutput,
              label_key: str, task: str, batch_size: int) -> tf.data.Dataset:
    """Batches of (transformed features, label) from RAW examples: Transform does not materialize its output
    (its analyzers ran over the whole training split; the Trainer reads only train_steps batches), so the
    same tf.Transform graph that serving runs is applied here, a batch at a time."""
    from tfx_bsl.public import tfxio

    dataset = data_accessor.tf_dataset_factory(
        file_pattern, tfxio.TensorFlowDatasetOptions(batch_size=batch_size, num_epochs=1),
        tf_transform_output.raw_metadata.schema)
    transform_layer = tf_transform_output.transform_features_layer()

    def transform(raw):
        features = transform_layer(raw)
        return features, features.pop(label_key)

    # Transform each example once, then replay the transformed batches from memory.
    dataset = dataset.map(transform, num_parallel_calls=tf.data.AUTOTUNE).cache().repeat()
    if task in ("binary", "regression"):  # heads with one unit: labels shaped [batch, 1]
        dataset = dataset.map(lambda x, y: (x, tf.reshape(tf.cast(y, tf.float32), [-1, 1])))
    return dataset.prefetch(tf.data.AUTOTUNE)


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
    config = CustomConfig.from_json(fn_args.custom_config)
    task = config.label.task
    label_key = transformed_name(config.label.column)
    tf_transform_output = tft.TFTransformOutput(fn_args.transform_output)

    strategy = strategy_lib.make_strategy()
    batch_size = strategy_lib.global_batch_size(config.training.batch_size_per_replica, strategy)
    train_dataset = _input_fn(fn_args.train_files, fn_args.data_accessor, tf_transform_output, label_key,
                              task, batch_size)
    eval_dataset = _input_fn(fn_args.eval_files, fn_args.data_accessor, tf_transform_output, label_key,
                             task, batch_size)
    with strategy.scope():
        model = build_model(config.features, vocab_sizes(tf_transform_output, config.features), task,
                            num_classes(tf_transform_output, task), config.model)
    warm_start = (warm_start_from(model, fn_args.base_model) if config.training.warm_start
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
        "batch_size_per_replica": config.training.batch_size_per_replica,
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
