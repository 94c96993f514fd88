"""Vertex AI / Kubeflow: the compiled spec from configs/taxi_vertex.yaml (taxi.yaml plus a cloud section),
the Vertex schedule request at the SDK's request boundary (no network), the Dockerfile."""
import json
import os
import re

import pytest
from conftest import REPO
from google.protobuf import json_format

from pipeline import cli
from config import ConfigError, load_config
from pipeline.kubeflow_runner import compile_pipeline

VERTEX_CONFIG = os.path.join(REPO, "configs", "taxi_vertex.yaml")
COMPONENTS = ["CsvExampleGen", "StatisticsGen", "FrozenSchemaGen", "ExampleValidator", "DataGate", "Transform",
              "Trainer", "Evaluator", "Pusher"]
# task -> tasks it must wait for (data and the DataGate's control edge)
EDGES = {
    "StatisticsGen": {"CsvExampleGen"},
    "ExampleValidator": {"StatisticsGen", "FrozenSchemaGen"},
    "DataGate": {"StatisticsGen", "FrozenSchemaGen", "ExampleValidator", "latest_accepted_statistics_resolver"},
    "Transform": {"CsvExampleGen", "FrozenSchemaGen", "DataGate"},
    "Trainer": {"CsvExampleGen", "Transform", "FrozenSchemaGen"},  # raw examples + the transform graph
    "Evaluator": {"CsvExampleGen", "Trainer", "latest_blessed_model_resolver-model-resolver"},
    "Pusher": {"Trainer", "Evaluator", "Transform", "CsvExampleGen"},
}


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    config = load_config(VERTEX_CONFIG)
    out = tmp_path_factory.mktemp("compiled")
    assert cli.main(["compile", "--config", VERTEX_CONFIG, "--target", "vertex",
                     "--output", str(out / "vertex.json")]) == 0
    return config, json.load(open(out / "vertex.json")), out


def executor_args(job, task):
    spec = job["pipelineSpec"]
    label = spec["components"][spec["root"]["dag"]["tasks"][task]["componentRef"]["name"]]["executorLabel"]
    return spec["deploymentSpec"]["executors"][label]["container"]


def invocation_parameters(job, task):
    """The task's constant parameters (exec properties), as Python values."""
    out = {}
    for name, value in job["pipelineSpec"]["root"]["dag"]["tasks"][task]["inputs"]["parameters"].items():
        constant = value.get("runtimeValue", {}).get("constantValue", {})
        out[name] = constant.get("stringValue", constant.get("intValue"))
    return out


def test_spec_parses_as_a_pipeline_spec_and_names_every_component(compiled):
    from kfp.pipeline_spec import pipeline_spec_pb2

    config, job, _ = compiled
    spec = json_format.ParseDict(job["pipelineSpec"], pipeline_spec_pb2.PipelineSpec())
    assert spec.pipeline_info.name == "taxi"
    assert set(COMPONENTS) <= set(spec.root.dag.tasks)
    assert job["runtimeConfig"]["gcsOutputDirectory"] == config.cloud.pipeline_root


def test_dag_edges(compiled):
    _, job, _ = compiled
    tasks = job["pipelineSpec"]["root"]["dag"]["tasks"]
    for task, upstream in EDGES.items():
        assert set(tasks[task].get("dependentTasks", [])) == upstream, task


def test_every_step_runs_in_the_pipeline_image(compiled):
    config, job, _ = compiled
    executors = job["pipelineSpec"]["deploymentSpec"]["executors"]
    containers = {name: e["container"] for name, e in executors.items() if "container" in e}
    assert {f"{c}_executor" for c in COMPONENTS} <= set(containers)
    assert {c["image"] for c in containers.values()} == {config.cloud.image}
    for container in containers.values():
        assert container["command"][-1] == "tfx.orchestration.kubeflow.v2.container.kubeflow_v2_run_executor"


def test_statistics_gen_runs_tfxps_executor_in_the_image(compiled):
    """The compiled StatisticsGen runs components/statistics_gen's executor (installed in the image by
    setup.py), as the local run does."""
    _, job, _ = compiled
    args = executor_args(job, "StatisticsGen")["args"]
    assert args[args.index("--executor_class_path") + 1] == "components.statistics_gen.executor.Executor"


def test_beam_steps_run_on_dataflow_with_options_from_the_cloud_section(compiled):
    config, job, _ = compiled
    cloud = config.cloud
    for task in ("CsvExampleGen", "StatisticsGen", "Transform", "Evaluator"):
        args = executor_args(job, task)["args"]
        for option in ("--runner=DataflowRunner", f"--project={cloud.project}", f"--region={cloud.region}",
                       f"--temp_location={cloud.pipeline_root}/tmp", "--machine_type=n1-standard-4",
                       "--max_num_workers=8", f"--sdk_container_image={cloud.image}", "--sdk_location=container",
                       f"--service_account_email={cloud.service_account}"):
            assert option in args, (task, option)
        assert not any(a.startswith("--direct_") for a in args)


