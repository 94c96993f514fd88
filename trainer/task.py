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
from trainer.model import STEPS_PER_EXECUTION, build_model, load_weights_from_saved_model, num_classes, vocab_sizes

SUMMARY_FILE = "training_summary.json"
# Training state (weights, optimizer, step) is backed up every this many steps to a directory that a re-run
# of the same Trainer inputs finds again (backup_dir): a killed Trainer, or a restarted worker, resumes there.
# Keras calls batch callbacks once per execution of STEPS_PER_EXECUTION steps, so backups fall on those.
BACKUP_EVERY_STEPS = STEPS_PER_EXECUTION
BACKUP_DIR = "backup"  # under <pipeline_root>/Trainer/


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


class StepBackupAndRestore(keras.callbacks.BackupAndRestore):
    """Keras' BackupAndRestore, whose checkpoint records the last finished step. tf_keras 2.16 records the
    step the last execution began at (on_train_batch_begin), so with steps_per_execution = 50 a run killed
    after step 50 resumed at step 1 and trained 49 steps twice (measured: resumed_from step 1)."""

    def _backup(self, epoch, batch=0):
        self._training_state._ckpt_saved_batch.assign(batch)  # noqa: SLF001 - the value it checkpoints
        super()._backup(epoch, batch)


def backup_dir(fn_args) -> str:
    """<pipeline_root>/Trainer/backup/<digest of the Trainer's inputs>: the same for every execution that
    trains on the same data, transform graph, config and steps (TFX gives each execution its own model run
    dir, <pipeline_root>/Trainer/model_run/<execution id>, so a backup there would never be found again)."""
    import hashlib

    key = json.dumps([sorted(fn_args.train_files), sorted(fn_args.eval_files), fn_args.transform_output,
                      fn_args.custom_config, fn_args.train_steps, fn_args.eval_steps, fn_args.base_model],
                     sort_keys=True, default=str)
    trainer_dir = os.path.dirname(os.path.dirname(fn_args.model_run_dir.rstrip("/")))
    return os.path.join(trainer_dir, BACKUP_DIR, hashlib.sha256(key.encode()).hexdigest()[:16])


def backed_up_progress(directory: str) -> Optional[Dict[str, int]]:
    """The epoch and the steps done in it that BackupAndRestore saved last under `directory` (its chief's
    checkpoint: variables ckpt_saved_epoch and ckpt_saved_batch, the last finished batch), or None."""
    checkpoint = tf.train.latest_checkpoint(os.path.join(directory, "chief"))
    if checkpoint is None:
        return None
    reader = tf.train.load_checkpoint(checkpoint)
    values = {name.split("/")[0]: int(reader.get_tensor(name)) for name in reader.get_variable_to_shape_map()
              if name.split("/")[0] in ("ckpt_saved_epoch", "ckpt_saved_batch")}
    return {"epoch": values.get("ckpt_saved_epoch", 0), "step": values.get("ckpt_saved_batch", -1) + 1}


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

    backup = backup_dir(fn_args)
    resumed = backed_up_progress(backup)
    if resumed:
        logging.info("Trainer: resuming from the backup in %s (step %d)", backup, resumed["step"])
    history = model.fit(
        train_dataset, epochs=1, steps_per_epoch=fn_args.train_steps,
        validation_data=eval_dataset, validation_steps=fn_args.eval_steps,
        callbacks=[StepBackupAndRestore(backup, save_freq=max(1, BACKUP_EVERY_STEPS // STEPS_PER_EXECUTION),
                                        delete_checkpoint=True),
                   keras.callbacks.TensorBoard(log_dir=fn_args.model_run_dir, update_freq=50),
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
        "resumed_from": resumed,  # the backed-up epoch and step training resumed at, or None
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
