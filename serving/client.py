"""A client of a pushed model: load it and send it raw tf.Examples, as TF Serving would receive them.

The serving directory's layout, and the features file this client encodes requests with, are
serving/layout.py's.
"""
from __future__ import annotations

from typing import Any, Iterable, List, Mapping, Optional

from serving.layout import EXAMPLES_SIGNATURE, latest_model_dir, read_feature_info


def _feature(value: Any, dtype: str):
    import tensorflow as tf

    if dtype == "string":
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=[str(value).encode()]))
    if dtype == "int64":
        return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(float(value))]))
    return tf.train.Feature(float_list=tf.train.FloatList(value=[float(value)]))


def encode_examples(rows: Iterable[Mapping[str, Any]], feature_dtypes: Mapping[str, str]) -> List[bytes]:
    """Serialized tf.Examples of raw features; a None or '' value is a missing cell (feature left out)."""
    import tensorflow as tf

    serialized = []
    for row in rows:
        features = {name: _feature(row[name], dtype) for name, dtype in feature_dtypes.items()
                    if row.get(name) not in (None, "")}
        serialized.append(tf.train.Example(features=tf.train.Features(feature=features)).SerializeToString())
    return serialized


class ServedModel:
    """A pushed SavedModel with its serving signature and feature info."""

    def __init__(self, model_dir: str):
        import tensorflow as tf

        self.model_dir = model_dir
        self.info = read_feature_info(model_dir)
        self._model = tf.saved_model.load(model_dir)
        self.signature = self._model.signatures[EXAMPLES_SIGNATURE]

    @classmethod
    def latest(cls, serving_dir: str) -> "ServedModel":
        return cls(latest_model_dir(serving_dir))

    def predict_serialized(self, serialized: List[bytes]):
        import tensorflow as tf

        return self.signature(examples=tf.constant(serialized))["predictions"].numpy()

    def predict_rows(self, rows: Iterable[Mapping[str, Any]]):
        return self.predict_serialized(encode_examples(rows, self.info["features"]))

    def classes(self) -> Optional[List[str]]:
        return self.info.get("classes")
