"""The Trainer's export: the serving signatures around a tf_keras model and the features file beside them.

  serving_default(examples)    serialized tf.Example of RAW features -> {"predictions": ...}
                               (the tf.Transform graph is inside: no training/serving skew)
  transform_features(examples) serialized raw tf.Example (with label) -> transformed features, for TFMA.

The quantizer exports its model through the same functions, so both SavedModels answer alike.
"""
from __future__ import annotations

import json
import os
from typing import Any, Dict

import tensorflow as tf
import tensorflow_transform as tft
import tf_keras as keras

from config import CustomConfig
from preprocessing.transform import LABEL_VOCAB, transformed_name
from serving.layout import FEATURES_FILE  # read back to encode requests; TF Serving ignores assets.extra/


def _raw_spec(tf_transform_output: tft.TFTransformOutput, names) -> Dict[str, Any]:
    spec = tf_transform_output.raw_feature_spec()
    return {name: spec[name] for name in names}


def add_signatures(model: keras.Model, tf_transform_output: tft.TFTransformOutput,
                   custom_config: CustomConfig) -> Dict[str, Any]:
    """Attaches the TFT layer to the model (so its tables are tracked) and builds the export signatures."""
    feature_names = custom_config.feature_names()
    label = custom_config.label.column
    model.tft_layer = tf_transform_output.transform_features_layer()
    serving_spec = _raw_spec(tf_transform_output, feature_names)
    eval_spec = _raw_spec(tf_transform_output, feature_names + [label])

    @tf.function(input_signature=[tf.TensorSpec(shape=[None], dtype=tf.string, name="examples")])
    def serve_tf_examples(serialized):
        transformed = model.tft_layer(tf.io.parse_example(serialized, serving_spec))
        transformed.pop(transformed_name(label), None)
        return {"predictions": model(transformed)}

    @tf.function(input_signature=[tf.TensorSpec(shape=[None], dtype=tf.string, name="examples")])
    def transform_features(serialized):
        return model.tft_layer(tf.io.parse_example(serialized, eval_spec))

    return {"serving_default": serve_tf_examples, "transform_features": transform_features}


def feature_info(tf_transform_output: tft.TFTransformOutput, custom_config: CustomConfig) -> Dict[str, Any]:
    """Raw feature dtypes of the serving signature, the label and task, and class names (multiclass)."""
    spec = tf_transform_output.raw_feature_spec()
    dtype_names = {tf.string: "string", tf.int64: "int64", tf.float32: "float"}
    label = custom_config.label
    info = {"features": {f.name: dtype_names[spec[f.name].dtype] for f in custom_config.features},
            "label": label.column, "label_dtype": dtype_names[spec[label.column].dtype],
            "task": label.task, "output": "predictions"}
    if label.task == "multiclass":
        info["classes"] = [c.decode() for c in tf_transform_output.vocabulary_by_name(LABEL_VOCAB)]
    return info


def export_serving_model(model: keras.Model, tf_transform_output: tft.TFTransformOutput,
                         custom_config: CustomConfig, export_dir: str) -> None:
    """SavedModel with the serving signatures, plus assets.extra/tfxp_features.json. Its checkpoint names
    the Dense weights `layer_with_weights-<i>/{kernel,bias}` (the quantizer reads them from there)."""
    # A new, uncompiled model over the same layers: no optimizer slots or metric state in the checkpoint,
    # only what serving needs.
    model = keras.Model(model.inputs, model.outputs)
    signatures = add_signatures(model, tf_transform_output, custom_config)
    tf.saved_model.save(model, export_dir, signatures=signatures)
    write_feature_info(export_dir, tf_transform_output, custom_config)


def write_feature_info(export_dir: str, tf_transform_output: tft.TFTransformOutput,
                       custom_config: CustomConfig) -> None:
    tf.io.gfile.makedirs(os.path.join(export_dir, os.path.dirname(FEATURES_FILE)))
    with tf.io.gfile.GFile(os.path.join(export_dir, FEATURES_FILE), "w") as f:
        json.dump(feature_info(tf_transform_output, custom_config), f, indent=2)