def test_cloud_paths_and_the_frozen_schema_inside_the_image(compiled):
    config, job, _ = compiled
    assert invocation_parameters(job, "CsvExampleGen")["input_base"] == config.cloud.data_path
    assert invocation_parameters(job, "FrozenSchemaGen")["schema_file"] == "/tfxp/configs/taxi.schema.pbtxt"
    pusher = invocation_parameters(job, "Pusher")
    assert pusher["serving_dir"] == config.cloud.serving_dir
    assert pusher["float_serving_dir"] == config.cloud.serving_dir + "_float"


def test_trainer_runs_as_a_vertex_ai_training_job(compiled):
    config, job, _ = compiled
    args = executor_args(job, "Trainer")["args"]
    # TFX's Vertex AI job launcher, whose replicas run the multi-worker aware executor (a non-chief replica
    # exports nothing, and TFX's own executor would fail it for that).
    assert args[args.index("--executor_class_path") + 1] == "components.trainer.vertex.VertexJobExecutor"
    from components.trainer.executor import WorkerExecutor
    from components.trainer.vertex import VertexJobExecutor

    assert VertexJobExecutor()._GetExecutorClass() is WorkerExecutor
    custom = json.loads(invocation_parameters(job, "Trainer")["custom_config"])
    assert custom["ai_platform_enable_vertex"] is True and custom["ai_platform_vertex_region"] == "us-central1"
    [pool] = custom["ai_platform_training_args"]["worker_pool_specs"]
    assert pool["machine_spec"] == {"machine_type": "n1-standard-8", "accelerator_type": "NVIDIA_TESLA_T4",
                                    "accelerator_count": 1}
    assert pool["container_spec"]["image_uri"] == config.cloud.image
    assert custom["label"]["column"] == "big_tipper"  # run_fn's own config travels along


def test_kubeflow_target_writes_the_pipeline_spec_with_its_root(compiled):
    config, _, out = compiled
    spec = compile_pipeline(config, "kubeflow", str(out / "kubeflow.json"))
    assert spec["defaultPipelineRoot"] == config.cloud.pipeline_root
    assert set(COMPONENTS) <= set(spec["root"]["dag"]["tasks"])


def test_multi_worker_training_and_setup_file_workers(tmp_path):
    (tmp_path / "c.yaml").write_text(open(VERTEX_CONFIG).read().replace("base: taxi.yaml", "base: taxi.yaml")
                                     .replace("replica_count: 1", "replica_count: 3")
                                     .replace("worker_code: image", "worker_code: setup_file"))
    for name in ("taxi.yaml", "taxi.schema.pbtxt"):
        (tmp_path / name).write_text(open(os.path.join(REPO, "configs", name)).read())
    config = load_config(str(tmp_path / "c.yaml"))
    # The schema beside this config is not in the repository, so not in the image: a clear error.
    with pytest.raises(ConfigError, match="outside this repository"):
        config.for_cloud("vertex")
    (tmp_path / "c.yaml").write_text((tmp_path / "c.yaml").read_text() + "validation:\n  schema: " +
                                     os.path.join(REPO, "configs", "taxi.schema.pbtxt") + "\n")
    cloud_config = load_config(str(tmp_path / "c.yaml")).for_cloud("vertex")
    assert "--setup_file=/tfxp/setup.py" in cloud_config.beam.pipeline_args()
    assert not any(a.startswith("--sdk_container_image") for a in cloud_config.beam.pipeline_args())
    from pipeline.pipeline import _vertex_training_args

    pools = _vertex_training_args(cloud_config)["ai_platform_training_args"]["worker_pool_specs"]
    assert [p["replica_count"] for p in pools] == [1, 2]  # chief + workers; Vertex sets TF_CONFIG


def test_a_window_of_spans_is_refused_for_cloud_targets(tmp_path):
    (tmp_path / "data" / "span-1").mkdir(parents=True)
    (tmp_path / "data" / "span-1" / "a.csv").write_text("x,y\n1,0\n2,1\n")
    (tmp_path / "c.yaml").write_text(
        "name: w\ndata: {path: data, pattern: 'span-{SPAN}/*.csv', rolling_window: 3}\n"
        "label: {column: y, task: binary}\nfeatures: {x: zscore}\n"
        "cloud: {project: p, region: r, pipeline_root: gs://b/r, image: i, data_path: gs://b/d, "
        "serving_dir: gs://b/s}\n")
    with pytest.raises(ConfigError, match="data.rolling_window: 3 spans cannot be compiled for vertex"):
        load_config(str(tmp_path / "c.yaml")).for_cloud("vertex")


