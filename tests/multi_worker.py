"""One worker of a multi-worker Trainer, as each Vertex AI Training replica runs it: the Trainer's executor
(components/trainer/executor.py: TFX's GenericExecutor for the chief) calling `trainer.task.run_fn`, with
the cluster in TF_CONFIG (set by the caller).

    python tests/multi_worker.py SPEC.json

SPEC: {"examples": uri, "split_names": [...], "transform_graph": uri, "schema": uri, "model": uri,
"model_run": uri, "train_steps": n, "eval_steps": n, "custom_config": {...}}, and optionally
"logical_cpus": n (the CPU split into n devices, as conftest splits the test process's: n replicas). Every
worker gets the same spec (the same output URIs), as on Vertex: only the chief may write there.
"""
import json
import os
import sys

import absl.logging

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main(spec_path: str) -> None:
    from tfx.proto import trainer_pb2
    from tfx.types import artifact_utils, standard_artifacts
    from tfx.utils import proto_utils

    from components.trainer.executor import WorkerExecutor
    from pipeline.pipeline import RUN_FN

    spec = json.load(open(spec_path))
    if spec.get("logical_cpus"):
        import tensorflow as tf

        tf.config.set_logical_device_configuration(tf.config.list_physical_devices("CPU")[0], [
            tf.config.LogicalDeviceConfiguration() for _ in range(spec["logical_cpus"])])
    absl.logging.set_verbosity(absl.logging.INFO)  # as TFX's executor entry point (run_executor) does

    def artifact(kind, uri):
        made = kind()
        made.uri = uri
        return made

    examples = artifact(standard_artifacts.Examples, spec["examples"])
    examples.split_names = artifact_utils.encode_split_names(spec["split_names"])
    WorkerExecutor().Do(
        {"examples": [examples], "transform_graph": [artifact(standard_artifacts.TransformGraph,
                                                              spec["transform_graph"])],
         "schema": [artifact(standard_artifacts.Schema, spec["schema"])]},
        {"model": [artifact(standard_artifacts.Model, spec["model"])],
         "model_run": [artifact(standard_artifacts.ModelRun, spec["model_run"])]},
        {"run_fn": RUN_FN, "custom_config": json.dumps(spec["custom_config"]),
         "train_args": proto_utils.proto_to_json(trainer_pb2.TrainArgs(num_steps=spec["train_steps"])),
         "eval_args": proto_utils.proto_to_json(trainer_pb2.EvalArgs(num_steps=spec["eval_steps"]))})


if __name__ == "__main__":
    main(sys.argv[1])
