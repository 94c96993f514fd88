"""The serving directory's layout (TF Serving's): `<serving_dir>/<version>/` holds a SavedModel, and beside it
in `assets.extra/` (which TF Serving ignores) tfxp's two files:

  tfxp_features.json  the raw feature names and dtypes the serving signature parses, the label, the task and,
                      for multiclass models, the class names (written by trainer/export.py);
  tfxp_push.json      the push record: the source model's artifact URI and fingerprint, the quantization
                      method, the version, and what the version holds (`kind`: quantized or float);
  model_card.md       the model card of the run that pushed it (pipeline/report), added after the push.
"""
from __future__ import annotations

import json
import os
from typing import Any, Dict, List, Optional

from config import is_remote

FEATURES_FILE = os.path.join("assets.extra", "tfxp_features.json")
PUSH_RECORD = os.path.join("assets.extra", "tfxp_push.json")
# The run report's model card (pipeline/report), written after the push.
MODEL_CARD = os.path.join("assets.extra", "model_card.md")
# The signatures of every tfxp SavedModel (trainer/export.py): serialized tf.Examples, and one named tensor
# per raw feature for JSON clients (TF Serving's REST API). In the JSON one a missing cell is NaN (numeric
# features, which it takes as float64) or "" (text features), as a missing cell in training.
EXAMPLES_SIGNATURE = "serving_default"
JSON_SIGNATURE = "serving_json"
# What a pushed version holds: its push record's "kind", and the PushedModel's `pushed_kind` in ML Metadata.
QUANTIZED, FLOAT = "quantized", "float"


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


def read_push_record(version_dir: str) -> Optional[Dict[str, Any]]:
    """A pushed version's push record, or None when it has none (or an unreadable one)."""
    try:
        return json.loads(read_text(os.path.join(version_dir, PUSH_RECORD)))
    except (OSError, ValueError):
        return None


def pushed_kind(version_dir: str) -> Optional[str]:
    """QUANTIZED or FLOAT: what the push record of a pushed version says it holds."""
    return (read_push_record(version_dir) or {}).get("kind")
