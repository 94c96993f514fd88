"""TFMA's metrics for tfxp's tasks, computed a batch at a time with numpy.

`Sums` is a mergeable accumulator (Beam combines them across batches and workers); `metric_value` turns one
into the metrics TFMA would report for the same labels and predictions (tests/evaluator_test.py compares the
two on the same model and data):

  ExampleCount               examples seen (unweighted)
  BinaryAccuracy             share with (prediction > 0.5) == label, as TFMA's confusion matrix at 0.5
  AUC                        tfma.metrics.AUC (ROC, 10,000 thresholds, "interpolation"): TFMA's calibration
                             histogram summed here a batch at a time, then TFMA's own rebinning, confusion
                             matrices and AUC (so ties, saturated and boundary predictions count as in TFMA)
  SparseCategoricalAccuracy  share with argmax(prediction) == label
  MeanSquaredError           mean of (label - prediction)^2
  MeanAbsoluteError          mean of |label - prediction|
"""
from __future__ import annotations

import dataclasses
from typing import Dict, Optional

import numpy as np
from tensorflow_model_analysis.metrics import binary_confusion_matrices, calibration_histogram, confusion_matrix_metrics

from config import METRICS

EXAMPLE_COUNT = "ExampleCount"
# TFMA's output name of each metric class this module computes.
METRIC_NAMES: Dict[str, str] = {EXAMPLE_COUNT: "example_count",
                                **{m.keras_class: m.name for m in METRICS.values()}}
# TFMA's calibration histogram over [0, 1]: bucket 0 below 0, 1..N the N equal buckets, N+1 from 1 up.
HISTOGRAM_BUCKETS = calibration_histogram.DEFAULT_NUM_BUCKETS
_HISTOGRAM_SIZE = HISTOGRAM_BUCKETS + 2


@dataclasses.dataclass
class Sums:
    """What every metric of a task needs, summed over examples; for binary tasks also TFMA's calibration
    histogram (per bucket: the sum of labels, of predictions, and the number of examples)."""
    count: int = 0
    correct: int = 0  # binary at 0.5 / multiclass argmax
    squared_error: float = 0.0
    absolute_error: float = 0.0
    histogram: Optional[np.ndarray] = None  # [3, HISTOGRAM_BUCKETS + 2]: labels, predictions, examples

    def merge(self, other: "Sums") -> "Sums":
        self.count += other.count
        self.correct += other.correct
        self.squared_error += other.squared_error
        self.absolute_error += other.absolute_error
        if other.histogram is not None:
            self.histogram = other.histogram.copy() if self.histogram is None else self.histogram + other.histogram
        return self


def _histogram(labels: np.ndarray, values: np.ndarray) -> np.ndarray:
    """TFMA's CalibrationHistogramCombiner.add_input for a batch: bucket int(p * N + 1), clipped to [0, N+1]."""
    buckets = np.clip(np.floor(values * HISTOGRAM_BUCKETS + 1), 0, HISTOGRAM_BUCKETS + 1).astype(np.int64)
    return np.stack([np.bincount(buckets, weights=labels, minlength=_HISTOGRAM_SIZE),
                     np.bincount(buckets, weights=values, minlength=_HISTOGRAM_SIZE),
                     np.bincount(buckets, minlength=_HISTOGRAM_SIZE).astype(np.float64)])


def _values(labels: np.ndarray, predictions: np.ndarray) -> np.ndarray:
    """The one value per example of [N, 1] predictions (binary probability or regression value), as float64."""
    return predictions.reshape(labels.shape[0], -1)[:, 0].astype(np.float64)


def correct(task: str, labels: np.ndarray, predictions: np.ndarray) -> np.ndarray:
    """Per example of a classification task, whether the prediction is right (a bool array): binary at 0.5,
    multiclass by argmax. Its mean is the accuracy."""
    if task == "multiclass":
        return np.argmax(predictions, axis=-1) == labels.astype(np.int64)
    return (_values(labels, predictions) > 0.5) == (labels.astype(np.float64) > 0.5)


def errors(labels: np.ndarray, predictions: np.ndarray) -> np.ndarray:
    """Per example of a regression task, label - prediction. The means of its squares and absolute values
    are the MSE and MAE."""
    return labels.astype(np.float64) - _values(labels, predictions)


def batch_sums(task: str, labels: np.ndarray, predictions: np.ndarray) -> Sums:
    """The Sums of one batch. labels: [N] (or [N, 1]); predictions: [N, 1] (binary probability or regression
    value) or [N, classes] (multiclass probabilities)."""
    labels = np.asarray(labels).reshape(-1)
    predictions = np.asarray(predictions)
    if predictions.shape[0] != labels.shape[0]:
        raise ValueError(f"{labels.shape[0]} labels but {predictions.shape[0]} predictions in a batch")
    sums = Sums(count=int(labels.shape[0]))
    if task == "regression":
        error = errors(labels, predictions)
        sums.squared_error = float(np.dot(error, error))
        sums.absolute_error = float(np.sum(np.abs(error)))
        return sums
    sums.correct = int(np.sum(correct(task, labels, predictions)))
    if task == "binary":
        sums.histogram = _histogram(labels.astype(np.float64), _values(labels, predictions))
    return sums


def _auc(sums: Sums) -> float:
    """TFMA's AUC from the histogram: its binary_confusion_matrices computation (rebinning to the AUC's
    thresholds) and AUC's ROC/interpolation sum."""
    labels, predictions, examples = sums.histogram
    histogram = [calibration_histogram.Bucket(int(i), labels[i], predictions[i], examples[i])
                 for i in np.flatnonzero(examples)]
    computations = binary_confusion_matrices.binary_confusion_matrices(
        num_thresholds=binary_confusion_matrices.DEFAULT_NUM_THRESHOLDS)
    histogram_key, matrices = computations[-2].keys[-1], computations[-1]
    [value] = matrices.result({histogram_key: histogram}).values()
    return float(confusion_matrix_metrics.AUC()._metric_value(  # pylint: disable=protected-access
        curve="ROC", summation_method="interpolation", key=None, matrices=value))


def metric_value(class_name: str, sums: Sums) -> float:
    """The value of one metric class (a METRIC_NAMES key) from a task's Sums; NaN without examples."""
    if class_name == EXAMPLE_COUNT:
        return float(sums.count)
    if sums.count == 0:
        return float("nan")
    if class_name in ("BinaryAccuracy", "SparseCategoricalAccuracy"):
        return sums.correct / sums.count
    if class_name == "MeanSquaredError":
        return sums.squared_error / sums.count
    if class_name == "MeanAbsoluteError":
        return sums.absolute_error / sums.count
    if class_name == "AUC":
        return _auc(sums)
    raise ValueError(f"metric class {class_name!r} is not one the columnar Evaluator computes "
                     f"({', '.join(METRIC_NAMES)})")