def test_cloud_section_errors_name_the_key(tmp_path):
    (tmp_path / "c.yaml").write_text(open(VERTEX_CONFIG).read().replace(
        "serving_dir: gs://my-bucket/tfxp/taxi/serving", "serving_dir: /local/serving"))
    for name in ("taxi.yaml", "taxi.schema.pbtxt"):
        (tmp_path / name).write_text(open(os.path.join(REPO, "configs", name)).read())
    with pytest.raises(ConfigError) as error:
        load_config(str(tmp_path / "c.yaml"))
    assert error.value.key == "cloud.serving_dir" and "gs://" in str(error.value)
    local = load_config(os.path.join(REPO, "configs", "taxi.yaml"))
    with pytest.raises(ConfigError, match="cloud: is required"):
        local.for_cloud("vertex")


def test_vertex_schedule_request(compiled, monkeypatch):
    """The schedule the SDK would send to Vertex AI: captured at the gapic client, nothing leaves."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud.aiplatform_v1.services.schedule_service.client import ScheduleServiceClient

    from pipeline.schedule import schedule_vertex

    config, _, out = compiled
    requests = []

    def create_schedule(self, request=None, *, parent=None, schedule=None, timeout=None, **kwargs):
        requests.append((parent, schedule))
        created = type(schedule)(schedule)
        created.name = f"{parent}/schedules/42"
        return created

    monkeypatch.setattr(ScheduleServiceClient, "create_schedule", create_schedule)
    schedule = schedule_vertex(config, "CRON_TZ=Europe/Berlin 0 3 * * *", str(out / "vertex.json"),
                               start_time="2026-12-01T03:00:00Z", end_time="2027-12-01T00:00:00Z",
                               max_concurrent_runs=1, max_runs=365, credentials=AnonymousCredentials())
    [(parent, request)] = requests
    assert parent == "projects/my-project/locations/us-central1"
    assert request.cron == "CRON_TZ=Europe/Berlin 0 3 * * *"
    assert request.display_name == "taxi-schedule"
    assert request.max_concurrent_run_count == 1 and request.max_run_count == 365
    assert request.start_time.isoformat().startswith("2026-12-01T03:00:00")
    assert request.end_time.isoformat().startswith("2027-12-01T00:00:00")
    job = request.create_pipeline_job_request.pipeline_job
    assert job.service_account == config.cloud.service_account
    assert job.runtime_config.gcs_output_directory == config.cloud.pipeline_root
    assert set(COMPONENTS) <= set(job.pipeline_spec["root"]["dag"]["tasks"])
    assert schedule.resource_name.endswith("/schedules/42")


def test_invalid_cron_is_a_usage_error(capsys):
    assert cli.main(["schedule", "--config", VERTEX_CONFIG, "--cron", "0 25 * * *"]) == cli.EXIT_CONFIG
    assert "hour field '25': values must lie in 0-23" in capsys.readouterr().err


def test_dockerfile_builds_on_the_locked_tfx_and_copies_the_package(compiled):
    config = compiled[0]
    dockerfile = open(os.path.join(REPO, "Dockerfile")).read()
    lock = open(os.path.join(REPO, "requirements.lock")).read()
    tfx_version = re.search(r"^tfx==([\d.]+)", lock, re.M).group(1)
    beam_version = re.search(r"^apache-beam==([\d.]+)", lock, re.M).group(1)
    assert f"FROM tensorflow/tfx:{tfx_version}" in dockerfile
    assert f"ARG BEAM_VERSION={beam_version}" in dockerfile
    assert f"WORKDIR {config.cloud.image_workdir}" in dockerfile
    for package in ("pipeline", "components", "preprocessing", "trainer", "serving", "configs"):
        assert f"COPY {package}/ {package}/" in dockerfile
    assert "--no-deps ." in dockerfile


def test_a_parquet_payload_compiles_into_the_example_gen_parameters(tmp_path):
    """data.payload: parquet reaches the compiled ExampleGen (its output_data_format), so Dataflow's workers
    write the same Parquet payload as the local run."""
    import shutil

    from tfx.proto import example_gen_pb2

    for name in ("taxi.yaml", "taxi_vertex.yaml"):
        shutil.copy(os.path.join(REPO, "configs", name), tmp_path / name)
    schema = os.path.join(REPO, "configs", "taxi.schema.pbtxt")  # in the image: inside the repository
    (tmp_path / "parquet.yaml").write_text(f"base: taxi_vertex.yaml\ndata: {{payload: parquet}}\n"
                                           f"validation: {{schema: {schema}}}\n")
    assert cli.main(["compile", "--config", str(tmp_path / "parquet.yaml"), "--target", "vertex",
                     "--output", str(tmp_path / "vertex.json")]) == 0
    parameters = invocation_parameters(json.load(open(tmp_path / "vertex.json")), "CsvExampleGen")
    assert int(parameters["output_data_format"]) == example_gen_pb2.FORMAT_PARQUET
    assert int(parameters["output_file_format"]) == example_gen_pb2.FILE_FORMAT_PARQUET
