"""The Trainer's export: the serving signatures around a tf_keras model and the features file beside them.

  serving_default(examples)    serialized tf.Example of RAW features -> {"predictions": ...}
                               (the tf.Transform graph is inside: no training/serving skew)
  serving_json(<feature>=...)  one tensor per raw feature, as TF Serving's REST API decodes JSON instances:
                               numeric features float64 (NaN = a missing cell), text features string ("" =
                               a missing cell) -> {"predictions": ...}, the same as serving_default
  transform_features(examples) serialized raw tf.Example (with label) -> transformed features, for TFMA.

The quantizer exports its model through the same functions, so both SavedModels answer alike.
"""
from __future__ import annotations

import json
import os
import re
from typing import Any, Dict

import tensorflow as tf
import tensorflow_transform as tft
import tf_keras as keras

from config import CustomConfig
from preprocessing.transform import LABEL_VOCAB, transformed_name
from trainer.model import checkpoint_layer_name, layers_with_weights
from serving.layout import EXAMPLES_SIGNATURE, FEATURES_FILE, JSON_SIGNATURE  # assets.extra/: TF Serving ignores it

# Characters a signature input name may hold (TensorFlow op names); others become "_" (json_inputs in the
# features file maps each feature to its input name).
_INVALID_INPUT_CHARS = re.compile(r"[^A-Za-z0-9_.\-/]")


def _raw_spec(tf_transform_output: tft.TFTransformOutput, names) -> Dict[str, Any]:
    spec = tf_transform_output.raw_feature_spec()
    return {name: spec[name] for name in names}


def json_input_names(feature_names) -> Dict[str, str]:
    """Feature -> its input name in the JSON signature (the feature name, where TensorFlow allows it)."""
    names = {name: _INVALID_INPUT_CHARS.sub("_", name) or "_" for name in feature_names}
    if len(set(names.values())) != len(names):
        raise ValueError(f"features {sorted(names)} map to clashing JSON input names {sorted(names.values())}")
    return names


def parsed_from_json(values: Dict[str, tf.Tensor], raw_spec: Dict[str, Any]) -> Dict[str, Any]:
    """One [N] tensor per feature (float64 with NaN, or string with "", for a missing cell) -> what
    tf.io.parse_example gives for the same rows as tf.Examples whose missing cells are left out."""
    out = {}
    for name, column in values.items():
        spec = raw_spec[name]
        if spec.dtype == tf.string:
            present, typed = tf.not_equal(column, ""), column
        else:
            present, typed = tf.logical_not(tf.math.is_nan(column)), tf.cast(column, spec.dtype)
        if isinstance(spec, tf.io.VarLenFeature):
            rows = tf.where(present)[:, 0]
            out[name] = tf.sparse.SparseTensor(indices=tf.stack([rows, tf.zeros_like(rows)], axis=1),
                                               values=tf.boolean_mask(typed, present),
                                               dense_shape=tf.stack([tf.shape(column, out_type=tf.int64)[0], 1]))
        else:  # FixedLenFeature of one value: its default where the cell is missing
            default = tf.cast(tf.reshape(spec.default_value, [-1])[0], spec.dtype)
            out[name] = tf.reshape(tf.where(present, typed, default), [-1] + list(spec.shape))
    return out


def add_signatures(model: keras.Model, tf_transform_output: tft.TFTransformOutput,
                   custom_config: CustomConfig) -> Dict[str, Any]:
    """Attaches the TFT layer to the model (so its tables are tracked) and builds the export signatures."""
    feature_names = custom_config.feature_names()
    label = custom_config.label.column
    model.tft_layer = tf_transform_output.transform_features_layer()
    serving_spec = _raw_spec(tf_transform_output, feature_names)
    eval_spec = _raw_spec(tf_transform_output, feature_names + [label])

    def predict(parsed):
        transformed = model.tft_layer(parsed)
        transformed.pop(transformed_name(label), None)
        return {"predictions": model(transformed)}

    # autograph=False: the signatures have no tensor-dependent Python control flow, and AutoGraph
    # transpiling them and everything they call (the TFT layer's internals, the quantized layers) cost ~2 s
    # of each export (README, "Performance").
    @tf.function(input_signature=[tf.TensorSpec(shape=[None], dtype=tf.string, name="examples")], autograph=False)
    def serve_tf_examples(serialized):
        return predict(tf.io.parse_example(serialized, serving_spec))

    input_names = json_input_names(feature_names)

    def serve_json(*columns):
        return predict(parsed_from_json(dict(zip(feature_names, columns)), serving_spec))

    json_signature = tf.function(serve_json, input_signature=[
        tf.TensorSpec(shape=[None], dtype=tf.string if serving_spec[name].dtype == tf.string else tf.float64,
                      name=input_names[name]) for name in feature_names], autograph=False)

    @tf.function(input_signature=[tf.TensorSpec(shape=[None], dtype=tf.string, name="examples")], autograph=False)
    def transform_features(serialized):
        return model.tft_layer(tf.io.parse_example(serialized, eval_spec))

    return {EXAMPLES_SIGNATURE: serve_tf_examples, JSON_SIGNATURE: json_signature,
            "transform_features": transform_features}


