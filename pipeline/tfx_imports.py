"""The `tfx` command's process imports TFX's components one by one, as they are asked for.

`tfx/components/__init__.py` imports all sixteen TFX components, and Python runs a package's `__init__`
before any of its modules: importing `tfx.components.evaluator.component` (LocalDagRunner's input
resolution does, and so does every pipeline) also imports the Tuner (keras_tuner), the InfraValidator
(kubernetes, docker), the BulkInferrer, ExampleDiff, DistributionValidator and ModelValidator. None of them
is in tfxp's DAG. In a cached re-run, where no executor runs, imports are most of the process's time.

`defer_component_imports()` puts in `sys.modules` a `tfx.components` package with the same path, whose
names (read from the installed `__init__`, so they follow the TFX version) are imported on first use:
`from tfx.components import Tuner` still works and gives the same class. Called by the CLI before anything
imports TFX; a process that imported `tfx.components` already is left as it is. Workers (Beam, Dataflow,
Kubeflow/Vertex containers) never run it: they import TFX as usual. README, "Performance"."""
from __future__ import annotations

import ast
import importlib
import importlib.util
import sys
from typing import Dict, List, Tuple

PACKAGE = "tfx.components"


def component_names(init_source: str) -> Tuple[Dict[str, Tuple[str, str]], List[str]]:
    """From the package's `__init__` source: {name: (module, attribute)} of its absolute `from ... import`s,
    and its `__all__` (those names when it has none)."""
    names: Dict[str, Tuple[str, str]] = {}
    exported = None
    for node in ast.parse(init_source).body:
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            for alias in node.names:
                if alias.name == "*":
                    raise ValueError(f"{PACKAGE}/__init__.py star-imports {node.module}: names unknown")
                names[alias.asname or alias.name] = (node.module, alias.name)
        elif (isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets)):
            exported = list(ast.literal_eval(node.value))
        elif not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)):  # the docstring
            raise ValueError(f"{PACKAGE}/__init__.py does more than import names (line {node.lineno})")
    return names, exported if exported is not None else sorted(names)


def defer_component_imports() -> bool:
    """Installs the deferring `tfx.components` (True), or leaves the process as it is (False): already
    imported, or an `__init__` that does more than import names."""
    if PACKAGE in sys.modules:
        return False
    spec = importlib.util.find_spec(PACKAGE)
    with open(spec.origin, encoding="utf-8") as f:
        source = f.read()
    try:
        names, exported = component_names(source)
    except ValueError:
        return False
    package = importlib.util.module_from_spec(spec)  # path, file and spec set; __init__ not run

    def __getattr__(name: str):
        # A name of __init__, or one of the package's modules (the eager __init__ leaves those it
        # imports as attributes: `tfx.components.evaluator` after a bare `import tfx.components`).
        if name in names:
            module, attribute = names[name]
            value = getattr(importlib.import_module(module), attribute)
        elif not name.startswith("__") and importlib.util.find_spec(f"{PACKAGE}.{name}") is not None:
            value = importlib.import_module(f"{PACKAGE}.{name}")
        else:
            raise AttributeError(f"module {PACKAGE!r} has no attribute {name!r}")
        setattr(package, name, value)
        return value

    package.__getattr__ = __getattr__
    package.__all__ = exported
    sys.modules[PACKAGE] = package
    parent = importlib.import_module(PACKAGE.rpartition(".")[0])
    setattr(parent, PACKAGE.rpartition(".")[2], package)
    return True
