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
import importlib
import json
import os
from typing import Any, Dict, List, Optional, Sequence

from config import QUANTIZATION_METHODS, CustomConfig, FeatureConfig
from config.process import end_startup
from preprocessing.payload import serialized_examples

# Set by tests to prove that a native crash of the quantizer is contained (see tests/quantizer_test.py).
FAULT_ENV = "TFXP_QUANTIZER_FAULT"
CALIBRATION_EXAMPLES = 2048


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

    from components.quantizer.layers import INT8_MAX

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


def _build(tf_transform_output, custom_config: CustomConfig, dense=None):
    from trainer.model import build_model, num_classes, vocab_sizes

    features, task = custom_config.features, custom_config.label.task
    return build_model(features, vocab_sizes(tf_transform_output, features), task,
                       num_classes(tf_transform_output, task), custom_config.model, dense=dense)


def float_model_from_checkpoint(model_dir: str, tf_transform_output, custom_config: CustomConfig):
    """The Trainer's model rebuilt from the config and its weights read from the SavedModel checkpoint
    (much cheaper than reviving the Keras SavedModel)."""
    from trainer.model import load_weights_from_saved_model

    model = _build(tf_transform_output, custom_config)
    load_weights_from_saved_model(model, model_dir)
    return model


def numeric_input_rows(features: Sequence[FeatureConfig], vocab_sizes: Dict[str, int]) -> List[int]:
    """Rows of the first Dense kernel fed by numeric features (trainer/model.py concatenates the features
    in config order: one column per numeric feature, vocab-size one-hot columns per vocab feature)."""
    rows, offset = [], 0
    for feature in features:
        if feature.treatment == "vocab":
            offset += vocab_sizes[feature.name]
        else:
            rows.append(offset)
            offset += 1
    return rows


def quantized_model(float_model, tf_transform_output, custom_config: CustomConfig, method: str,
                    input_scales: Optional[Dict[str, float]] = None):
    """The tfxp model rebuilt with QuantizedDense layers holding the float model's quantized weights."""
    from components.quantizer.layers import QuantizedDense
    from trainer.model import vocab_sizes

    scales = input_scales or {}
    first_layer = dense_layer_names(float_model)[0]
    rows = numeric_input_rows(custom_config.features, vocab_sizes(tf_transform_output, custom_config.features))

    def dense(units, activation, name):
        return QuantizedDense(units, activation, method, input_scale=scales.get(name), name=name,
                              row_scaled=rows if name == first_layer else ())

    quantized = _build(tf_transform_output, custom_config, dense=dense)
    for name in dense_layer_names(float_model):
        kernel, bias = float_model.get_layer(name).get_weights()
        quantized.get_layer(name).set_from_float(kernel, bias)
    return quantized


def export_lean(model, tf_transform_output, custom_config: CustomConfig, out_dir: str) -> None:
    """Saves the serving signatures from a plain tf.Module (trainer/export.py's save_lean) that tracks only
    the model's variables, its load-time weight resources and the tf.Transform layer, not the Keras layer
    objects: a Keras model's checkpoint carries ~20 KB of Keras object graph, more than this small model's
    int8 weights."""
    from components.quantizer.layers import LoadTimeWeight
    from trainer.export import add_signatures, save_lean, write_feature_info

    signatures = add_signatures(model, tf_transform_output, custom_config)
    save_lean(out_dir, signatures, tft_layer=model.tft_layer, model_variables=list(model.variables),
              load_time_weights=[layer.kernel_float for layer in model.layers
                                 if isinstance(getattr(layer, "kernel_float", None), LoadTimeWeight)])
    write_feature_info(out_dir, tf_transform_output, custom_config)


def _transformed_batches(tf_transform_output, example_files: List[str], label: str, batch_size: int,
                         limit: int):
    import tensorflow as tf

    spec = tf_transform_output.raw_feature_spec()
    layer = tf_transform_output.transform_features_layer()
    records = serialized_examples(example_files, limit)
    for start in range(0, len(records), batch_size):
        serialized = tf.constant(records[start:start + batch_size])
        transformed = layer(tf.io.parse_example(serialized, spec))
        transformed.pop(label, None)
        yield transformed


def quantize_model(float_model_dir: str, transform_graph_dir: str, custom_config: CustomConfig, method: str,
                   out_dir: str, calibration_files: Optional[List[str]] = None) -> Dict[str, Any]:
    """Writes the quantized SavedModel to out_dir; returns what was done (layers, dtypes, scales)."""
    if method not in QUANTIZATION_METHODS:
        raise ValueError(f"unknown quantization method {method!r} (one of {', '.join(QUANTIZATION_METHODS)})")
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
                                       transformed_name(custom_config.label.column), 256,
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
    parser.add_argument("--method", required=True, choices=QUANTIZATION_METHODS)
    parser.add_argument("--out", required=True)
    parser.add_argument("--calibration-pattern", help="glob of gzipped tf.Example TFRecords (train split)")
    parser.add_argument("--report", required=True, help="JSON file to write the result to")
    args = parser.parse_args(argv)
    if os.environ.get(FAULT_ENV) == "abort":
        os.abort()  # what an LLVM/TF native abort looks like from the parent: SIGABRT, no Python traceback
    with open(args.config_json) as f:
        custom_config = CustomConfig.from_json(json.load(f))
    for module in ("tensorflow_transform", "tf_keras"):  # with TensorFlow: what quantize_model uses
        importlib.import_module(module)
    end_startup()  # the collector back on, the imports frozen (config.process; a no-op unless paused)
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
    # The collector waits while TensorFlow imports (~1 s of this process's ~7-12 s went to full passes over
    # the imported modules), and no interpreter teardown (~2 s after TensorFlow), which the Pusher would wait
    # for.
    from config.process import exit_now, pause_gc_for_startup

    pause_gc_for_startup()
    exit_now(main())
