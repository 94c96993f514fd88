"""pipeline/api_core_warning.py: the CLI's process gets google.api_core's Python end-of-life warnings
without the scan of every installed distribution that names their pip package."""
import json
import subprocess
import sys

import pytest

PROBE = """
import importlib.metadata, json, sys, warnings
scans = []
scan = importlib.metadata.packages_distributions
importlib.metadata.packages_distributions = lambda: scans.append(1) or scan()
skipped = again = None
if sys.argv[1] == "skip":
    from pipeline.api_core_warning import skip_distribution_scan
    skipped, again = skip_distribution_scan(), skip_distribution_scan()
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    import google.api_core
    from google.api_core import _python_version_support as support
    status = support.check_python_version("google.cloud.bigquery")
print(json.dumps({"skipped": skipped, "again": again, "scans": len(scans), "status": status.name,
                  "warnings": [str(w.message) for w in caught if issubclass(w.category, FutureWarning)]}))
"""


def probe(mode: str) -> dict:
    out = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def both():
    return {mode: probe(mode) for mode in ("skip", "as_installed")}


def test_the_warnings_are_issued_without_scanning_the_installed_distributions(both):
    skip, installed = both["skip"], both["as_installed"]
    # Python 3.11 is a year from its end of life (2027-10-24) since 2026-10-24: api_core warns from then on.
    assert installed["status"] != "PYTHON_VERSION_SUPPORTED" and installed["scans"] >= 1
    assert skip["skipped"] is True and skip["again"] is False  # installed once, before api_core imports
    assert skip["scans"] == 0 and skip["status"] == installed["status"]
    assert len(skip["warnings"]) == len(installed["warnings"]) >= 2
    assert any("google.cloud.bigquery" in message for message in skip["warnings"])
