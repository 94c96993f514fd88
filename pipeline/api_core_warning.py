"""google.api_core's Python end-of-life warning, without its scan of every installed distribution.

Beam's GCP I/O imports the Google Cloud clients, and google.api_core checks the Python version as each of them
imports (`check_python_version`). From 2026-10-24, a year before Python 3.11's end of life, it warns
(FutureWarning), and to name the pip distribution of the package in the message it calls
`importlib.metadata.packages_distributions()`, which reads the metadata of every installed distribution:
0.11-0.16 s of every tfxp process here (timed alone, 2026-12-01), ~3% of a cached re-run.

`skip_distribution_scan()` puts in `sys.modules` api_core's `_python_version_support` module, loaded from
the installed file before the package's `__init__` runs (which checks at once), with the distribution lookup
answering "unknown": the warnings are still issued (to the run's log file), naming the import package
(`google.cloud.bigquery`) instead of `package google-cloud-bigquery (google.cloud.bigquery)`. Called by the
CLI before anything imports Beam; a process that imported google.api_core already, or an api_core without
that lookup, is left as it is. Workers import api_core as usual."""
from __future__ import annotations

import importlib.util
import os
import sys

PACKAGE = "google.api_core"
MODULE = f"{PACKAGE}._python_version_support"
LOOKUP = "_get_pypi_package_name"  # module name -> distribution name, or None when unknown


def _unknown_distribution(module_name: str) -> None:
    return None


def skip_distribution_scan() -> bool:
    """Installs the module with the lookup replaced (True), or leaves the process as it is (False)."""
    if PACKAGE in sys.modules or MODULE in sys.modules:
        return False
    try:
        package = importlib.util.find_spec(PACKAGE)  # imports the namespace package `google`, not api_core
    except ImportError:
        return False
    if package is None or not package.submodule_search_locations:
        return False
    path = os.path.join(list(package.submodule_search_locations)[0], MODULE.rsplit(".", 1)[1] + ".py")
    if not os.path.exists(path):
        return False
    spec = importlib.util.spec_from_file_location(MODULE, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if not callable(getattr(module, LOOKUP, None)):
        return False
    setattr(module, LOOKUP, _unknown_distribution)
    sys.modules[MODULE] = module
    return True
