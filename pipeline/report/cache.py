"""What a report computed from a run's artifacts, kept beside the report for the next one: charts (SVG) and
values read back from artifacts (JSON), each under a digest of the function's source and its arguments.

A re-run whose steps came from cache computes none of them again: 18 taxi charts took ~2.5 s, the analyzer
values read through the transform graph ~0.6 s. Entries one report did not use are removed when it is
written (`prune`), so the directory holds one report's entries."""
from __future__ import annotations

import hashlib
import importlib.util
import inspect
import json
import os
from typing import Any, Callable, Optional, Sequence


def _module_source(name: str) -> str:
    with open(importlib.util.find_spec(name).origin, encoding="utf-8") as f:
        return f.read()


class ChartCache:
    def __init__(self, directory: Optional[str]):
        self.directory, self.used = directory, set()

    def _entry(self, function: Callable, args, suffix: str, depends_on: Sequence[str] = ()) -> str:
        # The function's source is part of the key: a changed chart style is drawn again. So are the
        # sources of the modules it depends on, when named.
        code = [inspect.getsource(function)] + [_module_source(name) for name in depends_on]
        key = hashlib.sha256(json.dumps([code[0] if len(code) == 1 else code, args], sort_keys=True, default=repr
                                        ).encode()).hexdigest()[:24]
        self.used.add(f"{key}{suffix}")
        return os.path.join(self.directory, f"{key}{suffix}")

    def _cached(self, function: Callable, args, suffix: str, dump: Callable[[Any], str],
                load: Callable[[str], Any], depends_on: Sequence[str] = ()) -> Any:
        if self.directory is None:
            return function(*args)
        path = self._entry(function, args, suffix, depends_on)
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

    def value(self, function: Callable, *args, depends_on: Sequence[str] = ()) -> Any:
        """function(*args), a JSON value, computed once (again when the source of the function, or of a
        module named in `depends_on`, changes)."""
        return self._cached(function, args, ".json", json.dumps, json.loads, depends_on)

    def prune(self) -> None:
        if self.directory and os.path.isdir(self.directory):
            for name in os.listdir(self.directory):
                if name not in self.used:
                    os.remove(os.path.join(self.directory, name))