def feature_info(tf_transform_output: tft.TFTransformOutput, custom_config: CustomConfig) -> Dict[str, Any]:
    """Raw feature dtypes of the serving signature, the label and task, and class names (multiclass)."""
    spec = tf_transform_output.raw_feature_spec()
    dtype_names = {tf.string: "string", tf.int64: "int64", tf.float32: "float"}
    label = custom_config.label
    info = {"features": {f.name: dtype_names[spec[f.name].dtype] for f in custom_config.features},
            "label": label.column, "label_dtype": dtype_names[spec[label.column].dtype],
            "task": label.task, "output": "predictions",
            "json_inputs": json_input_names([f.name for f in custom_config.features])}
    if label.task == "multiclass":
        info["classes"] = [c.decode() for c in tf_transform_output.vocabulary_by_name(LABEL_VOCAB)]
    return info


def keras_weight_holders(model: keras.Model) -> Dict[str, tf.Module]:
    """Per layer with weights, a tf.Module holding its variables under the names a Keras model's checkpoint
    gives them: `layer_with_weights-<i>` / the weight's name (kernel, bias), so that a SavedModel saved from
    a plain tf.Module keeps the Keras checkpoint keys (trainer/model.py's weights_from_saved_model reads
    them: warm starts and the quantizer)."""
    holders = {}
    for index, layer in enumerate(layers_with_weights(model)):
        holder = tf.Module()
        for weight in layer.weights:
            name = weight.name.split("/")[-1].split(":")[0]
            if hasattr(holder, name):
                raise ValueError(f"layer {layer.name}: two weights named {name!r}")
            setattr(holder, name, weight)
        holders[checkpoint_layer_name(index)] = holder
    return holders


def save_lean(export_dir: str, signatures: Dict[str, Any], **tracked: Any) -> None:
    """Saves the serving signatures from a plain tf.Module that tracks the signature functions and `tracked`
    (the variables by the names they should have in the checkpoint, the tf.Transform layer), not the Keras
    objects. Saving the Keras model itself adds every layer's traced call functions and its Keras
    metadata: on the taxi model 72 functions against 21, and tf.saved_model.load, which rebuilds a Python
    graph of every function, took a median 0.98 s against 0.72 s (the Evaluator loads the model once, the
    pusher's gates three times)."""
    root = tf.Module()
    for name, value in tracked.items():
        setattr(root, name, value)
    root.signature_functions = list(signatures.values())
    tf.saved_model.save(root, export_dir, signatures=signatures)


def export_serving_model(model: keras.Model, tf_transform_output: tft.TFTransformOutput,
                         custom_config: CustomConfig, export_dir: str) -> None:
    """SavedModel with the serving signatures, plus assets.extra/tfxp_features.json. Its checkpoint names
    the Dense weights `layer_with_weights-<i>/{kernel,bias}`, as a Keras model's would (the quantizer and
    warm starts read them from there); it holds no Keras objects (save_lean)."""
    # A new, uncompiled model over the same layers: no optimizer slots or metric state in the checkpoint,
    # only what serving needs.
    model = keras.Model(model.inputs, model.outputs)
    signatures = add_signatures(model, tf_transform_output, custom_config)
    save_lean(export_dir, signatures, tft_layer=model.tft_layer, **keras_weight_holders(model))
    write_feature_info(export_dir, tf_transform_output, custom_config)


def write_feature_info(export_dir: str, tf_transform_output: tft.TFTransformOutput,
                       custom_config: CustomConfig) -> None:
    tf.io.gfile.makedirs(os.path.join(export_dir, os.path.dirname(FEATURES_FILE)))
    with tf.io.gfile.GFile(os.path.join(export_dir, FEATURES_FILE), "w") as f:
        json.dump(feature_info(tf_transform_output, custom_config), f, indent=2)
