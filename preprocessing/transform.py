"""tf.Transform `preprocessing_fn` generated from the tfxp config.

Every configured feature comes out dense, with an explicit value for missing cells:
  zscore      -> tft.scale_to_z_score   (constant column -> 0.0, never NaN)
  minmax      -> tft.scale_to_0_1       (constant column -> sigmoid(x), in (0, 1), never NaN)
  vocab       -> tft.compute_and_apply_vocabulary on the value as text ('' = missing is its own token),
                 every token weighted 1.0 so that tf.Transform counts them per batch (apply_vocabulary);
                 by default all vocabularies in one analyzer pass, the same files (preprocessing/vocabularies.py)
  passthrough -> float32 value
NaN and +-inf cells count as missing (a frozen schema already blocks them in the data gate).
Numeric fill "mean" (the default) puts a missing cell at the training mean: for zscore/minmax the scaling is
analyzed over the present values and a missing cell gets the scaled mean, so every analyzer runs in a single
pass over the data (filling first, then scaling, would need a second pass: ~5 s more on the taxi data).
A numeric fill value is filled in before scaling.
The analyzers (means, variances, min/max, vocabularies) run over the full training split and are baked into
the transform graph that the Trainer attaches to the serving model: no training/serving skew.

Transformed features are named `<column>_xf`; the label becomes `<label>_xf`.
"""
from __future__ import annotations

from typing import Any, Dict

import tensorflow as tf
import tensorflow_transform as tft

from config import CustomConfig, FeatureConfig, TransformConfig
from preprocessing.vocabularies import VocabularySpec, compute_and_apply_vocabularies

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


def _as_float(x: Any) -> Any:
    """float32, with NaN and +-inf treated as missing cells: they never reach an analyzer or a scaler."""
    if isinstance(x, tf.SparseTensor):
        x = tf.SparseTensor(x.indices, tf.cast(x.values, tf.float32), x.dense_shape)
        return tf.sparse.retain(x, tf.math.is_finite(x.values))
    x = tf.cast(x, tf.float32)  # dense: only with a fixed-shape schema, which tfxp never writes
    return tf.where(tf.math.is_finite(x), x, tf.zeros_like(x))


def _present_values(x: Any) -> tf.Tensor:
    return x.values if isinstance(x, tf.SparseTensor) else tf.reshape(x, [-1])


def _finite_or(value: tf.Tensor, default: float) -> tf.Tensor:
    return tf.where(tf.math.is_finite(value), value, tf.constant(default, value.dtype))


def fill_numeric(x: Any, fill: Any) -> tf.Tensor:
    """float32 rank-1 tensor; missing cells get `fill` ("mean" of the present training values, or a number).

    A column with no values at all in the training split has no mean: it is filled with 0 then.
    """
    x = _as_float(x)
    fill_value = (_finite_or(tft.mean(_present_values(x)), 0.0) if fill == "mean"
                  else tf.constant(float(fill), tf.float32))
    return _as_dense(x, fill_value)


def as_text(x: Any) -> tf.Tensor:
    """String rank-1 tensor; missing cells become ''."""
    if isinstance(x, tf.SparseTensor):
        values = x.values if x.dtype == tf.string else tf.strings.as_string(x.values)
        x = tf.SparseTensor(x.indices, values, x.dense_shape)
    elif x.dtype != tf.string:
        x = tf.strings.as_string(x)
    return _as_dense(x, "")


def scale_to_z_score(x: Any, fill: Any) -> tf.Tensor:
    """z-score; with fill "mean", mean and variance are those of the present values and a missing cell
    becomes 0.0 (the mean), so all analyzers run in one pass over the data."""
    x = _as_float(x)
    if fill == "mean":
        return _as_dense(tft.scale_to_z_score(x), 0.0)
    return tft.scale_to_z_score(_as_dense(x, float(fill)))


def scale_to_0_1(x: Any, fill: Any) -> tf.Tensor:
    """min-max to [0, 1]; with fill "mean", min and max are those of the present values and a missing cell
    becomes the scaled mean (all analyzers in one pass, like scale_to_z_score)."""
    x = _as_float(x)
    if fill != "mean":
        return tft.scale_to_0_1(_as_dense(x, float(fill)))
    values = _present_values(x)
    mean, low, high = tft.mean(values), tft.min(values), tft.max(values)
    # tft.scale_to_0_1 maps a constant column (min == max) through a sigmoid: so does its fill value.
    scaled_mean = tf.where(low < high, (mean - low) / (high - low), tf.math.sigmoid(mean))
    return _as_dense(tft.scale_to_0_1(x), _finite_or(scaled_mean, 0.5))


