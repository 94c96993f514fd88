"""Distribution strategy and batch sizing for the Trainer.

- TF_CONFIG naming more than one worker -> MultiWorkerMirroredStrategy (only the chief exports the model).
- Otherwise MirroredStrategy over every local GPU, or, with no GPU, over every logical CPU device (one CPU
  device on a plain machine; tests configure two with tf.config.set_logical_device_configuration).
Global batch = per-replica batch x num_replicas_in_sync (TFX leaves this to the user: tfx#4792).
"""
from __future__ import annotations

import json
import os
from typing import Any, Dict, Optional

import tensorflow as tf


def tf_config(environ: Optional[Dict[str, str]] = None) -> Dict[str, Any]:
    raw = (environ if environ is not None else os.environ).get("TF_CONFIG", "")
    if not raw:
        return {}
    try:
        return json.loads(raw)
    except json.JSONDecodeError as e:
        raise ValueError(f"TF_CONFIG is not valid JSON: {e}") from None


def is_multi_worker(config: Dict[str, Any]) -> bool:
    cluster = config.get("cluster", {})
    return len(cluster.get("worker", [])) + len(cluster.get("chief", [])) > 1


def is_chief(config: Dict[str, Any]) -> bool:
    """The chief writes the model: the `chief` task, or worker 0 when the cluster has no chief."""
    if not is_multi_worker(config):
        return True
    task = config.get("task", {})
    if "chief" in config.get("cluster", {}):
        return task.get("type") == "chief"
    return task.get("type") == "worker" and int(task.get("index", 0)) == 0


def make_strategy(environ: Optional[Dict[str, str]] = None) -> tf.distribute.Strategy:
    if is_multi_worker(tf_config(environ)):
        return tf.distribute.MultiWorkerMirroredStrategy()
    gpus = tf.config.list_logical_devices("GPU")
    if gpus:
        return tf.distribute.MirroredStrategy([d.name for d in gpus])
    # CPU replicas reduce through one device: the default collective all-reduce on CPUs mismatches
    # instance keys when a process builds a second strategy (e.g. two pipelines in one test session).
    return tf.distribute.MirroredStrategy([d.name for d in tf.config.list_logical_devices("CPU")],
                                          cross_device_ops=tf.distribute.ReductionToOneDevice())


def strategy_name(strategy: tf.distribute.Strategy) -> str:
    """The public name: MultiWorkerMirroredStrategy's class is CollectiveAllReduceStrategy."""
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return "MultiWorkerMirroredStrategy"
    return type(strategy).__name__


def global_batch_size(batch_size_per_replica: int, strategy: tf.distribute.Strategy) -> int:
    return batch_size_per_replica * strategy.num_replicas_in_sync
