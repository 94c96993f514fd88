"""Atomic pushes into TF Serving layout: `<serving_dir>/<version>/` appears whole or not at all."""
from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from typing import Any, Dict, Optional

from config import is_remote
from serving.layout import PUSH_RECORD, read_push_record, versions


def next_version(*serving_dirs: str) -> int:
    """A timestamp version, above every version already in any of the directories."""
    latest = max([v for d in serving_dirs for v in versions(d)], default=0)
    return max(int(time.time()), latest + 1)


def model_fingerprint(model_dir: str) -> str:
    """sha256 of a SavedModel's graph and variables. A model's artifact URI alone does not identify it: a
    pipeline root that was deleted and run again reuses the same URIs for new models."""
    import hashlib

    import tensorflow as tf

    digest = hashlib.sha256()
    names = ["saved_model.pb"] + sorted(os.path.join("variables", n)
                                        for n in tf.io.gfile.listdir(os.path.join(model_dir, "variables")))
    for name in names:
        digest.update(name.encode())
        with tf.io.gfile.GFile(os.path.join(model_dir, name), "rb") as f:
            digest.update(f.read())
    return digest.hexdigest()[:32]


def already_pushed(serving_dir: str, source_model_uri: str, fingerprint: Optional[str] = None) -> Optional[str]:
    """The latest version's directory when it was pushed from this same model (same artifact URI and, when
    the push record has one, the same model fingerprint), else None."""
    found = versions(serving_dir)
    if not found:
        return None
    latest = os.path.join(serving_dir, str(found[-1]))
    record = read_push_record(latest)
    if record is None or record.get("source_model_uri") != source_model_uri:
        return None
    recorded = record.get("source_model_fingerprint")
    return latest if recorded is None or fingerprint is None or recorded == fingerprint else None


def push_atomically(model_dir: str, serving_dir: str, version: int, record: Dict[str, Any]) -> str:
    """Copies model_dir to a hidden temporary directory inside serving_dir (same filesystem), writes the
    push record, then renames it to `<serving_dir>/<version>`: a poller never sees a half-written version.

    On object stores (gs://) a rename copies object by object, so there the version directory is written
    with `saved_model.pb` last: TF Serving loads a version only once its saved_model.pb exists."""
    if is_remote(serving_dir) or is_remote(model_dir):
        return _push_remote(model_dir, serving_dir, version, record)
    os.makedirs(serving_dir, exist_ok=True)
    final = os.path.join(serving_dir, str(version))
    if os.path.exists(final):
        raise FileExistsError(f"{final} already exists")
    staging = os.path.join(serving_dir, f".tmp-{version}-{uuid.uuid4().hex}")
    try:
        shutil.copytree(model_dir, staging)
        os.makedirs(os.path.join(staging, os.path.dirname(PUSH_RECORD)), exist_ok=True)
        with open(os.path.join(staging, PUSH_RECORD), "w") as f:
            json.dump(record, f, indent=2, sort_keys=True)
        os.rename(staging, final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return final


def _push_remote(model_dir: str, serving_dir: str, version: int, record: Dict[str, Any]) -> str:
    import tensorflow as tf

    gfile = tf.io.gfile
    final = os.path.join(serving_dir, str(version))
    if gfile.exists(final):
        raise FileExistsError(f"{final} already exists")
    files = []
    for directory, _, names in gfile.walk(model_dir):
        files += [os.path.relpath(os.path.join(directory, name), model_dir) for name in names]
    files.sort(key=lambda name: (name == "saved_model.pb", name))  # saved_model.pb last
    try:
        for name in files:
            target = os.path.join(final, name)
            gfile.makedirs(os.path.dirname(target))
            if name == "saved_model.pb":
                gfile.makedirs(os.path.dirname(os.path.join(final, PUSH_RECORD)))
                with gfile.GFile(os.path.join(final, PUSH_RECORD), "w") as f:
                    json.dump(record, f, indent=2, sort_keys=True)
            gfile.copy(os.path.join(model_dir, name), target, overwrite=False)
    except Exception:
        if gfile.exists(final):
            gfile.rmtree(final)  # no partial version left behind
        raise
    return final
