"""Quantized vs float, on the eval split, in one process: metric, agreement, size and latency gates."""
from __future__ import annotations

import dataclasses
import os
import statistics
from typing import Any, Dict, List, Optional, Sequence

from components.quantizer.latency import (LATENCY_BATCHES, LATENCY_LOOKS, RatioInterval, balanced_latencies,
                                          latency_failures)
from config import METRICS
from preprocessing.payload import serialized_examples
from serving.layout import EXAMPLES_SIGNATURE



@dataclasses.dataclass(frozen=True)
class Gates:
    """Thresholds from the config's `quantization.gates` (defaults: config.default_gates; None
    disables a gate)."""
    # Classification: in metric units (0.005 = 0.5 points of accuracy) and probability units. Regression,
    # whose metrics and predictions are in label units: relative to the float model's metric, and to the
    # standard deviation of its predictions (see compare_prepared's *_scale).
    # The metric-drop and label-flip gates treat the eval split as a sample of what the model will serve: they
    # fail only when the quantized model is worse than the threshold with QUALITY_CONFIDENCE (the lower end of
    # a one-sided interval is above it), as the latency gate does with its interval.
    max_metric_drop: Optional[float]
    max_abs_prediction_diff: Optional[float]
    max_label_flip_rate: Optional[float]
    min_size_ratio: Optional[float]           # float kernel bytes / quantized kernel bytes (with scales)
    max_latency_ratio: Optional[float]        # quantized / float call time, median paired ratio: fails only
                                              # when its whole confidence interval is above this


# One-sided confidence of the metric-drop and label-flip gates. On iris's 41 eval rows a single near-tie
# prediction that changes class is a 2.4% flip rate and a 2.4-point accuracy drop; at a true flip rate of 1%,
# 41 rows show at least one flip 34% of the time, so the observed rate alone failed such models by chance.
QUALITY_CONFIDENCE = 0.95


def flip_rate_lower_bound(flips: int, examples: int, confidence: float = QUALITY_CONFIDENCE) -> float:
    """Clopper-Pearson (exact binomial) one-sided lower bound of the rate behind `flips` of `examples`."""
    from scipy.stats import beta

    if flips <= 0 or examples <= 0:
        return 0.0
    return float(beta.ppf(1.0 - confidence, flips, examples - flips + 1))


def _auc_difference_se(labels, first, second) -> float:
    """DeLong's standard error of AUC(first) - AUC(second) on the same examples (Sun & Xu's midrank form)."""
    import numpy as np
    from scipy.stats import rankdata

    positive = np.asarray(labels).reshape(-1) > 0.5
    m, n = int(positive.sum()), int((~positive).sum())
    if m < 2 or n < 2:
        return float("inf")
    components = []
    for scores in (np.asarray(first).reshape(-1), np.asarray(second).reshape(-1)):
        x, y = scores[positive], scores[~positive]
        ranks = rankdata(np.concatenate([x, y]))
        components.append(((ranks[:m] - rankdata(x)) / n, 1.0 - (ranks[m:] - rankdata(y)) / m))
    (x_first, y_first), (x_second, y_second) = components
    variance = (np.var(x_first - x_second, ddof=1) / m + np.var(y_first - y_second, ddof=1) / n)
    return float(np.sqrt(max(variance, 0.0)))


def metric_drop_se(metric: str, task: str, labels, float_predictions, quantized_predictions) -> float:
    """Standard error of the metric drop over the eval examples, paired (both models score the same ones).
    Accuracy, MSE and MAE are means of per-example scores: the error of the mean of their per-example
    differences. AUC: DeLong's."""
    import numpy as np

    from components.evaluator.metrics import correct, errors

    keras_class = METRICS[metric].keras_class
    labels = np.asarray(labels).reshape(-1)
    if keras_class == "AUC":
        return _auc_difference_se(labels, float_predictions, quantized_predictions)

    def scores(predictions):
        """Per example, the term whose mean is the metric (components/evaluator/metrics.py)."""
        predictions = np.asarray(predictions)
        if task != "regression":
            return correct(task, labels, predictions).astype(np.float64)
        error = errors(labels, predictions)
        return error * error if keras_class == "MeanSquaredError" else np.abs(error)

    differences = scores(float_predictions) - scores(quantized_predictions)
    if differences.shape[0] < 2:
        return float("inf")
    return float(np.std(differences, ddof=1) / np.sqrt(differences.shape[0]))


