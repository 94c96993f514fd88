"""tf.Transform `preprocessing_fn` generated from the tfxp config.

Every configured feature comes out dense, with an explicit value for missing cells:
  zscore      -> tft.scale_to_z_score   (constant column -> 0.0, never NaN)
  minmax      -> tft.scale_to_0_1       (constant column -> sigmoid(x), in (0, 1), never NaN; with fill
                 "mean", its formula on the bounds of tft.min and tft.max: _min_max_scaled)
  vocab       -> tft.compute_and_apply_vocabulary on the value as text ('' = missing is its own token),
                 every token weighted 1.0 so that tf.Transform counts them per batch (apply_vocabulary);
                 by default all vocabularies in one analyzer pass, the same files (preprocessing/vocabularies.py)
  passthrough -> float32 value
NaN and +-inf cells count as missing (a frozen schema already blocks them in the data gate).
Numeric fill "mean" (the default) puts a missing cell at the training mean: for zscore/minmax the scaling is
analyzed over the present values and a missing cell gets the scaled mean, so every analyzer runs in a single
pass over the data (filling first, then scaling, would need a second pass: ~5 s more on the taxi data).
A numeric fill value is filled in before scaling.
The numeric features of one treatment and one kind of fill are scaled side by side, column by column, by
tf.Transform's elementwise analyzers (scale_numeric): one analyzer per statistic for the group, not per
feature.
The analyzers (means, variances, min/max, vocabularies) run over the full training split and are baked into
the transform graph that the Trainer attaches to the serving model: no training/serving skew.

Transformed features are named `<column>_xf`; the label becomes `<label>_xf`.
"""
from __future__ import annotations

from typing import Any, Dict, List, Sequence, Tuple

import numpy as np
import tensorflow as tf
import tensorflow_transform as tft

from config import NUMERIC_TREATMENTS, CustomConfig, FeatureConfig, TransformConfig
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


def _min_max_scaled(x: tf.Tensor, low: tf.Tensor, high: tf.Tensor) -> tf.Tensor:
    """tft.scale_to_0_1's formula (mappers._scale_by_min_max_internal, output range [0, 1]) with analyzed
    bounds: (x - min) / (max - min), and a sigmoid where min >= max (a constant column, or none at all)."""
    return tf.where(low < high, (x - low) / (high - low), tf.math.sigmoid(x))


