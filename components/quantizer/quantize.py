"""Quantize a tfxp model to a SavedModel servable by TF Serving (standard TensorFlow ops only).

Every Dense layer of the trained tf_keras model is replaced by a `QuantizedDense` holding its kernel in a
smaller dtype; the serving signatures are rebuilt around it with the same tf.Transform layer, so
`serving_default` still takes serialized raw tf.Examples. Methods:

  int8          int8 kernels, symmetric per output channel. The float32 kernel is computed ONCE when the
                SavedModel loads (a resource initialized by `__saved_model_init_op`, like TFT's tables), so
                inference runs the same float MatMuls as the float model: 4x smaller weights, same speed.
                In the first layer the rows fed by numeric features are int8 with one scale per row instead:
                a z-scored outlier (a 1,710-mile taxi trip is z ~ 280) multiplies its row's rounding error,
                and per-channel rounding is relative to the largest weight of the whole output channel,
                mostly one-hot weights. With per-channel scales there, that one eval example moved by 0.12
                in probability (p99.9 of all: 0.003); with per-row scales by 0.011, at the same size.
  float16       float16 kernels, cast to float32 once at load, like int8: 2x smaller.
  dynamic_int8  int8 kernels and int8 activations quantized per example at run time (scale = max|x| / 127 of
                the row); int32 MatMul.
  static_int8   int8 kernels and int8 activations with per-layer scales calibrated on representative train
                examples (99.99th percentile of |x|); int32 MatMul.

Biases stay float32 (they are a few hundred numbers). TF's own
`tf.quantization.experimental.quantize_saved_model` is not used: on this stack its output ran 2-20x slower
than float on CPU, and on tfxp's SavedModel (tf.Transform string ops inside) it wrote no model at all.

Run as a child process (`python -m components.quantizer.quantize ...`) so that a native abort in
TensorFlow cannot take the pipeline down; see components/quantizer/executor.py.
"""
from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import uuid
from typing import Any, Dict, List, Optional, Sequence

METHODS = ("int8", "float16", "dynamic_int8", "static_int8")
LOAD_TIME_METHODS = ("int8", "float16")
INT8_MAX = 127.0
# Set by tests to prove that a native crash of the quantizer is contained (see tests/quantizer_test.py).
FAULT_ENV = "TFXP_QUANTIZER_FAULT"
CALIBRATION_EXAMPLES = 2048


def per_channel_int8(kernel):
    """Symmetric per-output-channel int8: kernel ~= q * scale, q in [-127, 127]. Returns (q, scale)."""
    import numpy as np

    if kernel.shape[0] == 0:  # no rows (e.g. every first-layer row is row-scaled)
        return kernel.astype("int8"), np.ones(kernel.shape[1], "float32")
    max_abs = np.max(np.abs(kernel), axis=0)
    scale = np.where(max_abs > 0, max_abs / INT8_MAX, 1.0).astype("float32")
    q = np.clip(np.round(kernel / scale), -INT8_MAX, INT8_MAX).astype("int8")
    return q, scale


