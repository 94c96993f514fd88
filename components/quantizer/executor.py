"""QuantizingPusher executor: quantize (child process), gate (this process), push atomically."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from typing import Any, Dict

from absl import logging
from tfx.components.pusher import executor as pusher_executor
from tfx.dsl.io import fileio
from tfx.types import artifact_utils

from components.quantizer import gates as gates_lib
from components.properties import TFX_PUSH_PROPERTIES, PushedModelProperties
from components.quantizer import push as push_lib
from serving import layout

QUANTIZER_TIMEOUT_S = 900
STDERR_TAIL = 1500


class QuantizerChild:
    """components.quantizer.quantize running in a child process, so that a native abort in TensorFlow
    cannot take the pipeline down. `wait()` returns its report or raises QuantizerDied naming the exit
    status or signal and the tail of its output."""

    def __init__(self, model_dir: str, transform_graph_dir: str, custom_config: Dict[str, Any], method: str,
                 out_dir: str, calibration_pattern: str, work_dir: str):
        os.makedirs(work_dir, exist_ok=True)
        config_path, self.report_path = (os.path.join(work_dir, n) for n in ("custom_config.json",
                                                                             "report.json"))
        self.stderr_path, self.method = os.path.join(work_dir, "quantizer.stderr"), method
        with open(config_path, "w") as f:
            json.dump(custom_config, f)
        command = [sys.executable, "-m", "components.quantizer.quantize", "--model", model_dir,
                   "--transform-graph", transform_graph_dir, "--config-json", config_path, "--method", method,
                   "--out", out_dir, "--calibration-pattern", calibration_pattern, "--report", self.report_path]
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL=os.environ.get("TF_CPP_MIN_LOG_LEVEL", "3"))
        self._stderr = open(self.stderr_path, "w")
        self._process = subprocess.Popen(command, stdout=self._stderr, stderr=subprocess.STDOUT, env=env)

    def wait(self) -> Dict[str, Any]:
        try:
            returncode = self._process.wait(timeout=QUANTIZER_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
            raise QuantizerDied(f"quantizer ({self.method}) timed out after {QUANTIZER_TIMEOUT_S} s") from None
        finally:
            self._stderr.close()
        if returncode != 0:
            with open(self.stderr_path, errors="replace") as f:
                tail = f.read()[-STDERR_TAIL:].strip()
            how = (f"was killed by signal {signal.Signals(-returncode).name}" if returncode < 0
                   else f"exited with status {returncode}")
            raise QuantizerDied(f"quantizer process ({self.method}) {how}; its output ends: "
                                f"{tail or '(nothing)'}")
        with open(self.report_path) as f:
            return json.load(f)


def quantize_in_child(*args, **kwargs) -> Dict[str, Any]:
    return QuantizerChild(*args, **kwargs).wait()


class QuantizerDied(RuntimeError):
    pass


def _keep(local_dir: str, artifact_dir: str) -> None:
    """Copies the quantizer's work files into the output artifact, then removes the local copy."""
    fileio.makedirs(artifact_dir)
    for name in os.listdir(local_dir):
        if os.path.isfile(os.path.join(local_dir, name)):
            fileio.copy(os.path.join(local_dir, name), os.path.join(artifact_dir, name), overwrite=True)
    shutil.rmtree(local_dir, ignore_errors=True)