def apply_vocabulary(text: tf.Tensor, batch_counts: bool = TransformConfig.batch_vocabulary_counts,
                     **options: Any) -> tf.Tensor:
    """tft.compute_and_apply_vocabulary; with batch_counts (transform.batch_vocabulary_counts, default) every
    token weighted 1.0: the same vocabulary, in the same order (summed unit weights are the counts), counted
    per batch in the graph. Unweighted, tf.Transform flattens every token of every batch into its own Beam
    element and counts them one by one in Python (4.6M elements on a 1M-row taxi table, ~6 s of Transform's
    ~20 s); weighted, it reduces each batch to its unique tokens and their summed weights first
    (tf_utils.reduce_batch_weighted_counts). Only the analyzer sees the weights: the serving graph looks
    tokens up as before."""
    weights = tf.ones_like(text, dtype=tf.float32) if batch_counts else None
    return tft.compute_and_apply_vocabulary(text, weights=weights, **options)


def feature_vocabulary(feature: FeatureConfig) -> VocabularySpec:
    """A vocab feature's vocabulary: its file name, top_k and OOV buckets."""
    return VocabularySpec(vocab_filename(feature.name), feature.top_k, feature.oov_buckets)


# A multiclass label's vocabulary: every class, no OOV bucket.
LABEL_VOCABULARY = VocabularySpec(LABEL_VOCAB, None, 0)


def _apply_one(text: tf.Tensor, spec: VocabularySpec, batch_counts: bool) -> tf.Tensor:
    return apply_vocabulary(text, batch_counts, top_k=spec.top_k, num_oov_buckets=spec.num_oov_buckets,
                            vocab_filename=spec.name)


def scale_feature(x: Any, feature: FeatureConfig, batch_vocabulary_counts: bool) -> tf.Tensor:
    treatment = feature.treatment
    if treatment == "vocab":
        return _apply_one(as_text(x), feature_vocabulary(feature), batch_vocabulary_counts)
    if treatment == "zscore":
        return scale_to_z_score(x, feature.fill)
    if treatment == "minmax":
        return scale_to_0_1(x, feature.fill)
    if treatment == "passthrough":
        return fill_numeric(x, feature.fill)
    raise ValueError(f"feature {feature.name!r}: unknown treatment {treatment!r}")


def transform_label(x: Any, task: str, batch_vocabulary_counts: bool) -> tf.Tensor:
    if task == "binary":
        return tf.cast(fill_numeric(x, 0.0), tf.int64)
    if task == "regression":
        return fill_numeric(x, 0.0)
    if task == "multiclass":
        return _apply_one(as_text(x), LABEL_VOCABULARY, batch_vocabulary_counts)
    raise ValueError(f"unknown task {task!r}")


def _one_pass_vocabularies(inputs: Dict[str, Any], config: CustomConfig) -> Dict[str, tf.Tensor]:
    """The transformed vocab features (and a multiclass label, when present), analyzed together
    (preprocessing/vocabularies.py): the same files and ids as apply_vocabulary gives one by one."""
    texts, specs, names = [], [], []
    for feature in config.features:
        if feature.treatment == "vocab":
            texts.append(as_text(inputs[feature.name]))
            specs.append(feature_vocabulary(feature))
            names.append(transformed_name(feature.name))
    label = config.label
    if label.task == "multiclass" and label.column in inputs:
        texts.append(as_text(inputs[label.column]))
        specs.append(LABEL_VOCABULARY)
        names.append(transformed_name(label.column))
    return dict(zip(names, compute_and_apply_vocabularies(texts, specs)))


def preprocessing_fn(inputs: Dict[str, Any], custom_config: Dict[str, Any]) -> Dict[str, tf.Tensor]:
    """TFX Transform entry point (`preprocessing.transform.preprocessing_fn`).

    custom_config is `CustomConfig.to_json()`: the features with their treatments and the label. With
    `one_pass_vocabularies` (the default without spans) every vocabulary is analyzed in one pass
    (preprocessing/vocabularies.py); otherwise each on its own (apply_vocabulary).
    """
    config = CustomConfig.from_json(custom_config)
    outputs = _one_pass_vocabularies(inputs, config) if config.one_pass_vocabularies else {}
    for feature in config.features:
        name = transformed_name(feature.name)
        if name not in outputs:
            outputs[name] = scale_feature(inputs[feature.name], feature, config.batch_vocabulary_counts)
    label = config.label
    # The label is absent at serving time; TFT then leaves its output out.
    if label.column in inputs and transformed_name(label.column) not in outputs:
        outputs[transformed_name(label.column)] = transform_label(inputs[label.column], label.task,
                                                                  config.batch_vocabulary_counts)
    return outputs