def dir_bytes(path: str) -> int:
    import tensorflow as tf

    return sum(tf.io.gfile.stat(os.path.join(d, f)).length for d, _, files in tf.io.gfile.walk(path)
               for f in files)


def variables_bytes(model_dir: str) -> int:
    """Bytes of the SavedModel's variables/ directory (the checkpoint) on disk."""
    return dir_bytes(os.path.join(model_dir, "variables"))


def _checkpoint_bytes(model_dir: str, keep=lambda name: True) -> int:
    import numpy as np
    import tensorflow as tf

    reader = tf.train.load_checkpoint(os.path.join(model_dir, "variables", "variables"))
    dtypes = reader.get_variable_to_dtype_map()
    return sum(int(np.prod(shape)) * dtypes[name].size
               for name, shape in reader.get_variable_to_shape_map().items()
               if dtypes[name] != tf.string and keep(name))


def weight_bytes(model_dir: str) -> int:
    """Bytes of the tensors in the SavedModel's checkpoint. The files on disk also hold ~12 KB of object
    graph (mostly the tf.Transform layer's), the same for the float and the quantized model."""
    return _checkpoint_bytes(model_dir)


def bias_bytes(float_model_dir: str) -> int:
    """Bytes of the float model's Dense biases: every method keeps them float32, unchanged."""
    return _checkpoint_bytes(float_model_dir, keep=lambda name: "/bias/" in name)


def read_examples(pattern: str, limit: int) -> List[bytes]:
    """The first `limit` eval examples as serialized tf.Examples, from either payload."""
    import tensorflow as tf

    files = sorted(tf.io.gfile.glob(pattern))
    if not files:
        raise FileNotFoundError(f"no examples match {pattern}")
    return serialized_examples(files, limit)


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
    return METRICS[metric].higher_is_better


def metric_value(metric: str, task: str, labels, predictions) -> float:
    """The Evaluator's gating metric, computed as the Evaluator computes it (components/evaluator/metrics.py:
    numpy, equal to TFMA's). Keras' metric classes gave the same values but cost ~2 s of autograph tracing
    per process."""
    from components.evaluator.metrics import batch_sums, metric_value as sums_metric_value

    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}")
    return sums_metric_value(METRICS[metric].keras_class, batch_sums(task, labels, predictions))


def decisions(task: str, predictions):
    import numpy as np

    predictions = np.asarray(predictions)
    if task == "binary":
        return (predictions.reshape(-1) > 0.5).astype(int)
    if task == "multiclass":
        return predictions.argmax(axis=1)
    return None


@dataclasses.dataclass(frozen=True)
class FloatBaseline:
    """The float side of the comparison: eval examples, their labels, the loaded float model and its
    predictions. The pusher prepares it while the quantizer child process runs."""
    float_dir: str
    serialized: List[bytes]
    info: Dict[str, Any]  # serving.layout's features file
    labels: Any
    float_fn: Any
    float_predictions: Any


def prepare(float_dir: str, eval_pattern: str, limit: int = 50000) -> FloatBaseline:
    import tensorflow as tf

    from serving.layout import read_feature_info

    serialized = read_examples(eval_pattern, limit)
    info = read_feature_info(float_dir)
    fn = tf.saved_model.load(float_dir).signatures[EXAMPLES_SIGNATURE]
    return FloatBaseline(float_dir=float_dir, serialized=serialized, info=info, labels=labels_of(serialized, info),
                         float_fn=fn, float_predictions=fn(examples=tf.constant(serialized))["predictions"].numpy())


