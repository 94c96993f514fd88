"""Distribution strategy choice and batch scaling (two logical CPUs are configured in conftest.py)."""
import json

import numpy as np
import pytest
import tensorflow as tf

from trainer import strategy as strategy_lib
from config import FeatureConfig, ModelConfig
from trainer.model import build_model, hidden_units


def tf_config(task_type, index, workers=2, chief=False):
    cluster = {"worker": [f"host{i}:2222" for i in range(workers)]}
    if chief:
        cluster["chief"] = ["chief:2222"]
    return {"TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": task_type, "index": index}})}


def test_no_tf_config_is_single_worker_and_chief():
    assert strategy_lib.tf_config({}) == {}
    assert not strategy_lib.is_multi_worker({})
    assert strategy_lib.is_chief({})


@pytest.mark.parametrize("environ, multi, chief", [
    (tf_config("worker", 0), True, True),
    (tf_config("worker", 1), True, False),
    (tf_config("chief", 0, chief=True), True, True),
    (tf_config("worker", 0, chief=True), True, False),
    (tf_config("worker", 0, workers=1), False, True),
])
def test_tf_config_decides_multi_worker_and_chief(environ, multi, chief):
    config = strategy_lib.tf_config(environ)
    assert strategy_lib.is_multi_worker(config) is multi
    assert strategy_lib.is_chief(config) is chief


def test_bad_tf_config_is_a_clear_error():
    with pytest.raises(ValueError, match="TF_CONFIG is not valid JSON"):
        strategy_lib.tf_config({"TF_CONFIG": "{not json"})


def test_mirrored_over_all_logical_cpus_and_global_batch_scales():
    strategy = strategy_lib.make_strategy(environ={})
    assert isinstance(strategy, tf.distribute.MirroredStrategy)
    assert strategy.num_replicas_in_sync == 2
    assert strategy_lib.global_batch_size(64, strategy) == 128


def test_hidden_units_halve_per_layer():
    assert hidden_units(64, 3) == [64, 32, 16]
    assert hidden_units(8, 3) == [8, 4, 4]


@pytest.mark.parametrize("task, num_classes", [("binary", 1), ("multiclass", 3), ("regression", 1)])
def test_model_head_and_loss_follow_the_task_and_learn_under_two_replicas(task, num_classes):
    rng = np.random.default_rng(0)
    n = 2048
    x = rng.normal(size=n).astype("float32")
    cat = rng.integers(0, 3, size=n)
    if task == "binary":
        y = ((x + (cat == 1)) > 0.5).astype("float32").reshape(-1, 1)
    elif task == "multiclass":
        y = cat.astype("int64")
    else:
        y = (2 * x + cat).astype("float32").reshape(-1, 1)
    features = [FeatureConfig("x", "zscore"), FeatureConfig("c", "vocab")]
    strategy = strategy_lib.make_strategy(environ={})
    with strategy.scope():
        model = build_model(features, {"c": 4}, task, num_classes,
                            ModelConfig(width=16, depth=2, learning_rate=0.02))
    dataset = tf.data.Dataset.from_tensor_slices(({"x_xf": x, "c_xf": cat}, y)).batch(
        strategy_lib.global_batch_size(32, strategy)).repeat()
    history = model.fit(dataset, steps_per_epoch=100, epochs=2, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    outputs = model.predict({"x_xf": x[:8], "c_xf": cat[:8]}, verbose=0)
    assert outputs.shape == (8, num_classes)
    if task == "binary":
        assert history.history["binary_accuracy"][-1] > 0.9
    if task == "multiclass":
        np.testing.assert_allclose(outputs.sum(axis=1), 1.0, rtol=1e-4)
        assert history.history["sparse_categorical_accuracy"][-1] > 0.9


@pytest.mark.parametrize("files, pipelines, index, policy, expected", [
    (["a", "b", "c", "d"], 2, 1, "FILE", ["b", "d"]),  # each worker reads only its files
    (["a", "b", "c"], 2, 0, "FILE", ["a", "c"]),
    (["a"], 2, 1, "DATA", ["a"]),  # fewer files than workers: all read, every 2nd batch kept
    (["a", "b"], 1, 0, "OFF", ["a", "b"]),  # one worker (MirroredStrategy): no sharding
])
def test_input_shards_by_file_when_the_split_has_enough_files(files, pipelines, index, policy, expected):
    from trainer.task import input_shard

    shard = input_shard(files, tf.distribute.InputContext(num_input_pipelines=pipelines, input_pipeline_id=index,
                                                          num_replicas_in_sync=pipelines))
    assert (shard.policy, shard.index, shard.count, shard.files) == (policy, index, pipelines, expected)
