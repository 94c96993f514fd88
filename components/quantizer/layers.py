"""The quantized model's layers: QuantizedDense and the load-time weight it reads (see quantize.py for the
methods). Imports TensorFlow: quantize.py loads this module only when it quantizes."""
from __future__ import annotations

import uuid
from typing import Any, Optional, Sequence

import numpy as np
import tensorflow as tf
import tf_keras as keras

from config.schema import LOAD_TIME_METHODS

INT8_MAX = 127.0


def per_channel_int8(kernel):
    """Symmetric per-output-channel int8: kernel ~= q * scale, q in [-127, 127]. Returns (q, scale)."""
    if kernel.shape[0] == 0:  # no rows (e.g. every first-layer row is row-scaled)
        return kernel.astype("int8"), np.ones(kernel.shape[1], "float32")
    max_abs = np.max(np.abs(kernel), axis=0)
    scale = np.where(max_abs > 0, max_abs / INT8_MAX, 1.0).astype("float32")
    q = np.clip(np.round(kernel / scale), -INT8_MAX, INT8_MAX).astype("int8")
    return q, scale


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

    @tf.autograph.experimental.do_not_convert
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
        return self._forward(x)

    # Only Python-level branches (on the method): nothing for AutoGraph to convert when Keras traces the
    # layer for SavedModel, which it otherwise transpiles at every export. (On `call` itself the decorator
    # would hide its signature from Keras.)
    @tf.autograph.experimental.do_not_convert
    def _forward(self, x):
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
