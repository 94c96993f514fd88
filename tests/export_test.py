"""The Trainer's SavedModel (trainer/export.py): a plain tf.Module holding the serving signatures, the
tf.Transform layer and the Dense weights under Keras's checkpoint keys, with no Keras objects, and it serves
the model the Trainer trained. Uses the session's taxi pipeline run (tests/conftest.py)."""
import os
import re

import numpy as np
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2

from pipeline import nodes
from pipeline.summary import latest_output_uri


def _float_model_dir(config):
    return os.path.join(latest_output_uri(config.metadata_path, config.name, nodes.TRAINER, "model"), "Format-Serving")


def test_the_trainers_saved_model_holds_no_keras_objects_and_keras_checkpoint_keys(taxi_run):
    model_dir = _float_model_dir(taxi_run["config"])
    assert not os.path.exists(os.path.join(model_dir, "keras_metadata.pb"))
    saved = saved_model_pb2.SavedModel()
    with open(os.path.join(model_dir, "saved_model.pb"), "rb") as f:
        saved.ParseFromString(f.read())
    functions = [function.signature.name for function in saved.meta_graphs[0].graph_def.library.function]
    # Keras's SavedModel adds every layer's traced call (`__inference_hidden_0_layer_call_fn_...`): 72
    # functions on the taxi model, against 21 here, where only the tf.Transform layer (a Keras layer) has them.
    # Keras numbers a layer's name after the first of its class in a process (`transform_features_layer_6`
    # when the test process trained models before): the number is left out.
    layer_calls = {re.sub(r"_\d+$", "", name.split("_layer_call_")[0]) for name in functions if "_layer_call_" in name}
    assert functions and layer_calls == {"__inference_transform_features_layer"}, layer_calls
    assert len(functions) < 40, len(functions)
    keys = {name for name, _ in tf.train.list_variables(os.path.join(model_dir, "variables", "variables"))}
    dense = [key for key in keys if key.startswith("layer_with_weights-")]
    layers = {key.split("/")[0] for key in dense}
    assert len(layers) == taxi_run["config"].model.depth + 1  # hidden layers and the output layer
    assert all(f"{layer}/{weight}/.ATTRIBUTES/VARIABLE_VALUE" in keys for layer in layers
               for weight in ("kernel", "bias"))


def test_the_lean_saved_model_serves_the_trained_keras_model(taxi_run):
    """The serving signature's predictions equal the Keras model rebuilt from the config with the checkpoint's
    weights (as the quantizer rebuilds it) applied to the signature's own transformed features."""
    import tensorflow_transform as tft

    from components.quantizer.quantize import float_model_from_checkpoint
    from preprocessing.transform import transformed_name

    config = taxi_run["config"]
    model_dir = _float_model_dir(config)
    examples = [row for row in tf.data.TFRecordDataset(
        tf.io.gfile.glob(os.path.join(latest_output_uri(config.metadata_path, config.name, nodes.EXAMPLE_GEN,
                                                        "examples"), "Split-eval", "*")),
        compression_type="GZIP").take(300).as_numpy_iterator()]
    loaded = tf.saved_model.load(model_dir)
    served = loaded.signatures["serving_default"](examples=tf.constant(examples))["predictions"].numpy()
    transformed = loaded.signatures["transform_features"](examples=tf.constant(examples))
    transformed.pop(transformed_name(config.label.column))
    graph = tft.TFTransformOutput(latest_output_uri(config.metadata_path, config.name, nodes.TRANSFORM,
                                                    "transform_graph"))
    keras_model = float_model_from_checkpoint(model_dir, graph, config.to_custom_config())
    np.testing.assert_allclose(keras_model(transformed).numpy(), served, rtol=1e-5, atol=1e-6)
    assert len(examples) == 300 and 0.0 < served.mean() < 1.0