@functools.lru_cache(maxsize=None)
def _layers():
    """Keras/TF classes, defined once on first use so that importing this module stays cheap."""
    import tensorflow as tf
    import tf_keras as keras

    class LoadTimeWeight(tf.saved_model.experimental.TrackableResource):
        """A float32 weight computed once, when the SavedModel loads, from a stored low-precision variable.

        Only the stored variable (and its scale) is written to the checkpoint; the float32 copy lives in a
        resource that `__saved_model_init_op` (TF Serving) or tf.saved_model.load fills in.
        """

        def __init__(self, shape, compute):
            self._compute, self._shape = compute, tf.TensorShape(shape)
            self._shared_name = f"tfxp_dequantized_{uuid.uuid4().hex}"
            super().__init__()
            self._initialize()

        def _create_resource(self):
            return tf.raw_ops.VarHandleOp(dtype=tf.float32, shape=self._shape, shared_name=self._shared_name)

        def _initialize(self):
            tf.raw_ops.AssignVariableOp(resource=self.resource_handle, value=self._compute())

        def read(self):
            value = tf.raw_ops.ReadVariableOp(resource=self.resource_handle, dtype=tf.float32)
            value.set_shape(self._shape)
            return value

    class QuantizedDense(keras.layers.Layer):
        def __init__(self, units: int, activation: Any, method: str, input_scale: Optional[float] = None,
                     row_scaled: Sequence[int] = (), **kwargs):
            super().__init__(**kwargs)
            self.units, self.method, self.input_scale = units, method, input_scale
            # Kernel rows quantized with one scale per row (int8 method only): see the module docstring.
            self.row_scaled = sorted(row_scaled) if method == "int8" else []
            self.activation = keras.activations.get(activation)

        def build(self, input_shape):
            in_dim = int(input_shape[-1])
            special = set(self.row_scaled)
            self.int_rows = [i for i in range(in_dim) if i not in special]
            stored_dtype = tf.float16 if self.method == "float16" else tf.int8
            self.kernel_stored = self.add_weight("kernel_quantized", shape=(len(self.int_rows), self.units),
                                                 dtype=stored_dtype, initializer="zeros", trainable=False)
            # No per-channel scales when every row has its own (a first layer fed only by numeric features).
            self.kernel_scale = (None if self.method == "float16" else self.add_weight(
                "kernel_scale", shape=(self.units if self.int_rows else 0,), dtype=tf.float32,
                initializer="ones", trainable=False))
            self.rows_stored = self.rows_scale = None
            if self.row_scaled:
                self.rows_stored = self.add_weight("kernel_rows_quantized", shape=(len(self.row_scaled), self.units),
                                                   dtype=tf.int8, initializer="zeros", trainable=False)
                self.rows_scale = self.add_weight("kernel_rows_scale", shape=(len(self.row_scaled),),
                                                  dtype=tf.float32, initializer="ones", trainable=False)
            self.bias = self.add_weight("bias", shape=(self.units,), dtype=tf.float32, initializer="zeros",
                                        trainable=False)
            if self.method in LOAD_TIME_METHODS:
                self.kernel_float = LoadTimeWeight((in_dim, self.units), self._dequantized_kernel)
            self.built = True

        def _dequantized_kernel(self):
            value = tf.cast(self.kernel_stored, tf.float32)
            if self.kernel_scale is not None and self.int_rows:
                value = value * self.kernel_scale
            if self.rows_stored is None:
                return value
            rows = tf.cast(self.rows_stored, tf.float32) * self.rows_scale[:, tf.newaxis]
            if not self.int_rows:
                return rows
            return tf.dynamic_stitch([tf.constant(self.int_rows, tf.int32), tf.constant(self.row_scaled, tf.int32)],
                                     [value, rows])

        def set_from_float(self, kernel, bias) -> None:
            if self.rows_stored is not None:
                q, scale = per_channel_int8(kernel[self.row_scaled].T)  # channels = rows here
                self.rows_stored.assign(q.T)
                self.rows_scale.assign(scale)
                kernel = kernel[self.int_rows]
            if self.method == "float16":
                self.kernel_stored.assign(kernel.astype("float16"))
            elif self.int_rows:
                q, scale = per_channel_int8(kernel)
                self.kernel_stored.assign(q)
                self.kernel_scale.assign(scale)
            self.bias.assign(bias)
            if self.method in LOAD_TIME_METHODS:
                self.kernel_float._initialize()  # the in-process copy; a loaded model fills its own

        def call(self, x):
            if self.method in LOAD_TIME_METHODS:
                y = tf.matmul(x, self.kernel_float.read())
            else:
                if self.method == "static_int8":
                    x_scale = tf.constant(self.input_scale, tf.float32)
                else:  # dynamic_int8: one scale per example (row), so one outlier row cannot flatten the rest
                    x_scale = tf.maximum(tf.reduce_max(tf.abs(x), axis=1, keepdims=True), 1e-12) / INT8_MAX
                x_q = tf.cast(tf.clip_by_value(tf.round(x / x_scale), -INT8_MAX, INT8_MAX), tf.int32)
                acc = tf.matmul(x_q, tf.cast(self.kernel_stored, tf.int32))
                y = tf.cast(acc, tf.float32) * (x_scale * self.kernel_scale)
            # BiasAdd, as keras.layers.Dense does, not `y + bias` (AddV2): Grappler fuses MatMul + BiasAdd +
            # activation into one kernel on CPUs where oneDNN is on, but not MatMul + AddV2, and three ops
            # instead of one made the int8 model 1.09-1.21x slower than float at batch 1 there.
            return self.activation(tf.nn.bias_add(y, self.bias))

    return LoadTimeWeight, QuantizedDense