def _scaled_group(columns: List[Any], treatment: str, fills: List[Any]) -> tf.Tensor:
    """The columns of one treatment as a dense [batch, k] float32 tensor, scaled column by column by
    tf.Transform's elementwise analyzers: one analyzer per statistic for the whole group.

    fills all "mean": the statistics are those of each column's present values, a missing cell gets the
    column's mean, scaled (zscore: 0.0). Numeric fills: each column is filled first, then scaled.

    The analyzers get dense columns, a missing cell as NaN, which tf.Transform's mean and variance leave
    out; min and max get it as +inf and -inf (tft.min, tft.max), and the min-max scaling is
    tft.scale_to_0_1's formula with those bounds (_min_max_scaled). Elementwise over a SparseTensor,
    tf.Transform reduces with tf.sparse.reduce_sum / reduce_max: ~1.2 s per 1M x 4 cells each, against
    ~0.07 s dense.

    Means and variances are analyzed in float64: tf.Transform sums a batch elementwise column by column, in
    order, where a whole-tensor float32 sum is pairwise; in float32 the taxi table's standard deviations
    came out up to 2e-4 off (150k rows), in float64 they are as close as the one-feature analyzers'. Min and
    max are exact either way, in float32 as alone.

    A group of one column has its float64 statistics analyzed whole (the same numbers): elementwise,
    tf.Transform 1.16's float64 mean-and-variance combiner hands a one-column result back as a scalar
    (numpy.float64 of a one-element array is a scalar), which the graph of shape [1] then rejects."""
    columns = [_as_float(x) for x in columns]
    elementwise = len(columns) > 1
    if any(fill != "mean" for fill in fills):
        dense = tf.stack([_as_dense(x, float(fill)) for x, fill in zip(columns, fills)], axis=1)
        if treatment == "zscore":
            return tf.cast(tft.scale_to_z_score(tf.cast(dense, tf.float64), elementwise=elementwise), tf.float32)
        if treatment == "minmax":
            return tft.scale_to_0_1(dense, elementwise=True)
        return dense
    dense = tf.stack([_as_dense(x, float("nan")) for x in columns], axis=1)  # NaN: a missing cell
    present = tf.math.is_finite(dense)  # _as_float left only finite values
    if treatment == "zscore":
        scaled = tft.scale_to_z_score(tf.cast(dense, tf.float64), elementwise=elementwise)
        return tf.where(present, tf.cast(scaled, tf.float32), tf.zeros_like(dense))
    mean = tf.cast(tft.mean(tf.cast(dense, tf.float64), reduce_instance_dims=not elementwise), tf.float32)
    if treatment == "minmax":
        # Each bound over the column's present values: a missing cell as +inf for the min and -inf for the
        # max, which neither reaches (nor does a batch without a value in the column: tf.Transform combines
        # the batches' bounds with np.max/np.min).
        low = tft.min(tf.where(present, dense, tf.fill(tf.shape(dense), np.inf)), reduce_instance_dims=False)
        high = tft.max(tf.where(present, dense, tf.fill(tf.shape(dense), -np.inf)), reduce_instance_dims=False)
        fill = _finite_or(_min_max_scaled(mean, low, high), 0.5)
        dense = _min_max_scaled(dense, low, high)
    else:  # passthrough: a column with no values at all in the training split has no mean: 0 then
        fill = _finite_or(mean, 0.0)
    return tf.where(present, dense, tf.zeros_like(dense) + fill)


def scale_numeric(inputs: Dict[str, Any], features: Sequence[FeatureConfig]) -> Dict[str, tf.Tensor]:
    """The transformed numeric features: those of one treatment and one kind of fill ("mean", or numbers)
    stacked and scaled together (_scaled_group). Each comes out as tft.scale_to_z_score / tft.scale_to_0_1 on
    that feature alone would give it, up to float rounding (tests/preprocessing_test.py checks them against
    numpy).

    tf.Transform makes every analyzer its own graph ops, analysis nodes and Beam branches, whatever the data
    size. One feature at a time, the taxi config had 19 analyzers: four per min-max feature (its mean; tft.min
    and tft.max, each a min_and_max; scale_to_0_1's own min_and_max) and one per z-score feature. Grouped, a
    treatment has at most three (z-score: mean_and_var; min-max: mean, tft.min and tft.max; passthrough:
    mean), whatever its number of features."""
    groups: Dict[Tuple[str, bool], List[FeatureConfig]] = {}
    for feature in features:
        groups.setdefault((feature.treatment, feature.fill == "mean"), []).append(feature)
    outputs = {}
    for (treatment, _), group in groups.items():
        scaled = _scaled_group([inputs[f.name] for f in group], treatment, [f.fill for f in group])
        for index, feature in enumerate(group):
            outputs[transformed_name(feature.name)] = scaled[:, index]
    return outputs


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
    outputs.update(scale_numeric(inputs, [f for f in config.features if f.treatment in NUMERIC_TREATMENTS]))
    for feature in config.features:
        name = transformed_name(feature.name)
        if name in outputs:
            continue
        if feature.treatment != "vocab":
            raise ValueError(f"feature {feature.name!r}: unknown treatment {feature.treatment!r}")
        outputs[name] = _apply_one(as_text(inputs[feature.name]), feature_vocabulary(feature),
                                   config.batch_vocabulary_counts)
    label = config.label
    # The label is absent at serving time; TFT then leaves its output out.
    if label.column in inputs and transformed_name(label.column) not in outputs:
        outputs[transformed_name(label.column)] = transform_label(inputs[label.column], label.task,
                                                                  config.batch_vocabulary_counts)
    return outputs
