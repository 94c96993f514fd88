"""The tf_keras (Keras 2) model: transformed features in, a task-specific head out."""
from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional, Sequence

import tf_keras as keras
import tensorflow as tf

from config import FeatureConfig, ModelConfig
from preprocessing.transform import LABEL_VOCAB, transformed_name, vocab_filename


STEPS_PER_EXECUTION = 50


def vocab_sizes(tf_transform_output, features: Sequence[FeatureConfig]) -> Dict[str, int]:
    """Vocab feature name -> number of integer ids (its vocabulary + OOV buckets)."""
    return {f.name: tf_transform_output.vocabulary_size_by_name(vocab_filename(f.name)) + f.oov_buckets
            for f in features if f.treatment == "vocab"}


def num_classes(tf_transform_output, task: str) -> int:
    """Units of the output layer: the label vocabulary size for multiclass, else 1."""
    return tf_transform_output.vocabulary_size_by_name(LABEL_VOCAB) if task == "multiclass" else 1


def hidden_units(width: int, depth: int) -> list:
    """`depth` layers starting at `width` units, each next layer half as wide (at least 4)."""
    return [max(4, width // (2 ** i)) for i in range(depth)]


def build_model(features: Sequence[FeatureConfig], vocab_sizes: Mapping[str, int], task: str,
                num_classes: int, model_config: ModelConfig, dense=None) -> keras.Model:
    """vocab_sizes: feature name -> number of integer ids (vocabulary + OOV buckets) for vocab features.

    dense(units, activation, name) makes the fully connected layers (default keras.layers.Dense); the
    quantizer passes its own to build the same model with quantized weights.
    """
    dense = dense or (lambda units, activation, name: keras.layers.Dense(units, activation=activation, name=name))
    inputs: Dict[str, keras.Input] = {}
    encoded = []
    for feature in features:
        name = transformed_name(feature.name)
        if feature.treatment == "vocab":
            inputs[name] = keras.Input(shape=(), name=name, dtype=tf.int64)
            encoded.append(keras.layers.CategoryEncoding(
                num_tokens=vocab_sizes[feature.name], output_mode="one_hot", name=f"{name}_onehot")(
                    inputs[name]))
        else:
            inputs[name] = keras.Input(shape=(), name=name, dtype=tf.float32)
            encoded.append(keras.layers.Reshape((1,), name=f"{name}_col")(inputs[name]))
    x = keras.layers.Concatenate(name="features")(encoded) if len(encoded) > 1 else encoded[0]
    for i, units in enumerate(hidden_units(model_config.width, model_config.depth)):
        x = dense(units, "relu", f"hidden_{i}")(x)
    optimizer = keras.optimizers.Adam(learning_rate=model_config.learning_rate)
    if task == "binary":
        output = dense(1, "sigmoid", "predictions")(x)
        loss = keras.losses.BinaryCrossentropy()
        metrics = [keras.metrics.BinaryAccuracy(name="binary_accuracy"), keras.metrics.AUC(name="auc")]
    elif task == "multiclass":
        output = dense(num_classes, "softmax", "predictions")(x)
        loss = keras.losses.SparseCategoricalCrossentropy()
        metrics = [keras.metrics.SparseCategoricalAccuracy(name="sparse_categorical_accuracy")]
    elif task == "regression":
        output = dense(1, None, "predictions")(x)
        loss = keras.losses.MeanSquaredError()
        metrics = [keras.metrics.MeanSquaredError(name="mean_squared_error"),
                   keras.metrics.MeanAbsoluteError(name="mean_absolute_error")]
    else:
        raise ValueError(f"unknown task {task!r}")
    model = keras.Model(inputs=inputs, outputs=output)
    # Many small steps per tf.function call: per-step Python/strategy overhead dominates a small MLP.
    model.compile(optimizer=optimizer, loss=loss, metrics=metrics, steps_per_execution=STEPS_PER_EXECUTION)
    return model


def layers_with_weights(model: keras.Model) -> List[Any]:
    return [layer for layer in model.layers if layer.weights]


def checkpoint_layer_name(index: int) -> str:
    """Keras's name, in a checkpoint, of the index-th layer that has weights (its weights below it by name);
    trainer/export.py saves the serving model's weights under the same names."""
    return f"layer_with_weights-{index}"


def _checkpoint_key(index: int, weight: str) -> str:
    return f"{checkpoint_layer_name(index)}/{weight}/.ATTRIBUTES/VARIABLE_VALUE"


def weights_from_saved_model(model: keras.Model, model_dir: str) -> Optional[List[List[Any]]]:
    """Per layer with weights, its kernel and bias read from an exported tfxp model's checkpoint, checked
    against `model`'s shapes. Raises ValueError naming the first layer that does not match."""
    reader = tf.train.load_checkpoint(f"{model_dir}/variables/variables")
    layers = layers_with_weights(model)
    if reader.has_tensor(_checkpoint_key(len(layers), "kernel")):
        raise ValueError(f"{model_dir} has more layers with weights than this model ({len(layers)})")
    values = []
    for i, layer in enumerate(layers):
        keys = [_checkpoint_key(i, w) for w in ("kernel", "bias")]
        missing = [k for k in keys if not reader.has_tensor(k)]
        if missing:
            raise ValueError(f"{model_dir}: checkpoint has no {missing[0]}: not a model of this tfxp version")
        arrays = [reader.get_tensor(k) for k in keys]
        expected = [tuple(w.shape) for w in layer.weights]
        if [a.shape for a in arrays] != expected:
            raise ValueError(f"layer {layer.name}: weights {[a.shape for a in arrays]} there, {expected} here")
        values.append(arrays)
    return values


def load_weights_from_saved_model(model: keras.Model, model_dir: str) -> None:
    for layer, arrays in zip([layer for layer in model.layers if layer.weights],
                             weights_from_saved_model(model, model_dir)):
        layer.set_weights(arrays)
