"""pipeline/deferred_imports.py: the CLI's process imports TFX's components, TFMA's and TFDV's modules and the
Google Cloud clients as they are used. The CLI tests that run `python -m pipeline.cli run` (pipeline_e2e,
cache_key, crash_resume, small_tables, formats) run whole pipelines, and compile them, under it;
pipeline_e2e_test.py checks what a cached re-run imported."""
import json
import subprocess
import sys

import pytest

from pipeline.deferred_imports import init_names

PROBE = """
import json, pickle, sys
from pipeline.deferred_imports import defer_imports, is_deferred
installed = defer_imports()
again = defer_imports()
import tfx.orchestration.local.local_dag_runner, pipeline.pipeline, pipeline.local_runner
from config import load_config
from pipeline.pipeline import create_pipeline
create_pipeline(load_config("configs/taxi.yaml").with_overrides(sys.argv[1], sys.argv[2]))
unused = [m for m in ("keras_tuner", "kubernetes", "tfx.components.tuner.component",
                      "tfx.components.infra_validator.component", "tfx.components.bulk_inferrer.component",
                      "tensorflow_model_analysis.evaluators", "tensorflow_model_analysis.metrics",
                      "tensorflow_model_analysis.view", "nltk", "ipywidgets")
          if m in sys.modules]
still_deferred = sorted(m for m in sys.modules if is_deferred(m))

# tfx.components: every name, module attribute, star-import and error as the eager package gives them.
import tfx.components
was_imported = "tfx.components.distribution_validator" in sys.modules
module = tfx.components.distribution_validator
from tfx.components import Tuner
from tfx.components.tuner.component import Tuner as TunerItself
try:
    tfx.components.NoSuchComponent
    missing = "no error"
except AttributeError as e:
    missing = str(e)
namespace = {}
exec("from tfx.components import *", namespace)

# TFMA: a name of its sdk star-import, a module of the package, a name of model_eval_lib; then a function
# the __init__ defines, which runs the real __init__ into the same module object.
import tensorflow_model_analysis as tfma
from tensorflow_model_analysis.proto import config_pb2
before_init = [tfma.EvalConfig is config_pb2.EvalConfig, "tensorflow_model_analysis.evaluators" in sys.modules]
from tensorflow_model_analysis.api import model_eval_lib
from tensorflow_model_analysis.version import VERSION
before_init += [tfma.load_metrics is model_eval_lib.load_metrics, tfma.__version__ == VERSION,
                tfma.metrics.__name__, is_deferred("tensorflow_model_analysis")]
paths = tfma._jupyter_nbextension_paths()
after_init = [is_deferred("tensorflow_model_analysis"), sys.modules["tensorflow_model_analysis"] is tfma,
              tfma.EvalConfig is config_pb2.EvalConfig, type(tfma).__name__]
tfma_star = {}
exec("from tensorflow_model_analysis import *", tfma_star)

# TFDV: its validation API by name, the same function as its module's.
import tensorflow_data_validation as tfdv
from tensorflow_data_validation.api import validation_api
tfdv_same = tfdv.validate_statistics is validation_api.validate_statistics

# A deferred module: the same object however reached, executed at its first attribute.
bigquery = sys.modules["google.cloud.bigquery"]
from google.cloud import bigquery as reached
bigquery_before = [is_deferred("google.cloud.bigquery"), reached is bigquery, "__path__" in vars(bigquery)]
client = bigquery.Client
from google.cloud.bigquery.client import Client
bigquery_after = [is_deferred("google.cloud.bigquery"), client is Client, "__path__" in vars(bigquery)]
import googleapiclient.discovery
pickled = pickle.loads(pickle.dumps(sys.modules["google.cloud.pubsub"])) is sys.modules["google.cloud.pubsub"]
print(json.dumps({"installed": installed, "again": again, "unused": unused, "still_deferred": still_deferred,
                  "same_tuner": Tuner is TunerItself, "all": tfx.components.__all__,
                  "star": sorted(k for k in namespace if k != "__builtins__"),
                  "module": [was_imported, module.__name__], "missing": missing,
                  "before_init": before_init, "paths": paths, "after_init": after_init,
                  "tfma_star": sorted(k for k in tfma_star if k != "__builtins__"), "tfdv_same": tfdv_same,
                  "bigquery_before": bigquery_before, "bigquery_after": bigquery_after,
                  "discovery": callable(googleapiclient.discovery.build), "pickled": pickled}))
"""