def dense_layer_names(model) -> List[str]:
    import tf_keras as keras

    return [layer.name for layer in model.layers if isinstance(layer, keras.layers.Dense)]


CALIBRATION_PERCENTILE = 99.99


def calibrate_input_scales(model, transformed_batches) -> Dict[str, float]:
    """Per Dense layer, the 99.99th percentile of |input| over representative (transformed) batches, / 127.

    A percentile rather than the maximum: z-scored columns have outliers (a 1,000-mile taxi trip) that would
    otherwise stretch the int8 grid until one-hot inputs round to zero; the rare larger values saturate.
    """
    import numpy as np
    import tf_keras as keras

    names = dense_layer_names(model)
    probe = keras.Model(model.inputs, [model.get_layer(name).input for name in names])
    seen = [[] for _ in names]
    for batch in transformed_batches:
        outputs = probe(batch)
        outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
        for values, output in zip(seen, outputs):
            values.append(np.abs(np.asarray(output)).reshape(-1))
    return {name: max(float(np.percentile(np.concatenate(values), CALIBRATION_PERCENTILE)), 1e-12) / INT8_MAX
            for name, values in zip(names, seen)}


def _build(tf_transform_output, custom_config: Dict[str, Any], dense=None):
    from trainer.model import build_model
    from trainer.task import num_classes, vocab_sizes

    features, task = custom_config["features"], custom_config["label"]["task"]
    return build_model(features, vocab_sizes(tf_transform_output, features), task,
                       num_classes(tf_transform_output, task), custom_config["model"], dense=dense)


def float_model_from_checkpoint(model_dir: str, tf_transform_output, custom_config: Dict[str, Any]):
    """The Trainer's model rebuilt from the config and its weights read from the SavedModel checkpoint
    (much cheaper than reviving the Keras SavedModel)."""
    from trainer.model import load_weights_from_saved_model

    model = _build(tf_transform_output, custom_config)
    load_weights_from_saved_model(model, model_dir)
    return model


def numeric_input_rows(features, vocab_sizes: Dict[str, int]) -> List[int]:
    """Rows of the first Dense kernel fed by numeric features (trainer/model.py concatenates the features
    in config order: one column per numeric feature, vocab-size one-hot columns per vocab feature)."""
    rows, offset = [], 0
    for feature in features:
        if feature["treatment"] == "vocab":
            offset += vocab_sizes[feature["name"]]
        else:
            rows.append(offset)
            offset += 1
    return rows


def quantized_model(float_model, tf_transform_output, custom_config: Dict[str, Any], method: str,
                    input_scales: Optional[Dict[str, float]] = None):
    """The tfxp model rebuilt with QuantizedDense layers holding the float model's quantized weights."""
    from trainer.task import vocab_sizes

    _, QuantizedDense = _layers()
    scales = input_scales or {}
    first_layer = dense_layer_names(float_model)[0]
    rows = numeric_input_rows(custom_config["features"], vocab_sizes(tf_transform_output, custom_config["features"]))

    def dense(units, activation, name):
        return QuantizedDense(units, activation, method, input_scale=scales.get(name), name=name,
                              row_scaled=rows if name == first_layer else ())

    quantized = _build(tf_transform_output, custom_config, dense=dense)
    for name in dense_layer_names(float_model):
        kernel, bias = float_model.get_layer(name).get_weights()
        quantized.get_layer(name).set_from_float(kernel, bias)
    return quantized


