"""Reading a YAML config section by section, and the paths and code fingerprints a config refers to."""
from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import os
from typing import Any, Mapping, Optional

from config.schema import is_remote


class ConfigError(ValueError):
    """A config problem, named by file and key."""

    def __init__(self, path: str, key: str, message: str):
        self.path, self.key = path, key
        super().__init__(f"{path}: {key}: {message}")


class Section:
    """Reads keys of one mapping, remembering which were used so that unknown keys are errors."""

    def __init__(self, path: str, prefix: str, raw: Any):
        self.path, self.prefix = path, prefix
        if raw is None:
            raw = {}
        if not isinstance(raw, Mapping):
            raise ConfigError(path, prefix or "<top level>", f"must be a mapping, got {type(raw).__name__}")
        self.raw = dict(raw)
        self.used: set = set()

    def key(self, name: str) -> str:
        return f"{self.prefix}.{name}" if self.prefix else name

    def error(self, name: str, message: str) -> ConfigError:
        return ConfigError(self.path, self.key(name), message)

    def get(self, name: str, kind, default: Any = dataclasses.MISSING) -> Any:
        self.used.add(name)
        if name not in self.raw or self.raw[name] is None:
            if default is dataclasses.MISSING:
                raise self.error(name, "is required")
            return default
        value = self.raw[name]
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if kind is not None and (not isinstance(value, kind) or (kind is int and isinstance(value, bool))):
            raise self.error(name, f"must be {getattr(kind, '__name__', kind)}, got {value!r}")
        return value

    def positive_int(self, name: str, default: Any = dataclasses.MISSING) -> int:
        value = self.get(name, int, default)
        if value <= 0:
            raise self.error(name, f"must be > 0, got {value}")
        return value

    def choice(self, name: str, choices, default: Any = dataclasses.MISSING) -> str:
        value = self.get(name, str, default)
        if value not in choices:
            raise self.error(name, f"must be one of {', '.join(choices)}; got {value!r}")
        return value

    def section(self, name: str) -> "Section":
        self.used.add(name)
        return Section(self.path, self.key(name), self.raw.get(name))

    def finish(self) -> None:
        unknown = sorted(set(self.raw) - self.used)
        if unknown:
            known = ", ".join(sorted(self.used))
            raise self.error(unknown[0], f"unknown key (known keys here: {known})")


def resolve_data_path(value: str, base_dir: str) -> str:
    """`package://pkg/sub/dir` -> directory inside an installed package; else relative to base_dir."""
    if value.startswith("package://"):
        package, _, sub = value[len("package://"):].partition("/")
        location = package_dir(package)
        if location is None:
            raise FileNotFoundError(f"package {package!r} is not installed")
        return os.path.join(location, sub)
    return resolve_output(value, base_dir)  # gs:// and friends: checked by the pipeline when it reads them


def package_dir(package: str) -> Optional[str]:
    spec = importlib.util.find_spec(package)  # imports the parents of a dotted name, not the package itself
    return list(spec.submodule_search_locations)[0] if spec and spec.submodule_search_locations else None


# The code Transform and Trainer run, by dotted path: its hash is part of their custom_config. The custom
# components fingerprint their own code (components/*/component.py CODE_PACKAGES).
TRAINING_CODE = ("config", "preprocessing", "trainer", "serving")


def code_fingerprint(packages=TRAINING_CODE) -> str:
    """sha256 of the .py files of these packages (dotted names, e.g. components.quantizer), as installed."""
    digest = hashlib.sha256()
    for package in packages:
        root = package_dir(package)
        digest.update(package.encode())
        for dirpath, dirnames, filenames in os.walk(root or ""):
            dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
            for name in sorted(f for f in filenames if f.endswith(".py")):
                path = os.path.join(dirpath, name)
                digest.update(os.path.relpath(path, root).encode())
                with open(path, "rb") as f:
                    digest.update(f.read())
    return digest.hexdigest()[:16]


def repo_root() -> Optional[str]:
    """The checkout holding these packages (what the Dockerfile copies into the image)."""
    root = package_dir("config")
    return os.path.dirname(root) if root else None


def default_setup_file() -> Optional[str]:
    """setup.py beside the installed (editable or source) packages, if there is one."""
    root = repo_root()
    path = os.path.join(root, "setup.py") if root else None
    return path if path and os.path.isfile(path) else None


def resolve_output(value: str, base_dir: str) -> str:
    if is_remote(value):
        return value
    return os.path.normpath(os.path.join(base_dir, os.path.expanduser(value)))


def file_fingerprint(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()[:16]
