"""TFX Trainer entry point: `trainer.task.run_fn`.

Trains the tf_keras model on the raw examples, transformed by the tf.Transform graph, under a distribution strategy, writes TensorBoard logs
and `training_summary.json` to the model run dir, and exports the SavedModel (trainer/export.py).
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import tempfile
from typing import Any, Dict, List, Optional

from absl import logging
import tensorflow as tf
import tensorflow_transform as tft
import tf_keras as keras

from config import PARQUET_PAYLOAD, CustomConfig, listed
from preprocessing import payload
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
# How the workers of a multi-worker run share a split (input_shard).
FILE_SHARDING, DATA_SHARDING, NO_SHARDING = "FILE", "DATA", "OFF"


@dataclasses.dataclass(frozen=True)
class InputShard:
    """One input pipeline's share of a split: `policy` (FILE, DATA or OFF), pipeline `index` of `count`,
    and the files it reads."""
    policy: str
    index: int
    count: int
    files: List[str]


def input_shard(files: List[str], input_context: tf.distribute.InputContext) -> InputShard:
    """What one input pipeline (one worker) reads of a split. FILE sharding when the split has at least as
    many files as there are input pipelines: each worker reads only its files (every N-th of the sorted
    list), so nothing is read twice; Dataflow's ExampleGen writes many files per split. Otherwise DATA
    sharding, as tf.data's AUTO policy falls back to: every worker reads the split and keeps every N-th
    batch, so each example still trains once per pass (the local ExampleGen writes one file per split)."""
    count, index = input_context.num_input_pipelines, input_context.input_pipeline_id
    if count > 1 and len(files) >= count:
        return InputShard(FILE_SHARDING, index, count, files[index::count])
    return InputShard(DATA_SHARDING if count > 1 else NO_SHARDING, index, count, files)


def _split_files(patterns: List[str]) -> List[str]:
    files = sorted({path for pattern in patterns for path in tf.io.gfile.glob(pattern)})
    if not files:
        raise FileNotFoundError(f"no examples match {', '.join(patterns)}")
    return files


def distributed_input(strategy: tf.distribute.Strategy, file_pattern: List[str], data_accessor,
                      tf_transform_output: tft.TFTransformOutput, label_key: str, task: str,
                      batch_size_per_replica: int, shards: Optional[List[InputShard]] = None,
                      seed: Optional[int] = None):
    """Batches of (transformed features, label) from RAW examples, per replica, sharded over the workers
    (input_shard). Transform does not materialize its output (its analyzers ran over the whole training
    split; the Trainer reads only train_steps batches), so the same tf.Transform graph that serving runs is
    applied here, a batch at a time. Each worker's shard is appended to `shards`. `seed` fixes the order in
    which the examples are shuffled (training.seed)."""
    from tfx_bsl.public import tfxio

    files = _split_files(file_pattern)

    def dataset_fn(input_context: tf.distribute.InputContext) -> tf.data.Dataset:
        shard = input_shard(files, input_context)
        if shards is not None:
            shards.append(shard)
        logging.info("Trainer: input pipeline %d of %d, %s sharding, reads %d of %d files: %s",
                     shard.index + 1, shard.count, shard.policy, len(shard.files), len(files),
                     listed(os.path.basename(path) for path in shard.files))
        schema = tf_transform_output.raw_metadata.schema
        if payload.payload_of(shard.files) == PARQUET_PAYLOAD:  # tfx-bsl's ParquetTFXIO has no tf.data source
            dataset = payload.parquet_dataset(shard.files, schema, batch_size_per_replica, shuffle_seed=seed)
        else:
            dataset = data_accessor.tf_dataset_factory(
                shard.files, tfxio.TensorFlowDatasetOptions(batch_size=batch_size_per_replica, num_epochs=1,
                                                            shuffle_seed=seed), schema)
        if shard.policy == DATA_SHARDING:
            dataset = dataset.shard(shard.count, shard.index)
        transform_layer = tf_transform_output.transform_features_layer()

        def transform(raw):
            features = transform_layer(raw)
            return features, features.pop(label_key)

        # Transform each example once, then replay the transformed batches from memory.
        dataset = dataset.map(transform, num_parallel_calls=tf.data.AUTOTUNE).cache().repeat()
        if task in ("binary", "regression"):  # heads with one unit: labels shaped [batch, 1]
            dataset = dataset.map(lambda x, y: (x, tf.reshape(tf.cast(y, tf.float32), [-1, 1])))
        return dataset.prefetch(tf.data.AUTOTUNE)

    # Sharded and batched per replica by dataset_fn: tf.data's auto-sharding does not apply to it.
    return strategy.distribute_datasets_from_function(dataset_fn)


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

    seed = config.training.seed
    if seed is not None:
        # Weights, dropout and the input shuffle seeded, and TF's kernels restricted to deterministic ones: the
        # same data and config train the same model on the same machine. Op determinism stays on for the rest
        # of this process (TF has no switch back).
        keras.utils.set_random_seed(seed)
        tf.config.experimental.enable_op_determinism()
    strategy = strategy_lib.make_strategy()
    batch_size = strategy_lib.global_batch_size(config.training.batch_size_per_replica, strategy)
    train_shards: List[InputShard] = []
    train_dataset = distributed_input(strategy, fn_args.train_files, fn_args.data_accessor, tf_transform_output,
                                      label_key, task, config.training.batch_size_per_replica, train_shards,
                                      seed=seed)
    eval_dataset = distributed_input(strategy, fn_args.eval_files, fn_args.data_accessor, tf_transform_output,
                                     label_key, task, config.training.batch_size_per_replica)
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
        "strategy": strategy_lib.strategy_name(strategy),
        "num_replicas_in_sync": strategy.num_replicas_in_sync,
        "batch_size_per_replica": config.training.batch_size_per_replica,
        "global_batch_size": batch_size,
        # This worker's share of the train split (one entry per input pipeline it runs).
        "train_input": [dataclasses.asdict(shard) for shard in train_shards],
        "train_steps": fn_args.train_steps,
        "eval_steps": fn_args.eval_steps,
        "num_classes": num_classes(tf_transform_output, task),
        "warm_start": warm_start,
        "seed": seed,
        "resumed_from": resumed,  # the backed-up epoch and step training resumed at, or None
        "metrics": {name: float(values[-1]) for name, values in history.history.items()},
    }
    if not strategy_lib.is_chief(strategy_lib.tf_config()):
        # Non-chief workers of a multi-worker run must save too (the save runs collective ops), but into a
        # local directory that is deleted at once: nothing of theirs lands where a later step could read it.
        with tempfile.TemporaryDirectory(prefix="tfxp_worker_model_") as throwaway:
            export_serving_model(model, tf_transform_output, config, throwaway)
        return summary
    export_serving_model(model, tf_transform_output, config, fn_args.serving_model_dir)
    tf.io.gfile.makedirs(fn_args.model_run_dir)
    with tf.io.gfile.GFile(os.path.join(fn_args.model_run_dir, SUMMARY_FILE), "w") as f:
        json.dump(summary, f, indent=2)
    return summary


def run_fn(fn_args) -> None:
    """TFX Trainer `run_fn` (GenericExecutor)."""
    train_and_export(fn_args)
