"""Quantized vs float, on the eval split, in one process: metric, agreement, size and latency gates."""
from __future__ import annotations

import dataclasses
import os
import time
from typing import Any, Dict, List, Optional, Sequence

from pipeline.config import METRICS

LATENCY_BATCHES = (1, 256)


@dataclasses.dataclass(frozen=True)
class Gates:
    """Thresholds from the config's `quantization.gates` (None disables a gate)."""
    max_metric_drop: Optional[float] = 0.005        # metric units (0.005 = 0.5 points of accuracy)
    max_abs_prediction_diff: Optional[float] = 0.05
    max_label_flip_rate: Optional[float] = 0.01
    min_size_ratio: Optional[float] = 3.5           # float weight bytes / quantized weight bytes
    max_latency_ratio: Optional[float] = 1.10       # quantized / float call time (median of per-round ratios)


def dir_bytes(path: str) -> int:
    import tensorflow as tf

    return sum(tf.io.gfile.stat(os.path.join(d, f)).length for d, _, files in tf.io.gfile.walk(path)
               for f in files)


def variables_bytes(model_dir: str) -> int:
    """Bytes of the SavedModel's variables/ directory (the checkpoint) on disk."""
    return dir_bytes(os.path.join(model_dir, "variables"))


def weight_bytes(model_dir: str) -> int:
    """Bytes of the tensors in the SavedModel's checkpoint: what quantization shrinks. The files on disk also
    hold ~12 KB of object graph (mostly the tf.Transform layer's), the same for the float and the quantized
    model, which would make the size gate depend on how small the model is."""
    import numpy as np
    import tensorflow as tf

    reader = tf.train.load_checkpoint(os.path.join(model_dir, "variables", "variables"))
    dtypes = reader.get_variable_to_dtype_map()
    return sum(int(np.prod(shape)) * dtypes[name].size
               for name, shape in reader.get_variable_to_shape_map().items()
               if dtypes[name] != tf.string)


def read_examples(pattern: str, limit: int) -> List[bytes]:
    import tensorflow as tf

    files = sorted(tf.io.gfile.glob(pattern))
    if not files:
        raise FileNotFoundError(f"no examples match {pattern}")
    dataset = tf.data.TFRecordDataset(files, compression_type="GZIP").take(limit)
    return [record.numpy() for record in dataset]


def labels_of(serialized: Sequence[bytes], info: Dict[str, Any]):
    """Label values of raw examples as the model predicts them (class index for multiclass); a missing
    label reads as 0 / '' (as preprocessing fills it)."""
    import numpy as np
    import tensorflow as tf

    dtype = {"string": tf.string, "int64": tf.int64, "float": tf.float32}[info["label_dtype"]]
    parsed = tf.io.parse_example(tf.constant(list(serialized)), {info["label"]: tf.io.VarLenFeature(dtype)})
    sparse = parsed[info["label"]]
    values = tf.sparse.to_dense(tf.SparseTensor(sparse.indices, sparse.values, [sparse.dense_shape[0], 1]),
                                default_value="" if dtype == tf.string else tf.cast(0, dtype))[:, 0].numpy()
    if info["task"] != "multiclass":
        return values.astype("float64")
    index = {name: i for i, name in enumerate(info.get("classes") or [])}
    return np.array([index.get(v.decode() if isinstance(v, bytes) else str(v), -1) for v in values])


def higher_is_better(metric: str) -> bool:
    return METRICS[metric][1]


def metric_value(metric: str, labels, predictions) -> float:
    """The Evaluator's gating metric (same Keras metric classes TFMA computes)."""
    import numpy as np
    import tf_keras as keras

    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}")
    predictions = np.asarray(predictions)
    m = getattr(keras.metrics, METRICS[metric][2])()
    m.update_state(np.asarray(labels).reshape(len(labels), -1) if metric != "sparse_categorical_accuracy"
                   else np.asarray(labels), predictions)
    return float(m.result().numpy())


def decisions(task: str, predictions):
    import numpy as np

    predictions = np.asarray(predictions)
    if task == "binary":
        return (predictions.reshape(-1) > 0.5).astype(int)
    if task == "multiclass":
        return predictions.argmax(axis=1)
    return None


def p50_p99_latencies(fns: Dict[str, Any], serialized: Sequence[bytes], batch_sizes=LATENCY_BATCHES,
                      rounds: int = 100, warmup: int = 10) -> Dict[str, Dict[int, Dict[str, float]]]:
    """Milliseconds per call, p50 and p99, each batch size, calls of the models interleaved (ABAB...) so
    that machine noise hits them alike. With two models, also `paired_ratio[batch]`: the median over rounds
    of (second model's time / first model's time) in the same round, which a burst of load on this machine
    moves far less than a ratio of two separately taken medians does."""
    import numpy as np
    import tensorflow as tf

    result: Dict[str, Dict[int, Dict[str, float]]] = {name: {} for name in fns}
    names = list(fns)
    paired: Dict[int, float] = {}
    for batch in batch_sizes:
        examples = tf.constant([serialized[i % len(serialized)] for i in range(batch)])
        calls = rounds
        times: Dict[str, List[float]] = {name: [] for name in fns}
        for i in range(warmup + calls):
            order = list(fns.items()) if i % 2 == 0 else list(reversed(list(fns.items())))
            for name, fn in order:
                start = time.perf_counter()
                fn(examples=examples)["predictions"].numpy()
                if i >= warmup:
                    times[name].append((time.perf_counter() - start) * 1000.0)
        for name in fns:
            result[name][batch] = {"p50_ms": float(np.percentile(times[name], 50)),
                                   "p99_ms": float(np.percentile(times[name], 99))}
        if len(names) == 2:
            paired[batch] = float(np.median(np.array(times[names[1]]) / np.array(times[names[0]])))
    if paired:
        result["paired_ratio"] = paired
    return result