@dataclasses.dataclass(frozen=True)
class Comparison:
    """Everything the gates look at, measured on the eval split (quantized vs float)."""
    examples: int
    metric: str
    float_metric: float
    quantized_metric: float
    metric_drop: float  # in metric units, positive = worse
    metric_drop_low: float  # its one-sided QUALITY_CONFIDENCE lower bound (metric_drop_se): the gated one
    max_abs_prediction_diff: float
    # What the two measurements above are divided by for their gates: 1 for classification; for regression
    # (label units) the float metric and the standard deviation of the float predictions.
    metric_drop_scale: float
    prediction_diff_scale: float
    label_flip_rate: Optional[float]  # None for regression
    label_flips: Optional[int]
    label_flip_rate_low: Optional[float]  # its one-sided QUALITY_CONFIDENCE lower bound: the gated one
    float_weight_bytes: int
    quantized_weight_bytes: int
    weight_size_ratio: float
    float_kernel_bytes: int
    quantized_kernel_bytes: int
    size_ratio: float  # kernels with their scales: the gated one
    float_variables_bytes: int  # variables/ on disk
    quantized_variables_bytes: int
    latency_ms: Dict[str, Dict[int, Dict[str, float]]]  # model -> batch -> p50_ms, p99_ms
    latency_interval: Dict[str, RatioInterval]  # batch -> quantized/float median paired ratio and interval

    def latency_ratio(self) -> Dict[str, float]:
        return {batch: interval.ratio for batch, interval in self.latency_interval.items()}

    def to_json(self) -> Dict[str, Any]:
        out = dataclasses.asdict(self)
        out["latency_ratio"] = self.latency_ratio()
        return out


def compare_prepared(prepared: FloatBaseline, quantized_dir: str, metric: str, batch_sizes=LATENCY_BATCHES,
                     looks: Sequence[int] = LATENCY_LOOKS, max_latency_ratio: Optional[float] = None
                     ) -> Comparison:
    """The gates' measurements. Latency rounds run until a look decides against max_latency_ratio (the
    latency gate's threshold; None: the first look only)."""
    import numpy as np
    import tensorflow as tf

    serialized, task, labels = prepared.serialized, prepared.info["task"], prepared.labels
    # Timed: two fresh copies of each model, loaded float, quantized, quantized, float. Against the float
    # model loaded long before (and used for the predictions), the same float model loaded again was
    # 0.7-0.9% slower at batch 1; a model loaded right after another still ran ~0.5% slower than it.
    load = lambda path: tf.saved_model.load(path).signatures[EXAMPLES_SIGNATURE]  # noqa: E731
    float_first, quantized_first, quantized_second, float_second = (
        load(prepared.float_dir), load(quantized_dir), load(quantized_dir), load(prepared.float_dir))
    copies = {"float": [float_first, float_second], "quantized": [quantized_first, quantized_second]}
    predictions = {"float": prepared.float_predictions,
                   "quantized": quantized_first(examples=tf.constant(serialized))["predictions"].numpy()}
    diff = np.abs(predictions["float"] - predictions["quantized"])
    float_decisions, quantized_decisions = (decisions(task, predictions[n]) for n in ("float", "quantized"))
    timed = balanced_latencies(copies, serialized, batch_sizes, looks, max_latency_ratio)
    float_bytes, quantized_bytes = weight_bytes(prepared.float_dir), weight_bytes(quantized_dir)
    # What quantization controls: the kernels, stored in a smaller dtype plus their scales. The biases (every
    # method keeps them float32) and the object graph are the same in both models; in a tiny model they
    # would decide the ratio (README, "Quantized push": sizes measured from iris to taxi).
    biases = bias_bytes(prepared.float_dir)
    float_kernel_bytes, quantized_kernel_bytes = float_bytes - biases, quantized_bytes - biases
    float_metric = metric_value(metric, task, labels, predictions["float"])
    quantized_metric = metric_value(metric, task, labels, predictions["quantized"])
    regression = task == "regression"
    metric_drop = (float_metric - quantized_metric) * (1 if higher_is_better(metric) else -1)
    z = statistics.NormalDist().inv_cdf(QUALITY_CONFIDENCE)
    flips = int(np.sum(float_decisions != quantized_decisions)) if float_decisions is not None else None
    return Comparison(
        examples=len(serialized), metric=metric, float_metric=float_metric, quantized_metric=quantized_metric,
        metric_drop=metric_drop,
        metric_drop_low=metric_drop - z * metric_drop_se(metric, task, labels, predictions["float"],
                                                         predictions["quantized"]),
        max_abs_prediction_diff=float(diff.max()),
        metric_drop_scale=(abs(float_metric) or 1.0) if regression else 1.0,
        prediction_diff_scale=(float(np.std(predictions["float"])) or 1.0) if regression else 1.0,
        label_flip_rate=flips / len(serialized) if flips is not None else None, label_flips=flips,
        label_flip_rate_low=flip_rate_lower_bound(flips, len(serialized)) if flips is not None else None,
        float_weight_bytes=float_bytes, quantized_weight_bytes=quantized_bytes,
        weight_size_ratio=float_bytes / max(quantized_bytes, 1),
        float_kernel_bytes=float_kernel_bytes, quantized_kernel_bytes=quantized_kernel_bytes,
        size_ratio=float_kernel_bytes / max(quantized_kernel_bytes, 1),
        float_variables_bytes=variables_bytes(prepared.float_dir),
        quantized_variables_bytes=variables_bytes(quantized_dir),
        latency_ms=timed["ms"], latency_interval={str(b): timed["ratio"][b] for b in batch_sizes})


