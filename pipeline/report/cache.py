"""What a report computed from a run's artifacts, kept beside the report for the next one: charts (SVG) and
values read back from artifacts (JSON), each under a digest of the function's source and its arguments.

A re-run whose steps came from cache computes none of them again: 18 taxi charts took ~2.5 s, the analyzer
values read through the transform graph ~0.6 s. Entries one report did not use are removed when it is
written (`prune`), so the directory holds one report's entries."""
from __future__ import annotations

import hashlib
import inspect
import json
import os
from typing import Any, Callable, Optional


class ChartCache:
    def __init__(self, directory: Optional[str]):
        self.directory, self.used = directory, set()

    def _entry(self, function: Callable, args, suffix: str) -> str:
        # The function's source is part of the key: a changed chart style is drawn again.
        key = hashlib.sha256(json.dumps([inspect.getsource(function), args], sort_keys=True, default=repr
                                        ).encode()).hexdigest()[:24]
        self.used.add(f"{key}{suffix}")
        return os.path.join(self.directory, f"{key}{suffix}")

    def _cached(self, function: Callable, args, suffix: str, dump: Callable[[Any], str],
                load: Callable[[str], Any]) -> Any:
        if self.directory is None:
            return function(*args)
        path = self._entry(function, args, suffix)
        if os.path.exists(path):
            with open(path, encoding="utf-8") as f:
                return load(f.read())
        result = function(*args)
        os.makedirs(self.directory, exist_ok=True)
        with open(f"{path}.partial", "w", encoding="utf-8") as f:
            f.write(dump(result))
        os.replace(f"{path}.partial", path)
        return result

    def draw(self, function: Callable[..., str], *args) -> str:
        """function(*args), an SVG chart, drawn once."""
        return self._cached(function, args, ".svg", lambda svg: svg, lambda text: text)

    def value(self, function: Callable, *args) -> Any:
        """function(*args), a JSON value, computed once."""
        return self._cached(function, args, ".json", json.dumps, json.loads)

    def prune(self) -> None:
        if self.directory and os.path.isdir(self.directory):
            for name in os.listdir(self.directory):
                if name not in self.used:
                    os.remove(os.path.join(self.directory, name))
