"""A failed run (training, evaluation) leaves the pushed versions byte-identical and the metadata store usable.

Data-validation failures are checked the same way in data_validation_test.py, push failures in
quantizer_test.py. Each test works on a copy of the session run's pipeline root (its ML Metadata history
included) and of its serving directories, so the upstream components come from cache.
"""
import dataclasses
import shutil

import pytest
from conftest import tree_digest

from config import ModelConfig, default_metadata_path
from pipeline.local_runner import PipelineFailed, run_local


@pytest.fixture
def copied_run(taxi_run, tmp_path):
    config = taxi_run["config"]
    shutil.copytree(config.pipeline_root, tmp_path / "root")
    shutil.copytree(config.serving_dir, tmp_path / "serving")
    shutil.copytree(config.float_serving_dir, tmp_path / "serving_float")
    config = dataclasses.replace(
        config, pipeline_root=str(tmp_path / "root"), metadata_path=default_metadata_path(str(tmp_path / "root")),
        serving_dir=str(tmp_path / "serving"), float_serving_dir=str(tmp_path / "serving_float"))
    return config, lambda: (tree_digest(config.serving_dir), tree_digest(config.float_serving_dir))


def test_failed_training_leaves_the_served_versions_and_the_store_intact(copied_run):
    config, digest = copied_run
    before = digest()
    diverging = dataclasses.replace(config, model=ModelConfig(width=config.model.width, depth=config.model.depth,
                                                              learning_rate=1e30))
    with pytest.raises(PipelineFailed) as failure:
        run_local(diverging, emit_line=lambda line: None)
    assert failure.value.component == "Trainer" and "training diverged" in str(failure.value)
    assert digest() == before
    # The store still works: the original config runs again from cache and pushes nothing new.
    summary = run_local(config, emit_line=lambda line: None)
    assert {"Transform", "Trainer"} <= set(summary.cached_components)
    assert summary.blessed is True and digest() == before


def test_model_that_is_not_blessed_is_not_pushed(copied_run):
    config, digest = copied_run
    before = digest()
    strict = dataclasses.replace(config, evaluation=dataclasses.replace(config.evaluation, threshold=0.999))
    summary = run_local(strict, emit_line=lambda line: None)
    assert summary.blessed is False and summary.pushed is False
    assert any("binary_accuracy" in failure for failure in summary.validation_failures)
    assert digest() == before