def prepare(float_dir: str, eval_pattern: str, limit: int = 50000) -> Dict[str, Any]:
    """The float side of the comparison: eval examples, labels, the loaded float model and its predictions.
    The pusher does this while the quantizer child process runs."""
    import tensorflow as tf

    from serving.client import read_feature_info

    serialized = read_examples(eval_pattern, limit)
    info = read_feature_info(float_dir)
    fn = tf.saved_model.load(float_dir).signatures["serving_default"]
    return {"float_dir": float_dir, "serialized": serialized, "info": info,
            "labels": labels_of(serialized, info), "float_fn": fn,
            "float_predictions": fn(examples=tf.constant(serialized))["predictions"].numpy()}


def compare_prepared(prepared: Dict[str, Any], quantized_dir: str, metric: str, batch_sizes=LATENCY_BATCHES,
                     rounds: int = 100) -> Dict[str, Any]:
    """Everything the gates look at, measured on the eval split."""
    import numpy as np
    import tensorflow as tf

    serialized, task, labels = prepared["serialized"], prepared["info"]["task"], prepared["labels"]
    fns = {"float": prepared["float_fn"],
           "quantized": tf.saved_model.load(quantized_dir).signatures["serving_default"]}
    predictions = {"float": prepared["float_predictions"],
                   "quantized": fns["quantized"](examples=tf.constant(serialized))["predictions"].numpy()}
    diff = np.abs(predictions["float"] - predictions["quantized"])
    float_decisions, quantized_decisions = (decisions(task, predictions[n]) for n in ("float", "quantized"))
    latencies = p50_p99_latencies(fns, serialized, batch_sizes, rounds=rounds)
    float_bytes, quantized_bytes = weight_bytes(prepared["float_dir"]), weight_bytes(quantized_dir)
    float_metric = metric_value(metric, labels, predictions["float"])
    quantized_metric = metric_value(metric, labels, predictions["quantized"])
    return {
        "examples": len(serialized),
        "metric": metric,
        "float_metric": float_metric,
        "quantized_metric": quantized_metric,
        "metric_drop": (float_metric - quantized_metric) * (1 if higher_is_better(metric) else -1),
        "max_abs_prediction_diff": float(diff.max()),
        "label_flip_rate": (float(np.mean(float_decisions != quantized_decisions))
                            if float_decisions is not None else None),
        "float_weight_bytes": float_bytes,
        "quantized_weight_bytes": quantized_bytes,
        "size_ratio": float_bytes / max(quantized_bytes, 1),
        "float_variables_bytes": variables_bytes(prepared["float_dir"]),
        "quantized_variables_bytes": variables_bytes(quantized_dir),
        "latency_ms": {name: latencies[name] for name in ("float", "quantized")},
        # quantized / float, the median of per-round ratios (see p50_p99_latencies)
        "latency_ratio": {str(b): latencies["paired_ratio"][b] for b in batch_sizes},
    }


def compare(float_dir: str, quantized_dir: str, eval_pattern: str, metric: str, limit: int = 50000,
            batch_sizes=LATENCY_BATCHES, rounds: int = 100) -> Dict[str, Any]:
    return compare_prepared(prepare(float_dir, eval_pattern, limit), quantized_dir, metric, batch_sizes,
                            rounds)


def failures(results: Dict[str, Any], gates: Gates) -> List[str]:
    """One line per failed gate, naming the measurement and the threshold."""
    failed = []
    if gates.max_metric_drop is not None and results["metric_drop"] > gates.max_metric_drop:
        failed.append(f"{results['metric']} drops by {results['metric_drop']:.4f} "
                      f"({results['float_metric']:.4f} -> {results['quantized_metric']:.4f}), "
                      f"more than max_metric_drop {gates.max_metric_drop}")
    if (gates.max_abs_prediction_diff is not None
            and results["max_abs_prediction_diff"] > gates.max_abs_prediction_diff):
        failed.append(f"max |prediction difference| {results['max_abs_prediction_diff']:.4g} exceeds "
                      f"max_abs_prediction_diff {gates.max_abs_prediction_diff}")
    if (gates.max_label_flip_rate is not None and results["label_flip_rate"] is not None
            and results["label_flip_rate"] > gates.max_label_flip_rate):
        failed.append(f"label flip rate {results['label_flip_rate']:.4f} exceeds max_label_flip_rate "
                      f"{gates.max_label_flip_rate}")
    if gates.min_size_ratio is not None and results["size_ratio"] < gates.min_size_ratio:
        failed.append(f"size ratio {results['size_ratio']:.2f}x ({results['float_weight_bytes']} -> "
                      f"{results['quantized_weight_bytes']} bytes of weights) is below min_size_ratio "
                      f"{gates.min_size_ratio}")
    if gates.max_latency_ratio is not None:
        for batch, ratio in results["latency_ratio"].items():
            if ratio > gates.max_latency_ratio:
                failed.append(f"p50 latency at batch {batch} is {ratio:.2f}x the float model's, above "
                              f"max_latency_ratio {gates.max_latency_ratio}")
    return failed
