"""Cache keys cover our code: after an upgrade that edits a file under components/quantizer/, the next run
executes the Pusher again instead of taking it from the cache of the old code (Transform, Trainer and
Evaluator, whose code did not change, still come from cache)."""
import json
import os
import shutil
import subprocess
import sys

from conftest import REPO

PACKAGES = ("config", "pipeline", "components", "preprocessing", "trainer", "serving")


def run_cli(code_dir, config_path, summary_path):
    env = dict(os.environ, PYTHONPATH=str(code_dir), TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run([sys.executable, "-m", "pipeline.cli", "run", "--config", config_path,
                             "--summary-json", str(summary_path)], capture_output=True, text=True, timeout=600,
                            env=env, cwd=str(code_dir))
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    return json.loads(summary_path.read_text())


def test_editing_quantizer_code_re_executes_the_pusher(taxi_run, tmp_path):
    code = tmp_path / "code"  # an installed copy of tfxp, first on the path: the "upgrade" edits it
    for package in PACKAGES:
        shutil.copytree(os.path.join(REPO, package), code / package,
                        ignore=shutil.ignore_patterns("__pycache__"))
    # The shared run's pipeline root: every component of it is in the cache. (A copy of the root would not
    # do: the data and schema paths, and so the cache keys, would differ.) The model is already pushed there,
    # so the re-executed Pusher pushes no new version.
    # Beam's arguments are part of TFX's cache key: the copy has no setup.py of its own, so this config (beside
    # the shared one, so its relative paths resolve alike) names the repository's, as the shared run did.
    text = open(taxi_run["config_path"]).read()
    marker = "  pickle_library: cloudpickle"
    assert marker in text
    config_path = os.path.join(os.path.dirname(taxi_run["config_path"]), "taxi_upgraded_code.yaml")
    with open(config_path, "w") as f:
        f.write(text.replace(marker, marker + f"\n  extra_args: ['--setup_file={REPO}/setup.py']", 1))

    # A first run here, then a second that must find every input unchanged (the first also absorbs whatever
    # other test modules did to this root before).
    run_cli(code, config_path, tmp_path / "warm.json")
    before = run_cli(code, config_path, tmp_path / "before.json")
    assert {"Transform", "Trainer", "Evaluator", "Pusher"} <= set(before["cached_components"]), before

    with open(code / "components" / "quantizer" / "gates.py", "a") as f:
        f.write("\n# upgraded\n")
    after = run_cli(code, config_path, tmp_path / "after.json")
    assert "Pusher" not in after["cached_components"], after["cached_components"]
    assert "Pusher" in after["component_seconds"]
    assert {"Transform", "Trainer", "Evaluator"} <= set(after["cached_components"])
    assert after["pushed"]
    assert after["pushed_model_dir"] == taxi_run["summary"].pushed_model_dir