def compare(float_dir: str, quantized_dir: str, eval_pattern: str, metric: str, limit: int = 50000,
            batch_sizes=LATENCY_BATCHES, looks: Sequence[int] = LATENCY_LOOKS,
            max_latency_ratio: Optional[float] = None) -> Comparison:
    return compare_prepared(prepare(float_dir, eval_pattern, limit), quantized_dir, metric, batch_sizes,
                            looks, max_latency_ratio)


def failures(results: Comparison, gates: Gates) -> List[str]:
    """One line per failed gate, naming the measurement and the threshold."""
    failed = []
    metric_scale, diff_scale = results.metric_drop_scale, results.prediction_diff_scale
    per = lambda scale, what: "" if scale == 1.0 else f" ({what} {scale:.4g})"  # noqa: E731
    sure = f"with {QUALITY_CONFIDENCE:.0%} confidence"
    if gates.max_metric_drop is not None and results.metric_drop_low / metric_scale > gates.max_metric_drop:
        failed.append(f"{results.metric} drops by {results.metric_drop / metric_scale:.4f}"
                      f"{per(metric_scale, 'relative to the float value')} "
                      f"({results.float_metric:.4f} -> {results.quantized_metric:.4f}; at least "
                      f"{results.metric_drop_low / metric_scale:.4f} {sure} over {results.examples} eval "
                      f"examples), more than max_metric_drop {gates.max_metric_drop}")
    if (gates.max_abs_prediction_diff is not None
            and results.max_abs_prediction_diff / diff_scale > gates.max_abs_prediction_diff):
        failed.append(f"max |prediction difference| {results.max_abs_prediction_diff / diff_scale:.4g}"
                      f"{per(diff_scale, 'in standard deviations of the float predictions,')} exceeds "
                      f"max_abs_prediction_diff {gates.max_abs_prediction_diff}")
    if (gates.max_label_flip_rate is not None and results.label_flip_rate_low is not None
            and results.label_flip_rate_low > gates.max_label_flip_rate):
        failed.append(f"label flip rate {results.label_flip_rate:.4f} ({results.label_flips} of "
                      f"{results.examples} eval examples; at least {results.label_flip_rate_low:.4f} {sure}) "
                      f"exceeds max_label_flip_rate {gates.max_label_flip_rate}")
    if gates.min_size_ratio is not None and results.size_ratio < gates.min_size_ratio:
        failed.append(f"size ratio {results.size_ratio:.2f}x ({results.float_kernel_bytes} -> "
                      f"{results.quantized_kernel_bytes} bytes of kernels with their scales) is below "
                      f"min_size_ratio {gates.min_size_ratio}")
    if gates.max_latency_ratio is not None:
        failed += latency_failures(results.latency_interval, gates.max_latency_ratio)
    return failed
