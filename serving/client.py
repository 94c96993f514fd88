"""Load a pushed model and send it raw tf.Examples, as TF Serving would receive them.

A pushed model lives in `<serving_dir>/<version>/` (TF Serving layout). Beside the SavedModel the Trainer
writes `assets.extra/tfxp_features.json`: the raw feature names and dtypes the serving signature parses, the
label and task, and the class names for multiclass models. This module uses it to encode requests.
"""
from __future__ import annotations

import json
import os
from typing import Any, Dict, Iterable, List, Mapping, Optional

FEATURES_FILE = os.path.join("assets.extra", "tfxp_features.json")


def is_remote(path: str) -> bool:
    """gs://... and other filesystems that TensorFlow's gfile reads, rather than this machine's."""
    return "://" in path


def versions(serving_dir: str) -> List[int]:
    """Pushed versions, oldest first (directories whose name is an integer)."""
    if is_remote(serving_dir):
        import tensorflow as tf

        if not tf.io.gfile.isdir(serving_dir):
            return []
        names = [name.rstrip("/") for name in tf.io.gfile.listdir(serving_dir)]
        return sorted(int(name) for name in names
                      if name.isdigit() and tf.io.gfile.isdir(os.path.join(serving_dir, name)))
    if not os.path.isdir(serving_dir):
        return []
    return sorted(int(name) for name in os.listdir(serving_dir)
                  if name.isdigit() and os.path.isdir(os.path.join(serving_dir, name)))


def latest_model_dir(serving_dir: str) -> str:
    found = versions(serving_dir)
    if not found:
        raise FileNotFoundError(f"{serving_dir}: no pushed model versions")
    return os.path.join(serving_dir, str(found[-1]))


def read_text(path: str) -> str:
    """A local file's text, or a remote one's through TensorFlow's gfile."""
    if is_remote(path):
        import tensorflow as tf

        with tf.io.gfile.GFile(path) as f:
            return f.read()
    with open(path) as f:
        return f.read()


def read_feature_info(model_dir: str) -> Dict[str, Any]:
    return json.loads(read_text(os.path.join(model_dir, FEATURES_FILE)))


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
        self.signature = self._model.signatures["serving_default"]

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
