"""The metrics of a constant predictor: what a model must beat to have learned anything.

The constant predicts the training split's label distribution for every example: the mean label (binary:
the positive share, so its accuracy is the majority class's; regression: the training mean) or the class
frequencies (multiclass: its accuracy is the majority class's). Its metrics on the eval split are computed
as the Evaluator computes them (components/evaluator/metrics.py, equal to TFMA's).
"""
from __future__ import annotations

import functools
import os
from typing import TYPE_CHECKING, Dict, List, Optional, Sequence, Tuple

if TYPE_CHECKING:
    from pipeline.report.cache import ChartCache

# Labels read per split: enough for the metrics to 3 decimals, bounded in time and memory.
MAX_LABELS = 100_000
LABEL_BATCH = 4096


@functools.lru_cache(maxsize=4)
def read_labels(split_uri: str, label: str, limit: int = MAX_LABELS) -> Tuple:
    """Raw label values of the split's examples (rows with no label are skipped), read a batch at a time as
    Arrow columns (preprocessing/payload.py: tf.Examples decoded by tfx-bsl's C++ decoder; one proto parse
    per record in Python cost ~3 s per 15k rows, in every run's summary). Kept for the process (a published
    artifact never changes): the run summary and the run report both need them (~0.5 s each time on the taxi
    splits)."""
    import tensorflow as tf

    from preprocessing.payload import record_batches

    files = sorted(tf.io.gfile.glob(os.path.join(split_uri, "*")))
    values: List = []
    for records in record_batches(files, limit, columns=[label], batch_rows=LABEL_BATCH) if files else ():
        if label not in records.schema.names:
            continue
        for items in records.column(label).to_pylist():
            if items:
                values.append(items[0].decode() if isinstance(items[0], bytes) else items[0])
    return tuple(values)


def constant_metrics(train_labels: Sequence, eval_labels: Sequence, task: str,
                     metrics: Sequence[str]) -> Dict[str, float]:
    import numpy as np

    from components.quantizer.gates import metric_value

    if not train_labels or not eval_labels:
        return {}
    if task == "multiclass":
        classes = sorted({str(v) for v in train_labels} | {str(v) for v in eval_labels})
        index = {c: i for i, c in enumerate(classes)}
        frequencies = np.bincount([index[str(v)] for v in train_labels], minlength=len(classes)) / len(train_labels)
        labels = np.array([index[str(v)] for v in eval_labels])
        predictions = np.tile(frequencies, (len(labels), 1))
    else:
        labels = np.asarray(eval_labels, dtype="float64")
        predictions = np.full((len(labels), 1), float(np.mean(np.asarray(train_labels, dtype="float64"))))
    return {name: metric_value(name, task, labels, predictions) for name in metrics}


def constant_metrics_of_examples(examples_uri: str, label: str, task: str, metrics: Sequence[str]
                                 ) -> Dict[str, float]:
    """constant_metrics for ExampleGen's output (its Split-train and Split-eval directories)."""
    return constant_metrics(read_labels(os.path.join(examples_uri, "Split-train"), label),
                            read_labels(os.path.join(examples_uri, "Split-eval"), label), task, metrics)


# The code that computes the constant's metrics: a cached value is computed again when any of it changes.
METRICS_CODE = ("pipeline.constant_baseline", "components.quantizer.gates", "components.evaluator.metrics")


def task_constant_metrics(examples_uri: str, label: str, task: str, cache: Optional["ChartCache"]
                          ) -> Dict[str, float]:
    """constant_metrics_of_examples for every metric of the task, kept in `cache` (the run report's,
    pipeline/report/cache.py; None: computed) under the examples artifact's URI, which never changes, and the
    code that computes them: the run summary and the report share it, and a cached re-run reads no labels
    (~0.5 s on the taxi splits)."""
    from config import TASK_METRICS
    from pipeline.report.cache import ChartCache

    return (cache or ChartCache(None)).value(constant_metrics_of_examples, examples_uri, label, task,
                                             list(TASK_METRICS[task]), depends_on=METRICS_CODE)
