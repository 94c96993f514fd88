"""The `tfxp` command's process imports what a run uses, when it uses it.

A cached re-run executes no component, yet it imported all of TFX's components, TFMA's evaluators and
metrics, its notebook views and the Google Cloud clients of Beam's I/O: most of its time. Python runs a
package's `__init__` before any module of the package, and these are imported by names that run them at once:

- Package `__init__`s that only gather names (DEFERRED_PACKAGES). `tfx.components` imports all sixteen TFX
  components (the Tuner's keras_tuner, the InfraValidator's kubernetes and docker clients, ...), and LocalDagRunner's
  input resolution imports a module of it. `tensorflow_model_analysis` imports its evaluators, metrics (its
  Rouge metric imports nltk and so scikit-learn and scipy.stats), writers and notebook views (ipywidgets,
  IPython, jupyter_client), and TFX's component specs import `tensorflow_model_analysis.sdk`, so every
  pipeline did. `tensorflow_data_validation` likewise, for the anomalies proto the same specs import.
  `defer_package_init(name)` puts in `sys.modules` a package with the same path (its modules import as
  usual) whose names, read from the installed `__init__` (so they follow the installed version), are
  imported on first use: `tfma.EvalConfig` imports `tensorflow_model_analysis.sdk`, not the rest. A name the
  `__init__` gets otherwise (a star-import is looked up in its module; a function it defines, or `__all__`
  of a package without one) runs the real `__init__` into the package, once.
- Modules of Google Cloud clients that Beam and TensorFlow import for I/O a local run never does
  (DEFERRED_MODULES): BigQuery (whose tqdm helper imports ipywidgets and IPython), BigQuery Storage,
  Pub/Sub, and the discovery client of TensorFlow's GCE cluster resolver. `defer_module(name)` puts the
  module in `sys.modules` unexecuted; its first attribute access executes it in place.

Either way the names are the same objects as in a process that imported eagerly
(`tests/deferred_imports_test.py`). `defer_imports()` is called by the CLI before anything imports TFX;
modules already imported are left as they are. Beam, Dataflow and Kubeflow/Vertex workers never run it:
they import as usual. README, "Performance"."""
from __future__ import annotations

import ast
import dataclasses
import importlib
import importlib.util
import sys
import threading
import types
from typing import Dict, List, Optional, Tuple

DEFERRED_PACKAGES = ("tfx.components", "tensorflow_model_analysis", "tensorflow_data_validation")
DEFERRED_MODULES = ("google.cloud.bigquery", "google.cloud.bigquery_storage_v1", "google.cloud.pubsub",
                    "googleapiclient.discovery")

# Executing a module in place is not covered by the import system's per-module locks.
_EXECUTING = threading.RLock()


@dataclasses.dataclass(frozen=True)
class InitNames:
    """What a package's `__init__` binds, read without running it."""
    names: Dict[str, Tuple[str, str]]  # name -> (module, attribute) of its absolute `from ... import`s
    star_modules: List[str]  # modules it star-imports, in order
    exported: Optional[List[str]]  # its `__all__`, when it assigns one


def init_names(package: str, source: str) -> InitNames:
    """Parses a package's `__init__`. Accepted: the docstring; absolute `from ... import`s, also inside a
    `try` whose handlers only catch ImportError (under deferral a failing import raises at first use);
    `__all__ = [...]`; function definitions. Anything else (a call, an assignment: side effects the
    deferral would skip) raises ValueError naming the line."""
    names: Dict[str, Tuple[str, str]] = {}
    stars: List[str] = []
    exported: Optional[List[str]] = None

    def catches_only_import_error(handler: ast.ExceptHandler) -> bool:
        caught = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
        return all(isinstance(c, ast.Name) and c.id in ("ImportError", "ModuleNotFoundError") for c in caught)

    def read(body: List[ast.stmt]) -> None:
        nonlocal exported
        for node in body:
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                for alias in node.names:
                    if alias.name == "*":
                        stars.append(node.module)
                    else:
                        names[alias.asname or alias.name] = (node.module, alias.name)
            elif (isinstance(node, ast.Try) and not node.orelse and not node.finalbody
                  and all(h.type is not None and catches_only_import_error(h) for h in node.handlers)):
                read(node.body)
            elif (isinstance(node, ast.Assign)
                  and any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets)):
                exported = list(ast.literal_eval(node.value))
            elif isinstance(node, ast.FunctionDef):
                pass  # bound when the real __init__ runs (a name not found below)
            elif not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)):  # the docstring
                raise ValueError(f"{package}/__init__.py does more than import names (line {node.lineno})")

    read(ast.parse(source).body)
    return InitNames(names, stars, exported)


