"""pipeline/tfx_imports.py: the CLI's process imports TFX's components as they are used. The CLI tests that
run `python -m pipeline.cli run` (pipeline_e2e, cache_key, crash_resume, small_tables, formats) run whole
pipelines, and compile them, under it."""
import json
import subprocess
import sys

import pytest

from pipeline.tfx_imports import component_names

PROBE = """
import json, sys
from pipeline.tfx_imports import defer_component_imports
installed = defer_component_imports()
again = defer_component_imports()
import tfx.orchestration.local.local_dag_runner, pipeline.pipeline, pipeline.local_runner
from config import load_config
from pipeline.pipeline import create_pipeline
create_pipeline(load_config("configs/taxi.yaml").with_overrides(sys.argv[1], sys.argv[2]))
unused = [m for m in ("keras_tuner", "kubernetes", "tfx.components.tuner.component",
                      "tfx.components.infra_validator.component", "tfx.components.bulk_inferrer.component")
          if m in sys.modules]
import tfx.components
was_imported = "tfx.components.distribution_validator" in sys.modules
module = tfx.components.distribution_validator  # a module of the package, reached as an attribute
from tfx.components import Tuner
from tfx.components.tuner.component import Tuner as TunerItself
try:
    tfx.components.NoSuchComponent
    missing = "no error"
except AttributeError as e:
    missing = str(e)
namespace = {}
exec("from tfx.components import *", namespace)
print(json.dumps({"installed": installed, "again": again, "unused": unused, "same_tuner": Tuner is TunerItself,
                  "all": tfx.components.__all__, "star": sorted(k for k in namespace if k != "__builtins__"),
                  "module": [was_imported, module.__name__], "missing": missing}))
"""


def test_the_cli_process_imports_only_the_components_it_uses(tmp_path):
    result = subprocess.run([sys.executable, "-c", PROBE, str(tmp_path / "root"), str(tmp_path / "serving")],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    probe = json.loads(result.stdout.strip().splitlines()[-1])
    assert probe["installed"] is True and probe["again"] is False
    # Building tfxp's DAG and importing the local runner left out the components it does not use...
    assert probe["unused"] == []
    # ...and every name of TFX's own tfx.components still works: the same objects, the same __all__.
    import tfx.components as eager  # this (pytest) process imported the package as usual

    assert probe["same_tuner"] is True
    assert probe["all"] == list(eager.__all__) and probe["star"] == sorted(eager.__all__)
    assert probe["module"] == [False, "tfx.components.distribution_validator"]
    assert "NoSuchComponent" in probe["missing"]


def test_component_names_are_read_from_the_init_and_anything_else_is_refused():
    names, exported = component_names('"""Doc."""\nfrom a.b import C\nfrom a.d import E as F\n__all__ = ["C"]\n')
    assert names == {"C": ("a.b", "C"), "F": ("a.d", "E")} and exported == ["C"]
    assert component_names("from a.b import C\n")[1] == ["C"]
    with pytest.raises(ValueError, match="star-imports a.b"):
        component_names("from a.b import *\n")
    with pytest.raises(ValueError, match="line 2"):
        component_names("from a.b import C\nC.registered = True\n")


def test_a_process_that_imported_the_components_is_left_as_it_is():
    import tfx.components

    from pipeline.tfx_imports import defer_component_imports

    assert defer_component_imports() is False and sys.modules["tfx.components"] is tfx.components
