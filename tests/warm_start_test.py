"""Warm start: the latest blessed model's weights are loaded when every layer's shape matches, and the
model trains from scratch (weights untouched) when a vocabulary grew."""
import numpy as np
import pytest
import tensorflow as tf
import tf_keras as keras

from config import FeatureConfig, ModelConfig
from trainer.export import keras_weight_holders, save_lean
from trainer.model import build_model
from trainer.task import warm_start_from

FEATURES = [FeatureConfig("x", "zscore"), FeatureConfig("c", "vocab")]
MODEL = ModelConfig(width=8, depth=2, learning_rate=0.01)


def exported(tmp_path, vocab_size, keras_object_graph=False):
    """A base model saved as trainer/export.py saves one (save_lean: the variables under Keras's checkpoint
    keys, no Keras objects) or, keras_object_graph, as tfxp versions before it did (the Keras model)."""
    model = build_model(FEATURES, {"c": vocab_size}, "binary", 2, MODEL)
    path = str(tmp_path / f"base_{vocab_size}")
    served = keras.Model(model.inputs, model.outputs)
    if keras_object_graph:
        tf.saved_model.save(served, path)
    else:
        save_lean(path, {}, **keras_weight_holders(served))
    return model, path


@pytest.mark.parametrize("keras_object_graph", [False, True], ids=["lean", "keras_saved_model"])
def test_matching_shapes_are_warm_started(tmp_path, keras_object_graph):
    base, path = exported(tmp_path, 5, keras_object_graph)
    candidate = build_model(FEATURES, {"c": 5}, "binary", 2, MODEL)
    assert warm_start_from(candidate, path) == {"from": path, "reason": None}
    for loaded, original in zip(candidate.get_weights(), base.get_weights()):
        np.testing.assert_array_equal(loaded, original)


def test_a_grown_vocabulary_trains_from_scratch(tmp_path):
    _, path = exported(tmp_path, 5)
    candidate = build_model(FEATURES, {"c": 7}, "binary", 2, MODEL)
    before = [w.copy() for w in candidate.get_weights()]
    result = warm_start_from(candidate, path)
    assert result["from"] is None and result["reason"].startswith("shapes differ: layer hidden_0")
    for after, original in zip(candidate.get_weights(), before):
        np.testing.assert_array_equal(after, original)


def test_no_blessed_model_yet():
    candidate = build_model(FEATURES, {"c": 5}, "binary", 2, MODEL)
    assert warm_start_from(candidate, None) == {"from": None, "reason": "no blessed model yet"}
