"""The custom executors called directly, as TFX's own pusher/executor_test.py does: artifacts built by hand,
`Executor().Do(...)`, then the files and properties checked. The pusher works on a tiny model (iris, 216
kernel weights) from one pipeline run; the DataGate on statistics computed here."""
import dataclasses
import json
import os
import shutil

import pandas as pd
import pytest
import tensorflow_data_validation as tfdv
from tfx.types import artifact_utils, standard_artifacts

from conftest import REPO
from components.data_gate import checks
from components.data_gate.component import AcceptedStatistics
from components.data_gate.executor import Executor as DataGateExecutor
from components.properties import AcceptedStatisticsProperties
from components.quantizer.executor import Executor as PusherExecutor
from config import default_gates, load_config
from serving import layout


def artifact(kind, uri, split_names=None):
    a = kind()
    a.uri = str(uri)
    os.makedirs(a.uri, exist_ok=True)
    if split_names:
        a.split_names = artifact_utils.encode_split_names(split_names)
    return a


def mlmd_view(a):
    """What ML Metadata stores for a TFX artifact (what pipeline/summary.py reads)."""
    return a.mlmd_artifact


# --------------------------------------------------------------------------------------------------
# DataGate


def gate_inputs(tmp_path, rows_by_split):
    statistics = artifact(standard_artifacts.ExampleStatistics, tmp_path / "stats", ["train", "eval"])
    anomalies = artifact(standard_artifacts.ExampleAnomalies, tmp_path / "anomalies", ["train", "eval"])
    schema_stats = None
    for split, frame in rows_by_split.items():
        stats = tfdv.generate_statistics_from_dataframe(frame)
        schema_stats = schema_stats or stats
        os.makedirs(tmp_path / "stats" / f"Split-{split}", exist_ok=True)
        (tmp_path / "stats" / f"Split-{split}" / "FeatureStats.pb").write_bytes(stats.SerializeToString())
    schema = artifact(standard_artifacts.Schema, tmp_path / "schema")
    tfdv.write_schema_text(tfdv.infer_schema(schema_stats), str(tmp_path / "schema" / "schema.pbtxt"))
    return {"statistics": [statistics], "schema": [schema], "anomalies": [anomalies]}


def gate_properties(custom_config):
    return {"custom_config": json.dumps(custom_config.to_json()), "drift": "[]", "skew": "[]",
            "code_fingerprint": "test"}


@pytest.fixture(scope="module")
def iris_config():
    return load_config(os.path.join(REPO, "configs", "iris.yaml"))


def iris_frame(n=120, year=None):
    frame = pd.DataFrame({"sepal_length": [5.0 + i % 7 / 3 for i in range(n)],
                          "sepal_width": [3.0 + i % 5 / 4 for i in range(n)],
                          "petal_length": [1.0 + i % 11 / 2 for i in range(n)],
                          "petal_width": [0.2 + i % 9 / 4 for i in range(n)],
                          "species": [("setosa", "versicolor", "virginica")[i % 3] for i in range(n)]})
    if year is not None:
        frame["year"] = [year + i % 10 for i in range(n)]
    return frame


def test_data_gate_executor_accepts_good_statistics_and_records_them(tmp_path, iris_config):
    inputs = gate_inputs(tmp_path, {"train": iris_frame(), "eval": iris_frame(40)})
    accepted = artifact(AcceptedStatistics, tmp_path / "accepted")
    DataGateExecutor().Do(inputs, {"accepted_statistics": [accepted]},
                          gate_properties(iris_config.to_custom_config()))
    for split in ("train", "eval"):
        assert os.path.isfile(tmp_path / "accepted" / f"Split-{split}" / "FeatureStats.pb")
    properties = AcceptedStatisticsProperties.read(mlmd_view(accepted))
    assert artifact_utils.decode_split_names(properties.split_names) == ["train", "eval"]
    assert properties.warnings == []


def test_data_gate_executor_blocks_unlabeled_rows_and_warns_about_large_passthrough(tmp_path, iris_config):
    custom = iris_config.to_custom_config()
    with_year = dataclasses.replace(custom, features=custom.features + (
        dataclasses.replace(custom.features[0], name="year", treatment="passthrough"),))
    unlabeled = iris_frame()
    unlabeled.loc[:9, "species"] = None
    inputs = gate_inputs(tmp_path, {"train": unlabeled, "eval": iris_frame(40)})
    accepted = artifact(AcceptedStatistics, tmp_path / "accepted")
    with pytest.raises(checks.DataValidationError) as error:
        DataGateExecutor().Do(inputs, {"accepted_statistics": [accepted]}, gate_properties(custom))
    assert [(a.feature, a.kind) for a in error.value.anomalies] == [("species", "LABEL_MISSING")]
    assert not os.path.exists(tmp_path / "accepted" / "Split-train")  # nothing accepted

    inputs = gate_inputs(tmp_path / "2", {"train": iris_frame(year=2000), "eval": iris_frame(40, year=2000)})
    accepted = artifact(AcceptedStatistics, tmp_path / "2" / "accepted")
    DataGateExecutor().Do(inputs, {"accepted_statistics": [accepted]}, gate_properties(with_year))
    [warning] = AcceptedStatisticsProperties.read(mlmd_view(accepted)).warnings
    assert "feature year is passthrough with values up to 2009" in warning