def export_lean(model, tf_transform_output, custom_config: Dict[str, Any], out_dir: str) -> None:
    """Saves the serving signatures from a plain tf.Module that tracks only the model's variables, its
    load-time weight resources and the tf.Transform layer, not the Keras layer objects: the float model's
    checkpoint carries ~20 KB of Keras object graph, more than this small model's int8 weights."""
    import tensorflow as tf

    from trainer.task import add_signatures, write_feature_info

    LoadTimeWeight, _ = _layers()
    root = tf.Module()
    root.model_variables = list(model.variables)
    root.load_time_weights = [layer.kernel_float for layer in model.layers
                              if isinstance(getattr(layer, "kernel_float", None), LoadTimeWeight)]
    signatures = add_signatures(model, tf_transform_output, custom_config)
    root.tft_layer = model.tft_layer
    root.signatures_fns = list(signatures.values())
    tf.saved_model.save(root, out_dir, signatures=signatures)
    write_feature_info(out_dir, tf_transform_output, custom_config)


def _transformed_batches(tf_transform_output, example_files: List[str], label: str, batch_size: int,
                         limit: int):
    import tensorflow as tf

    spec = tf_transform_output.raw_feature_spec()
    layer = tf_transform_output.transform_features_layer()
    dataset = tf.data.TFRecordDataset(example_files, compression_type="GZIP").take(limit).batch(batch_size)
    for serialized in dataset:
        transformed = layer(tf.io.parse_example(serialized, spec))
        transformed.pop(label, None)
        yield transformed


def quantize_model(float_model_dir: str, transform_graph_dir: str, custom_config: Dict[str, Any], method: str,
                   out_dir: str, calibration_files: Optional[List[str]] = None) -> Dict[str, Any]:
    """Writes the quantized SavedModel to out_dir; returns what was done (layers, dtypes, scales)."""
    if method not in METHODS:
        raise ValueError(f"unknown quantization method {method!r} (one of {', '.join(METHODS)})")
    import tensorflow_transform as tft

    from preprocessing.transform import transformed_name
    from trainer.autograph_rules import skip_tf_keras

    skip_tf_keras()
    tf_transform_output = tft.TFTransformOutput(transform_graph_dir)
    model = float_model_from_checkpoint(float_model_dir, tf_transform_output, custom_config)
    input_scales = None
    if method == "static_int8":
        if not calibration_files:
            raise ValueError("static_int8 needs representative examples (the train split)")
        batches = _transformed_batches(tf_transform_output, calibration_files,
                                       transformed_name(custom_config["label"]["column"]), 256,
                                       CALIBRATION_EXAMPLES)
        input_scales = calibrate_input_scales(model, batches)
    quantized = quantized_model(model, tf_transform_output, custom_config, method, input_scales)
    export_lean(quantized, tf_transform_output, custom_config, out_dir)
    return {"method": method, "input_scales": input_scales,
            "layers": [{"name": layer.name, "stored_dtype": layer.kernel_stored.dtype.name,
                        "row_scaled_rows": len(layer.row_scaled)}
                       for layer in quantized.layers if hasattr(layer, "kernel_stored")]}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Quantize a tfxp SavedModel (run as a child process).")
    parser.add_argument("--model", required=True)
    parser.add_argument("--transform-graph", required=True)
    parser.add_argument("--config-json", required=True, help="file holding the Trainer's custom_config")
    parser.add_argument("--method", required=True, choices=METHODS)
    parser.add_argument("--out", required=True)
    parser.add_argument("--calibration-pattern", help="glob of gzipped tf.Example TFRecords (train split)")
    parser.add_argument("--report", required=True, help="JSON file to write the result to")
    args = parser.parse_args(argv)
    if os.environ.get(FAULT_ENV) == "abort":
        os.abort()  # what an LLVM/TF native abort looks like from the parent: SIGABRT, no Python traceback
    with open(args.config_json) as f:
        custom_config = json.load(f)
    if args.calibration_pattern:
        import tensorflow as tf

        files = sorted(tf.io.gfile.glob(args.calibration_pattern))
    else:
        files = None
    report = quantize_model(args.model, args.transform_graph, custom_config, args.method, args.out, files)
    with open(args.report, "w") as f:
        json.dump(report, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
