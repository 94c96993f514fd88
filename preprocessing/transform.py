"""tf.Transform `preprocessing_fn` generated from the tfxp config.

Every configured feature is densified with an explicit fill for missing cells, then:
  zscore      -> tft.scale_to_z_score   (constant column -> 0.0, never NaN)
  minmax      -> tft.scale_to_0_1       (constant column -> sigmoid(x), in (0, 1), never NaN)
  vocab       -> tft.compute_and_apply_vocabulary on the value as text ('' = missing is its own token)
  passthrough -> float32 value
The analyzers (means, variances, min/max, vocabularies) run over the full training split and are baked into
the transform graph that the Trainer attaches to the serving model: no training/serving skew.

Transformed features are named `<column>_xf`; the label becomes `<label>_xf`.
"""
from __future__ import annotations

from typing import Any, Dict, Mapping

import tensorflow as tf
import tensorflow_transform as tft

LABEL_VOCAB = "vocab_label"


def transformed_name(name: str) -> str:
    return f"{name}_xf"


def vocab_filename(feature_name: str) -> str:
    return f"vocab_{feature_name}"


def _as_dense(x: Any, default_value: Any) -> tf.Tensor:
    """A rank-1 dense tensor from a VarLen (sparse, at most one value per row) or fixed-length feature."""
    if isinstance(x, tf.SparseTensor):
        x = tf.sparse.to_dense(tf.SparseTensor(x.indices, x.values, [x.dense_shape[0], 1]),
                               default_value=tf.cast(default_value, x.dtype))
    return tf.reshape(x, [-1])


def _present_values(x: Any) -> tf.Tensor:
    return x.values if isinstance(x, tf.SparseTensor) else tf.reshape(x, [-1])


def fill_numeric(x: Any, fill: Any) -> tf.Tensor:
    """float32 rank-1 tensor; missing cells get `fill` ("mean" of the present training values, or a number)."""
    if isinstance(x, tf.SparseTensor):
        x = tf.SparseTensor(x.indices, tf.cast(x.values, tf.float32), x.dense_shape)
    else:
        x = tf.cast(x, tf.float32)
    if fill == "mean":
        mean = tft.mean(_present_values(x))
        # A column with no values at all in the training split has a NaN mean: fill with 0 then.
        fill_value = tf.where(tf.math.is_finite(mean), mean, tf.zeros_like(mean))
    else:
        fill_value = tf.constant(float(fill), tf.float32)
    return _as_dense(x, fill_value)


def as_text(x: Any) -> tf.Tensor:
    """String rank-1 tensor; missing cells become ''."""
    if isinstance(x, tf.SparseTensor):
        values = x.values if x.dtype == tf.string else tf.strings.as_string(x.values)
        x = tf.SparseTensor(x.indices, values, x.dense_shape)
    elif x.dtype != tf.string:
        x = tf.strings.as_string(x)
    return _as_dense(x, "")


def scale_feature(x: Any, feature: Mapping[str, Any]) -> tf.Tensor:
    treatment = feature["treatment"]
    if treatment == "vocab":
        return tft.compute_and_apply_vocabulary(
            as_text(x), top_k=feature["top_k"], num_oov_buckets=feature["oov_buckets"],
            vocab_filename=vocab_filename(feature["name"]))
    dense = fill_numeric(x, feature["fill"])
    if treatment == "zscore":
        return tft.scale_to_z_score(dense)
    if treatment == "minmax":
        return tft.scale_to_0_1(dense)
    if treatment == "passthrough":
        return dense
    raise ValueError(f"feature {feature['name']!r}: unknown treatment {treatment!r}")


def transform_label(x: Any, task: str) -> tf.Tensor:
    if task == "binary":
        return tf.cast(fill_numeric(x, 0.0), tf.int64)
    if task == "regression":
        return fill_numeric(x, 0.0)
    if task == "multiclass":
        return tft.compute_and_apply_vocabulary(as_text(x), num_oov_buckets=0, vocab_filename=LABEL_VOCAB)
    raise ValueError(f"unknown task {task!r}")


def preprocessing_fn(inputs: Dict[str, Any], custom_config: Dict[str, Any]) -> Dict[str, tf.Tensor]:
    """TFX Transform entry point (`preprocessing.transform.preprocessing_fn`).

    custom_config is `PipelineConfig.to_custom_config()`: the features with their treatments and the label.
    """
    outputs = {}
    for feature in custom_config["features"]:
        outputs[transformed_name(feature["name"])] = scale_feature(inputs[feature["name"]], feature)
    label = custom_config["label"]
    # The label is absent at serving time; TFT then leaves its output out.
    if label["column"] in inputs:
        outputs[transformed_name(label["column"])] = transform_label(inputs[label["column"]], label["task"])
    return outputs
