"""Compile the pipeline for Vertex AI Pipelines or Kubeflow Pipelines (KubeflowV2DagRunner).

The same `create_pipeline` as local runs, from `config.for_cloud(target)`: cloud paths, Beam on Dataflow,
every component in the pipeline image. `vertex` writes a PipelineJob JSON (pipelineSpec + runtimeConfig)
for `aiplatform.PipelineJob(template_path=...)`; `kubeflow` writes the PipelineSpec (KFP 2 IR, pipeline root
as its default) for a Kubeflow Pipelines 2 cluster.
"""
from __future__ import annotations

import json
import os
from typing import Any, Dict

from config import PipelineConfig


def compile_pipeline(config: PipelineConfig, target: str, output: str) -> Dict[str, Any]:
    """Writes the compiled spec to `output` and returns it."""
    from tfx.orchestration.kubeflow.v2 import kubeflow_v2_dag_runner as kubeflow_v2

    from pipeline.pipeline import create_pipeline

    cloud_config = config.for_cloud(target)
    runner = kubeflow_v2.KubeflowV2DagRunner(
        config=kubeflow_v2.KubeflowV2DagRunnerConfig(default_image=cloud_config.cloud.image))
    job = runner.run(create_pipeline(cloud_config), write_out=False)  # written below, in the target's form
    if target == "kubeflow":
        spec = dict(job["pipelineSpec"])
        spec["defaultPipelineRoot"] = cloud_config.pipeline_root
        result = spec
    else:
        result = job
    os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
    with open(output, "w") as f:
        json.dump(result, f, indent=2, sort_keys=True)
    return result
