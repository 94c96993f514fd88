"""The cloud translation: a local config turned into the same pipeline for Vertex AI Pipelines / Kubeflow,
with Beam on Dataflow."""
from __future__ import annotations

import dataclasses
import os
import re
from typing import List, Optional

from config.schema import (CLOUD_TARGETS, CloudConfig, DataflowConfig, PipelineConfig, VertexTrainingConfig,
                           default_float_serving_dir, is_remote)
from config.sections import ConfigError, Section, repo_root


def for_cloud(config: PipelineConfig, target: str) -> PipelineConfig:
    """The same pipeline for Vertex AI Pipelines / Kubeflow: cloud paths, Beam on Dataflow, no local
    metadata store (the orchestrator's), the frozen schema read from the pipeline image."""
    if target not in CLOUD_TARGETS:
        raise ValueError(f"target must be one of {', '.join(CLOUD_TARGETS)}, got {target!r}")
    if not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,127}", config.name):
        raise ConfigError(config.source, "name", f"{config.name!r} cannot name a {target} pipeline: use lowercase "
                                                 f"letters, digits and '-' ([a-z0-9][a-z0-9-]*)")
    cloud = config.cloud
    if cloud is None:
        raise ConfigError(config.source, "cloud", "is required to compile for Vertex AI or Kubeflow")
    if config.data.rolling_window > 1:
        raise ConfigError(config.source, "data.rolling_window",
                          f"{config.data.rolling_window} spans cannot be compiled for {target}: TFX 1.16's "
                          "KubeflowV2DagRunner compiles only resolvers of the single latest artifact. Use "
                          "rolling_window: 1 there (each run trains on the newest span, warm-started from "
                          "the latest blessed model)")
    if config.data.format != "bigquery" and not cloud.data_path:
        raise ConfigError(config.source, "cloud.data_path", f"is required for {config.data.format} files: the "
                                                           f"gs:// directory with the layout of data.path")
    validation = config.validation
    if validation.schema_file and not is_remote(validation.schema_file):
        validation = dataclasses.replace(validation, schema_file=_path_in_image(
            validation.schema_file, cloud.image_workdir, config.source))
    return dataclasses.replace(
        config, target=target, data=dataclasses.replace(config.data, path=cloud.data_path or config.data.path),
        pipeline_root=cloud.pipeline_root, metadata_path="", serving_dir=cloud.serving_dir,
        float_serving_dir=default_float_serving_dir(cloud.serving_dir) if config.float_serving_dir else "",
        validation=validation,
        beam=dataclasses.replace(config.beam, setup_file=None, dataflow_args=tuple(dataflow_args(cloud))))


def _path_in_image(path: str, image_workdir: str, source: str) -> str:
    root = repo_root()
    relative = os.path.relpath(path, root) if root else ".."
    if relative.startswith(".."):
        raise ConfigError(source, "validation.schema", f"{path} is outside this repository, so it is not in the "
                                                       f"pipeline image: put it in the repository or on GCS")
    return f"{image_workdir.rstrip('/')}/{relative}"


def dataflow_args(cloud: CloudConfig) -> List[str]:
    """DataflowRunner options for every Beam-based component."""
    dataflow = cloud.dataflow
    args = ["--runner=DataflowRunner", f"--project={cloud.project}", f"--region={cloud.region}",
            f"--temp_location={dataflow.temp_location or cloud.pipeline_root.rstrip('/') + '/tmp'}",
            f"--machine_type={dataflow.machine_type}", f"--max_num_workers={dataflow.max_num_workers}",
            "--experiments=use_runner_v2"]
    if dataflow.disk_size_gb:
        args.append(f"--disk_size_gb={dataflow.disk_size_gb}")
    if dataflow.worker_code == "image":
        args += [f"--sdk_container_image={cloud.image}", "--sdk_location=container"]
    else:
        args.append(f"--setup_file={cloud.image_workdir.rstrip('/')}/setup.py")
    if cloud.service_account:
        args.append(f"--service_account_email={cloud.service_account}")
    return args + list(dataflow.extra_args)


def _remote(section: Section, name: str) -> str:
    value = section.get(name, str)
    if not is_remote(value):
        raise section.error(name, f"must be a cloud storage URI (gs://bucket/...), got {value!r}")
    return value


def load_cloud(section: Section) -> Optional[CloudConfig]:
    if not section.raw:
        section.finish()
        return None
    dataflow_section = section.section("dataflow")
    extra = dataflow_section.get("extra_args", list, [])
    if not all(isinstance(a, str) for a in extra):
        raise dataflow_section.error("extra_args", "must be a list of strings")
    disk = dataflow_section.get("disk_size_gb", int, None)
    dataflow = DataflowConfig(
        machine_type=dataflow_section.get("machine_type", str, DataflowConfig.machine_type),
        max_num_workers=dataflow_section.positive_int("max_num_workers", DataflowConfig.max_num_workers),
        disk_size_gb=disk, temp_location=dataflow_section.get("temp_location", str, None),
        worker_code=dataflow_section.choice("worker_code", ("image", "setup_file"), DataflowConfig.worker_code),
        extra_args=tuple(extra))
    dataflow_section.finish()
    training = None
    if "training" in section.raw:
        training_section = section.section("training")
        accelerator = training_section.get("accelerator_type", str, None)
        count = training_section.get("accelerator_count", int, 1 if accelerator else 0)
        if accelerator and count <= 0:
            raise training_section.error("accelerator_count", "must be > 0 with an accelerator_type")
        training = VertexTrainingConfig(
            machine_type=training_section.get("machine_type", str, VertexTrainingConfig.machine_type),
            accelerator_type=accelerator, accelerator_count=count if accelerator else 0,
            replica_count=training_section.positive_int("replica_count", VertexTrainingConfig.replica_count))
        training_section.finish()
    else:
        section.used.add("training")
    cloud = CloudConfig(
        project=section.get("project", str), region=section.get("region", str),
        pipeline_root=_remote(section, "pipeline_root"), image=section.get("image", str),
        data_path=_remote(section, "data_path") if "data_path" in section.raw else None,
        serving_dir=_remote(section, "serving_dir"),
        service_account=section.get("service_account", str, None), dataflow=dataflow, training=training,
        image_workdir=section.get("image_workdir", str, CloudConfig.image_workdir))
    section.finish()
    return cloud