@pytest.fixture(scope="module")
def probe(tmp_path_factory):
    root = tmp_path_factory.mktemp("deferred")
    result = subprocess.run([sys.executable, "-c", PROBE, str(root / "root"), str(root / "serving")],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_building_the_dag_imports_neither_unused_components_nor_tfma_s_evaluation_code(probe):
    assert all(probe["installed"].values()) and not any(probe["again"].values())
    assert probe["unused"] == []
    assert {"tfx.components", "tensorflow_model_analysis", "tensorflow_data_validation", "google.cloud.bigquery",
            "google.cloud.bigquery_storage_v1", "google.cloud.pubsub",
            "googleapiclient.discovery"} <= set(probe["still_deferred"])


def test_every_name_of_tfx_components_is_the_same_object(probe):
    import tfx.components as eager  # this (pytest) process imported the package as usual

    assert probe["same_tuner"] is True
    assert probe["all"] == list(eager.__all__) and probe["star"] == sorted(eager.__all__)
    assert probe["module"] == [False, "tfx.components.distribution_validator"]
    assert "NoSuchComponent" in probe["missing"]


def test_tfma_names_import_only_their_module_until_the_init_itself_is_needed(probe):
    import tensorflow_model_analysis as eager

    # EvalConfig came from the sdk star-import without TFMA's evaluators; load_metrics, __version__ and the
    # metrics module by name.
    assert probe["before_init"] == [True, False, True, True, "tensorflow_model_analysis.metrics", True]
    # A function the __init__ defines ran it, into the same module, which is then an ordinary module.
    assert probe["paths"] == eager._jupyter_nbextension_paths()
    assert probe["after_init"] == [False, True, True, "module"]
    public = {name for name in vars(eager) if not name.startswith("_")}
    assert {"EvalConfig", "load_metrics", "metrics", "ValidationResult"} <= set(probe["tfma_star"])
    assert set(probe["tfma_star"]) <= public | {"dataframe"}
    assert probe["tfdv_same"] is True


def test_a_deferred_module_runs_at_its_first_attribute(probe):
    # Reached by `from google.cloud import bigquery` without running; a package whose __path__ appears
    # once it ran, so that its modules import after it as usual.
    assert probe["bigquery_before"] == [True, True, False]
    assert probe["bigquery_after"] == [False, True, True]
    assert probe["discovery"] is True and probe["pickled"] is True


def test_init_names_are_read_from_the_init_and_anything_else_is_refused():
    names = init_names("p", '"""Doc."""\nfrom a.b import C\nfrom a.d import E as F\n__all__ = ["C"]\n')
    assert names.names == {"C": ("a.b", "C"), "F": ("a.d", "E")} and names.exported == ["C"]
    assert init_names("p", "from a.b import C\n").exported is None
    assert init_names("p", "from a.b import *\nfrom a.c import *\n").star_modules == ["a.b", "a.c"]
    guarded = init_names("p", "try:\n  from a.b import C\nexcept (ImportError, ModuleNotFoundError) as e:\n"
                              "  import sys\n  sys.stderr.write(str(e))\ndef f():\n  return 1\n")
    assert guarded.names == {"C": ("a.b", "C")}
    with pytest.raises(ValueError, match="line 2"):
        init_names("p", "from a.b import C\nC.registered = True\n")
    with pytest.raises(ValueError, match="line 1"):
        init_names("p", "try:\n  from a.b import C\nexcept Exception:\n  C = None\n")


def test_a_package_s_names_and_modules_on_disk(tmp_path, monkeypatch):
    """A package written here: `from pkg.sub import mod` binds a module of `pkg.sub` that nothing imported
    yet (sub's __init__ does not), a star-import, and a function only the real __init__ defines."""
    import types

    from pipeline.deferred_imports import defer_package_init, is_deferred

    package = tmp_path / "deferral_probe_pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text(
        '"""Doc."""\nfrom deferral_probe_pkg.sub import mod\nfrom deferral_probe_pkg.stars import *\n'
        "def defined_here():\n    return 'ran'\n")
    (package / "sub" / "__init__.py").write_text("")
    (package / "sub" / "mod.py").write_text("VALUE = 1\n")
    (package / "stars.py").write_text("__all__ = ['STARRED']\nSTARRED = 2\nHIDDEN = 3\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        assert defer_package_init("deferral_probe_pkg") is True
        import deferral_probe_pkg as pkg

        assert "deferral_probe_pkg.sub.mod" not in sys.modules
        assert pkg.mod.VALUE == 1 and pkg.mod is sys.modules["deferral_probe_pkg.sub.mod"]
        assert pkg.STARRED == 2 and is_deferred("deferral_probe_pkg")
        assert pkg.defined_here() == "ran" and type(pkg) is types.ModuleType and pkg.__doc__ == "Doc."
        assert not hasattr(pkg, "HIDDEN")  # not exported by the star-import, nor by the real __init__
    finally:
        for name in [m for m in sys.modules if m.startswith("deferral_probe_pkg")]:
            del sys.modules[name]


def test_a_process_that_imported_a_package_is_left_as_it_is():
    import tensorflow_model_analysis
    import tfx.components

    from pipeline.deferred_imports import defer_module, defer_package_init

    assert defer_package_init("tfx.components") is False and sys.modules["tfx.components"] is tfx.components
    assert defer_package_init("tensorflow_model_analysis") is False
    assert sys.modules["tensorflow_model_analysis"] is tensorflow_model_analysis
    assert defer_module("json") is False and defer_package_init("no_such_package_here") is False
