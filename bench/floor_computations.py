"""The floors' own work in pyarrow and numpy, for bench/floors.py: what StatisticsGen computes (per feature
counts, missing, mean, std, zeros, min, max, quantiles; value frequencies) and what tfxp's taxi Transform
analyzes (means, standard deviations, mins, maxes, vocabularies), with no TFX, Beam or tf.Example involved."""
from __future__ import annotations

from typing import Any, Dict

import numpy as np

BATCH_ROWS = 8192
QUANTILES = np.linspace(0.0, 1.0, 11)


class Statistics:
    """Per feature: numeric (count, sum, sum of squares, zeros, min, max, values for quantiles) or string
    value frequencies, merged over batches; missing cells counted."""

    def __init__(self) -> None:
        self.numeric: Dict[str, Dict[str, Any]] = {}
        self.strings: Dict[str, Dict[bytes, int]] = {}
        self.missing: Dict[str, int] = {}

    def add_column(self, name: str, values, missing: int) -> None:
        import pyarrow as pa
        import pyarrow.compute as pc

        self.missing[name] = self.missing.get(name, 0) + missing
        if (pa.types.is_binary(values.type) or pa.types.is_large_binary(values.type)
                or pa.types.is_string(values.type) or pa.types.is_large_string(values.type)):
            counts = self.strings.setdefault(name, {})
            for pair in pc.value_counts(values).to_pylist():
                counts[pair["values"]] = counts.get(pair["values"], 0) + pair["counts"]
            return
        array = values.to_numpy(zero_copy_only=False).astype(np.float64)
        stats = self.numeric.setdefault(name, {"count": 0, "sum": 0.0, "sum_sq": 0.0, "zeros": 0,
                                               "min": np.inf, "max": -np.inf, "parts": []})
        stats["count"] += array.size
        stats["sum"] += float(array.sum())
        stats["sum_sq"] += float(np.dot(array, array))
        stats["zeros"] += int(np.count_nonzero(array == 0))
        if array.size:
            stats["min"], stats["max"] = min(stats["min"], float(array.min())), max(stats["max"], float(array.max()))
        stats["parts"].append(array)

    def add_list_batch(self, batch) -> None:
        """A RecordBatch of list columns (tfx-bsl's decoding): a missing cell is a null or empty list."""
        import pyarrow.compute as pc

        for name, column in zip(batch.schema.names, batch.columns):
            lengths = pc.list_value_length(column).fill_null(0)
            self.add_column(name, column.flatten(), int(pc.sum(pc.equal(lengths, 0)).as_py() or 0))

    def add_flat_batch(self, batch) -> None:
        """A RecordBatch of plain columns (pyarrow's CSV reader): a missing cell is a null."""
        for name, column in zip(batch.schema.names, batch.columns):
            self.add_column(name, column.drop_null(), column.null_count)

    def finish(self) -> Dict[str, Any]:
        out: Dict[str, Any] = {}
        for name, stats in self.numeric.items():
            values = np.concatenate(stats["parts"]) if stats["parts"] else np.zeros(0)
            count = max(stats["count"], 1)
            mean = stats["sum"] / count
            out[name] = {"count": stats["count"], "missing": self.missing[name], "mean": mean,
                         "std": float(np.sqrt(max(stats["sum_sq"] / count - mean * mean, 0.0))),
                         "zeros": stats["zeros"], "min": stats["min"], "max": stats["max"],
                         "quantiles": np.quantile(values, QUANTILES).tolist() if values.size else []}
        for name, counts in self.strings.items():
            top = sorted(counts.items(), key=lambda item: -item[1])[:10]
            out[name] = {"count": sum(counts.values()), "missing": self.missing[name], "unique": len(counts),
                         "top": [(value if isinstance(value, str) else value.decode("utf-8", "replace"), n)
                                 for value, n in top]}
        return out


def numpy_statistics(record_batches: list) -> Dict[str, Any]:
    stats = Statistics()
    for batch in record_batches:
        stats.add_list_batch(batch)
    return stats.finish()


def pyarrow_csv_parse(csv_path: str) -> int:
    """ExampleGen's floor: the CSV parsed into columns by pyarrow (its rows), nothing encoded or written."""
    import pyarrow.csv as pv

    return pv.read_csv(csv_path).num_rows


def pyarrow_csv_statistics(csv_path: str) -> Dict[str, Any]:
    import pyarrow.csv as pv

    stats = Statistics()
    for batch in pv.read_csv(csv_path).to_batches(max_chunksize=BATCH_ROWS):
        stats.add_flat_batch(batch)
    return stats.finish()


def pyarrow_csv_analyzers(csv_path: str, features) -> Dict[str, Any]:
    """The floor of Transform's work on the taxi config: its analyzers straight from the CSV with pyarrow and
    numpy. Per z-score feature the mean and standard deviation, per min-max feature the min, max and mean, of
    the present finite values as float32 (preprocessing/transform.py); per vocab feature the vocabulary as
    tf.Transform orders it (most frequent first, ties by the token, descending; integers as their decimal
    text; no token for a missing cell), cut to top_k. features: the config's FeatureConfigs."""
    import pyarrow.compute as pc
    import pyarrow.csv as pv

    table = pv.read_csv(csv_path)
    out: Dict[str, Any] = {}
    for feature in features:
        column = table.column(feature.name)
        if feature.treatment == "vocab":
            text = pc.cast(column, "string").fill_null("") if column.type != "string" else column.fill_null("")
            counts = pc.value_counts(text).to_pylist()
            # tf.Transform writes no empty token (a missing cell falls in the OOV bucket) and no token
            # holding a newline.
            ordered = sorted(((pair["counts"], pair["values"].encode()) for pair in counts
                              if pair["values"] and "\n" not in pair["values"]), reverse=True)
            out[feature.name] = [token.decode() for _, token in ordered[:feature.top_k]]
            continue
        values = column.drop_null().to_numpy().astype(np.float32)
        values = values[np.isfinite(values)].astype(np.float64)
        out[feature.name] = ({"mean": float(values.mean()), "std": float(values.std())}
                             if feature.treatment == "zscore" else
                             {"min": float(values.min()), "max": float(values.max()), "mean": float(values.mean())})
    return out