class Executor(pusher_executor.Executor):
    """TFX's pusher executor (its blessing check, model path and pushed properties), pushing the quantized
    model, or the float one when the quantized form fails a gate."""

    def Do(self, input_dict, output_dict, exec_properties) -> None:
        self._log_startup(input_dict, output_dict, exec_properties)
        pushed = artifact_utils.get_single_instance(output_dict["pushed_model"])
        model = artifact_utils.get_single_instance(input_dict["model"])
        transform_graph = artifact_utils.get_single_instance(input_dict["transform_graph"])
        examples = input_dict["examples"]
        serving_dir = exec_properties["serving_dir"]
        float_serving_dir = exec_properties.get("float_serving_dir") or ""
        method = exec_properties["method"]
        on_gate_failure = exec_properties.get("on_gate_failure") or "push_float"
        gates = gates_lib.Gates(**json.loads(exec_properties["gates"]))
        model_dir = self.GetModelPath(input_dict)
        outcome = PushedModelProperties(quantization_method=method)

        if not self.CheckBlessing(input_dict):
            logging.warning("QuantizingPusher: not pushing: the Evaluator did not bless the model")
            outcome.push_blocked_reasons = ["the Evaluator did not bless the model"]
            return self._finish(pushed, outcome)
        fingerprint = push_lib.model_fingerprint(model_dir)
        existing = push_lib.already_pushed(serving_dir, model.uri, fingerprint)
        if existing:
            logging.info("QuantizingPusher: model %s is already pushed as %s", model.uri, existing)
            kind = layout.pushed_kind(existing)
            outcome.pushed, outcome.already_pushed, outcome.pushed_destination = True, True, existing
            outcome.pushed_version, outcome.pushed_kind = os.path.basename(existing), kind
            outcome.pushed_quantized_model_dir = existing if kind == layout.QUANTIZED else None
            if float_serving_dir:
                outcome.pushed_float_model_dir = push_lib.already_pushed(float_serving_dir, model.uri, fingerprint)
            return self._finish(pushed, outcome)

        quantized_dir = os.path.join(pushed.uri, "quantized")
        # The child's config, report and output: on this machine, then kept with the artifact (gs:// too).
        work_dir = tempfile.mkdtemp(prefix="tfxp_quantizer_")
        child = QuantizerChild(model_dir, transform_graph.uri, json.loads(exec_properties["custom_config"]), method,
                               quantized_dir, os.path.join(artifact_utils.get_split_uri(examples, "train"), "*"),
                               work_dir)
        # The float side of the comparison, on the other core, while the child quantizes.
        prepared = gates_lib.prepare(model_dir, os.path.join(artifact_utils.get_split_uri(examples, "eval"), "*"))
        try:
            report = child.wait()
        except QuantizerDied as e:
            failed = [str(e)]
        else:
            results = gates_lib.compare_prepared(prepared, quantized_dir, exec_properties["metric"],
                                                 max_latency_ratio=gates.max_latency_ratio)
            outcome.quantization_results = dict(results.to_json(), quantizer=report)
            ratios = results.latency_ratio()
            outcome.size_ratio, outcome.metric_drop = results.size_ratio, results.metric_drop
            outcome.max_abs_prediction_diff, outcome.label_flip_rate = (results.max_abs_prediction_diff,
                                                                        results.label_flip_rate)
            outcome.latency_ratio_batch_1, outcome.latency_ratio_batch_256 = ratios.get("1"), ratios.get("256")
            failed = gates_lib.failures(results, gates)
        finally:
            _keep(work_dir, os.path.join(pushed.uri, "quantizer_work"))
        for reason in failed:
            logging.warning("QuantizingPusher: the quantized model fails a gate: %s", reason)
        outcome.quantization_gate_failures = failed
        if failed and on_gate_failure == "push_nothing":
            outcome.push_blocked_reasons = failed
            return self._finish(pushed, outcome)
        # A blessed model always ships: quantized when it passes every gate, else the float model itself.
        kind, source = (layout.FLOAT, model_dir) if failed else (layout.QUANTIZED, quantized_dir)
        version = push_lib.next_version(serving_dir, *([float_serving_dir] if float_serving_dir else []))
        record = {"source_model_uri": model.uri, "source_model_fingerprint": fingerprint,
                  "quantization_method": method, "version": version}
        target = push_lib.push_atomically(source, serving_dir, version, dict(record, kind=kind))
        outcome.pushed, outcome.pushed_destination, outcome.pushed_version = True, target, str(version)
        outcome.pushed_kind = kind
        outcome.pushed_quantized_model_dir = target if kind == layout.QUANTIZED else None
        if float_serving_dir:
            outcome.pushed_float_model_dir = push_lib.push_atomically(model_dir, float_serving_dir, version,
                                                                      dict(record, kind=layout.FLOAT))
        self._finish(pushed, outcome)

    def _finish(self, pushed, outcome: PushedModelProperties) -> None:
        """TFX's pushed properties through its own methods, then ours."""
        if outcome.pushed:
            self._MarkPushed(pushed, pushed_destination=outcome.pushed_destination,
                             pushed_version=outcome.pushed_version)
        else:
            self._MarkNotPushed(pushed)
        outcome.write(pushed, skip=TFX_PUSH_PROPERTIES)