def _execute_in_place(module: types.ModuleType) -> None:
    """Runs the module's own code into it (the deferral's class dropped first, so that attribute misses
    during the run behave as usual); a failure leaves it out of `sys.modules`, as a failed import does."""
    module.__class__ = types.ModuleType
    try:
        module.__spec__.loader.exec_module(module)
    except BaseException:
        if sys.modules.get(module.__name__) is module:
            del sys.modules[module.__name__]
        raise


class _Deferred(types.ModuleType):
    """Pickled by name, as a module is, whatever its state."""

    def __reduce__(self):
        return importlib.import_module, (self.__name__,)


class _DeferredPackage(_Deferred):
    """A package whose `__init__` has not run: names of it are imported as asked for."""
    _deferred_init: InitNames

    def __getattr__(self, name: str):
        init = self.__dict__["_deferred_init"]
        if name in init.names:
            value = _imported(self.__name__, *init.names[name])
        elif not name.startswith("__") and importlib.util.find_spec(f"{self.__name__}.{name}") is not None:
            # A module of the package (the eager __init__ leaves those it imports as attributes).
            value = importlib.import_module(f"{self.__name__}.{name}")
        else:
            value = next((getattr(m, name) for m in map(importlib.import_module, init.star_modules)
                          if _star_exports(m, name)), _MISSING)
            if value is _MISSING:
                if name.startswith("__") and name != "__all__":
                    raise AttributeError(f"module {self.__name__!r} has no attribute {name!r}")
                with _EXECUTING:  # anything else the __init__ may define: run it, once
                    if type(self) is _DeferredPackage:
                        _execute_in_place(self)
                return getattr(self, name)
        setattr(self, name, value)
        return value


class _DeferredModule(_Deferred):
    """A module not executed yet: its first attribute access executes it."""

    def __getattr__(self, name: str):
        with _EXECUTING:
            if type(self) is _DeferredModule:
                locations = self.__spec__.submodule_search_locations
                if locations is not None:
                    self.__path__ = locations
                _execute_in_place(self)
        return getattr(self, name)


_MISSING = object()


def _imported(package: str, module: str, attribute: str):
    """What `from module import attribute` binds, in `package`'s `__init__`: the attribute, else the
    submodule of that name (`from tensorflow_model_analysis.api import types`)."""
    if module != package:  # the package's own names are its submodules
        imported = importlib.import_module(module)
        if hasattr(imported, attribute):
            return getattr(imported, attribute)
    return importlib.import_module(f"{module}.{attribute}")


def _star_exports(module: types.ModuleType, name: str) -> bool:
    """Whether `from module import *` binds `name`."""
    exported = getattr(module, "__all__", None)
    return name in exported if exported is not None else not name.startswith("_") and hasattr(module, name)


def defer_package_init(package: str) -> bool:
    """Installs the deferring package (True), or leaves the process as it is (False): already imported, not
    installed, or an `__init__` that does more than `init_names` accepts."""
    if package in sys.modules:
        return False
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None or spec.submodule_search_locations is None:
        return False
    with open(spec.origin, encoding="utf-8") as f:
        source = f.read()
    try:
        init = init_names(package, source)
    except ValueError:
        return False
    module = importlib.util.module_from_spec(spec)  # path, file and spec set; __init__ not run
    module._deferred_init = init
    if init.exported is not None:
        module.__all__ = init.exported
    module.__class__ = _DeferredPackage
    _install(package, module)
    return True


def defer_module(name: str) -> bool:
    """Installs the module unexecuted (True), or leaves the process as it is (False: already imported, or
    not installed). A package's `__path__` appears when it executes, so that importing one of its modules
    runs its `__init__` first, as usual."""
    if name in sys.modules:
        return False
    try:
        spec = importlib.util.find_spec(name)  # imports the parent packages (here: namespaces, a logger)
    except ImportError:
        return False
    if spec is None or spec.loader is None:
        return False
    module = importlib.util.module_from_spec(spec)
    if hasattr(module, "__path__"):
        del module.__path__
    module.__class__ = _DeferredModule
    _install(name, module)
    return True


def _install(name: str, module: types.ModuleType) -> None:
    sys.modules[name] = module
    parent, _, child = name.rpartition(".")
    if parent and parent in sys.modules:
        setattr(sys.modules[parent], child, module)


def is_deferred(name: str) -> bool:
    """Whether `name` is in `sys.modules` and still waiting: its `__init__` not run, or not executed."""
    return isinstance(sys.modules.get(name), _Deferred)  # run modules are plain ModuleType again


def defer_imports() -> Dict[str, bool]:
    """The CLI's deferrals, before anything imports TFX: {name: installed}."""
    installed = {name: defer_package_init(name) for name in DEFERRED_PACKAGES}
    installed.update({name: defer_module(name) for name in DEFERRED_MODULES})
    return installed
