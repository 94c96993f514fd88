"""Benchmarks that write JSON (README, "Performance")."""
import json
import os
from typing import Any


def write_json(path: str, payload: Any) -> None:
    """A bench's result file, its directory made if needed."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        json.dump(payload, f, indent=2, sort_keys=True)