# --------------------------------------------------------------------------------------------------
# QuantizingPusher


@pytest.fixture(scope="module")
def iris_run(tmp_path_factory):
    """One pipeline run of configs/iris.yaml: its Trainer model, Transform graph and examples."""
    from pipeline.local_runner import run_local
    from pipeline.summary import latest_output_uri

    root = tmp_path_factory.mktemp("iris")
    shutil.copytree(os.path.join(REPO, "data", "iris"), root / "data" / "iris")
    (root / "configs").mkdir()
    text = open(os.path.join(REPO, "configs", "iris.yaml")).read().replace("../runs/iris/", "../out/")
    (root / "configs" / "iris.yaml").write_text(text)
    config = load_config(str(root / "configs" / "iris.yaml"))
    run_local(config, emit_line=lambda line: None)

    def uri(node, key):
        return latest_output_uri(config.metadata_path, config.name, node, key)

    return {"config": config, "model": uri("Trainer", "model"), "transform_graph": uri("Transform", "transform_graph"),
            "examples": uri("CsvExampleGen", "examples")}


def push(iris_run, tmp_path, blessed=True, float_serving_dir="", **gate_overrides):
    config = iris_run["config"]
    os.makedirs(tmp_path, exist_ok=True)
    model = artifact(standard_artifacts.Model, iris_run["model"])
    blessing = artifact(standard_artifacts.ModelBlessing, tmp_path / "blessing")
    blessing.set_int_custom_property("blessed", int(blessed))
    examples = artifact(standard_artifacts.Examples, iris_run["examples"], ["train", "eval"])
    pushed = artifact(standard_artifacts.PushedModel, tmp_path / f"pushed_{len(os.listdir(tmp_path))}")
    on_gate_failure = gate_overrides.pop("on_gate_failure", "push_float")
    gates = dict(default_gates("int8"), **gate_overrides)
    PusherExecutor().Do(
        {"model": [model], "model_blessing": [blessing],
         "transform_graph": [artifact(standard_artifacts.TransformGraph, iris_run["transform_graph"])],
         "examples": [examples]},
        {"pushed_model": [pushed]},
        {"serving_dir": str(tmp_path / "serving"), "float_serving_dir": float_serving_dir, "method": "int8",
         "on_gate_failure": on_gate_failure, "gates": json.dumps(gates), "metric": config.evaluation.metric,
         "custom_config": json.dumps(config.to_custom_config().to_json()), "code_fingerprint": "test"})
    return {k: getattr(v, v.WhichOneof("value")) for k, v in pushed.mlmd_artifact.custom_properties.items()}


def test_pusher_executor_pushes_nothing_for_a_model_that_is_not_blessed(iris_run, tmp_path):
    properties = push(iris_run, tmp_path, blessed=False)
    assert properties["pushed"] == 0
    assert json.loads(properties["push_blocked_reasons"]) == ["the Evaluator did not bless the model"]
    assert layout.versions(str(tmp_path / "serving")) == []


def test_pusher_executor_pushes_the_quantized_tiny_model_and_the_float_copy(iris_run, tmp_path):
    properties = push(iris_run, tmp_path, float_serving_dir=str(tmp_path / "serving_float"))
    assert properties["pushed"] == 1 and properties["pushed_kind"] == layout.QUANTIZED
    [version] = layout.versions(str(tmp_path / "serving"))
    assert properties["pushed_version"] == str(version)
    assert properties["pushed_destination"] == str(tmp_path / "serving" / str(version))
    assert layout.versions(str(tmp_path / "serving_float")) == [version]
    results = json.loads(properties["quantization_results"])
    assert results["size_ratio"] >= 3.0 and results["size_ratio"] == properties["size_ratio"]
    assert results["quantizer"]["method"] == "int8"
    # The same model again: already pushed, no new version.
    again = push(iris_run, tmp_path)
    assert again["already_pushed"] == 1 and layout.versions(str(tmp_path / "serving")) == [version]


def test_pusher_executor_pushes_float_or_nothing_when_a_gate_fails(iris_run, tmp_path):
    properties = push(iris_run, tmp_path / "a", max_abs_prediction_diff=0.0)
    assert properties["pushed"] == 1 and properties["pushed_kind"] == layout.FLOAT
    assert "max |prediction difference|" in properties["quantization_gate_failures"]
    [version] = layout.versions(str(tmp_path / "a" / "serving"))
    assert layout.pushed_kind(str(tmp_path / "a" / "serving" / str(version))) == layout.FLOAT

    strict = push(iris_run, tmp_path / "b", max_abs_prediction_diff=0.0, on_gate_failure="push_nothing")
    assert strict["pushed"] == 0
    assert "max |prediction difference|" in strict["push_blocked_reasons"]
    assert layout.versions(str(tmp_path / "b" / "serving")) == []
