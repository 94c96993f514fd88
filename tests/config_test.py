"""Config loading and validation: errors name the file and the key, before any component runs."""
import json
import os
import shutil
import subprocess
import sys
import textwrap

import pytest

from config import ConfigError, load_config

TAXI = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs", "taxi.yaml")

MINIMAL = """
name: tiny
data: {path: data}
label: {column: y, task: binary}
features:
  x: zscore
  city: vocab
"""


@pytest.fixture
def tiny(tmp_path):
    """A config directory with a small CSV; returns a function writing a config text to a file."""
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "rows.csv").write_text("x,city,y,note\n1.5,paris,1,a\n2.5,rome,0,b\n,paris,1,c\n")

    def write(text, name="c.yaml"):
        path = tmp_path / name
        path.write_text(textwrap.dedent(text))
        return str(path)

    return write


def test_evaluation_slices_and_model_card(tiny, tmp_path):
    config = load_config(tiny(MINIMAL + "evaluation: {slices: [city, note]}\nmodel_card:\n  overview: A test.\n"
                                        "  owners: team a\n  limitations: [tiny, made up]\n"))
    assert config.evaluation.slices == ("city", "note")  # any column of the data, used as a feature or not
    card = config.model_card
    assert (card.overview, card.owners, card.limitations, card.intended_use) == (
        "A test.", ("team a",), ("tiny", "made up"), "")
    assert config.report_file == str(tmp_path / "runs" / "tiny" / "report.html")


def test_default_taxi_config_resolves_data_inside_the_tfx_package():
    config = load_config(TAXI)
    assert config.data.path.endswith(os.path.join("tfx", "examples", "chicago_taxi_pipeline", "data",
                                                  "big_tipper_label"))
    assert os.path.isfile(os.path.join(config.data.path, "data.csv"))
    assert config.label.column == "big_tipper" and config.label.task == "binary"
    assert "tips" not in {f.name for f in config.features}  # would leak the label
    assert config.evaluation.metric == "binary_accuracy" and config.evaluation.higher_is_better
    assert config.beam.pipeline_args()[:2] == ["--direct_running_mode=in_memory", "--direct_num_workers=1"]
    assert config.beam.payloads_stay_in_process


@pytest.mark.parametrize("beam, in_process", [
    (dict(), True),
    (dict(direct_running_mode="multi_threading", direct_num_workers=2), True),
    (dict(direct_running_mode="multi_processing", direct_num_workers=2), False),
    (dict(extra_args=("--direct_running_mode=multi_processing",)), False),
    (dict(extra_args=("--runner=PortableRunner",)), False),
    (dict(extra_args=("--environment_type=DOCKER",)), False),
    (dict(extra_args=("--max_num_workers=3",)), True),
    (dict(dataflow_args=("--runner=DataflowRunner",)), False),
])
def test_beam_payloads_stay_in_process_only_for_the_in_process_direct_runner(beam, in_process):
    """Whether the local run's Beam pickles can skip bz2 (pipeline/beam_memo.py): only when no bundle is
    processed by another process."""
    from config.schema import BeamConfig

    assert BeamConfig(**beam).payloads_stay_in_process is in_process


def test_minimal_config_gets_defaults_and_paths_relative_to_the_file(tiny, tmp_path):
    config = load_config(tiny(MINIMAL))
    assert config.data.path == str(tmp_path / "data")
    assert config.pipeline_root == str(tmp_path / "runs" / "tiny" / "pipeline_root")
    assert config.metadata_path == os.path.join(config.pipeline_root, "metadata.sqlite")
    assert [f.treatment for f in config.features] == ["zscore", "vocab"]
    assert config.training.batch_size_per_replica == 128 and config.training.seed is None
    assert config.evaluation.metric == "binary_accuracy"
    assert config.evaluation.evaluator == "columnar" and config.data.reader == "columnar"


def test_pipeline_root_override_moves_the_metadata_store(tiny, tmp_path):
    config = load_config(tiny(MINIMAL)).with_overrides(str(tmp_path / "elsewhere"), str(tmp_path / "srv"))
    assert config.metadata_path == str(tmp_path / "elsewhere" / "metadata.sqlite")
    assert config.report_file == str(tmp_path / "report.html")  # beside the pipeline root, as runs/<name>/
    assert config.serving_dir == str(tmp_path / "srv")


@pytest.mark.parametrize("text, key, message", [
    (MINIMAL + "colour: blue\n", "colour", "unknown key"),
    (MINIMAL.replace("{column: y, task: binary}", "{column: y, task: binary, weight: 2}"), "label.weight",
     "unknown key"),
    (MINIMAL.replace("x: zscore", "missing_col: zscore"), "features.missing_col", "not a column of"),
    (MINIMAL.replace("column: y", "column: nope"), "label.column", "label 'nope' is not a column"),
    (MINIMAL.replace("label: {column: y, task: binary}\n", ""), "label.column", "is required"),
    (MINIMAL.replace("x: zscore", "x: logscale"), "features.x.treatment", "must be one of"),
    (MINIMAL.replace("city: vocab", "city: minmax"), "features.city.treatment", "needs a numeric column"),
    (MINIMAL.replace("task: binary", "task: ranking"), "label.task", "must be one of"),
    (MINIMAL.replace("x: zscore", "y: zscore"), "features.y", "label column cannot also be a feature"),
    (MINIMAL.replace("path: data", "path: no_such_dir"), "data.path", "is not a directory"),
    (MINIMAL + "training: {train_steps: 0}\n", "training.train_steps", "must be > 0"),
    (MINIMAL + "training: {train_steps: many}\n", "training.train_steps", "must be int"),
    (MINIMAL + "training: {seed: -1}\n", "training.seed", "must be an integer in [0, 2**31)"),
    (MINIMAL + "training: {seed: 0.5}\n", "training.seed", "must be int"),
    (MINIMAL + "evaluation: {metric: mean_squared_error}\n", "evaluation.metric", "must be one of"),
    (MINIMAL + "evaluation: {evaluator: fast}\n", "evaluation.evaluator", "must be one of"),
    (MINIMAL + "evaluation: {slices: [city, town]}\n", "evaluation.slices", "town: not a column of the data"),
    (MINIMAL + "evaluation: {slices: [[city]]}\n", "evaluation.slices", "must be a text or a list of texts"),
    (MINIMAL + "model_card: {owners: [{name: a}]}\n", "model_card.owners", "must be a text or a list of texts"),
    (MINIMAL + "model_card: {purpose: x}\n", "model_card.purpose", "unknown key"),
    (MINIMAL + "transform: {materialize: yes please}\n", "transform.materialize", "must be bool"),
    (MINIMAL + "transform: {tf_compat_v1: 2}\n", "transform.tf_compat_v1", "must be bool"),
    (MINIMAL + "transform: {batch_vocabulary_counts: yes please}\n", "transform.batch_vocabulary_counts",
     "must be bool"),
    (MINIMAL + "transform: {cache: true}\n", "transform.cache", "unknown key"),
    (MINIMAL + "transform: {executor: beam}\n", "transform.executor", "must be one of"),
    (MINIMAL.replace("x: zscore", "x: {treatment: zscore, fill: median}"), "features.x.fill",
     "must be 'mean' or a number"),
])
def test_config_errors_name_the_file_and_the_key(tiny, text, key, message):
    path = tiny(text)
    with pytest.raises(ConfigError) as error:
        load_config(path)
    assert error.value.key == key
    assert str(error.value).startswith(f"{path}: {key}: ")
    assert message in str(error.value)


def test_multiclass_label_may_be_text_but_binary_label_must_be_numeric(tiny):
    text = MINIMAL.replace("column: y, task: binary", "column: city, task: multiclass").replace(
        "  city: vocab\n", "")
    assert load_config(tiny(text)).label.task == "multiclass"
    with pytest.raises(ConfigError, match="binary needs a numeric label"):
        load_config(tiny(text.replace("task: multiclass", "task: binary"), name="d.yaml"))


def test_data_errors_name_the_file(tiny, tmp_path):
    """The config check reads the first file; the pre-flight pass checks every file against it."""
    from pipeline.preflight import InputError, check_csv_inputs

    (tmp_path / "data" / "z_other.csv").write_text("x,city\n1,rome\n")
    config = load_config(tiny(MINIMAL))
    with pytest.raises(InputError, match=r"z_other\.csv, line 1: missing column\(s\) y that the config uses"):
        check_csv_inputs(config)
    (tmp_path / "data" / "a_first.csv").write_text("x,city\n1,rome\n")
    with pytest.raises(ConfigError, match=r"label 'y' is not a column of .*a_first\.csv"):
        load_config(tiny(MINIMAL, name="e.yaml"))


def test_missing_config_file_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="config file does not exist"):
        load_config(str(tmp_path / "absent.yaml"))
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(str(bad))


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "pipeline.cli", *args], capture_output=True, text=True,
                          cwd=os.path.dirname(TAXI) + "/..")


def test_cli_config_error_exits_2_naming_file_and_key(tiny):
    path = tiny(MINIMAL.replace("x: zscore", "x: logscale"))
    result = _cli("run", "--config", path)
    assert result.returncode == 2
    assert f"{path}: features.x.treatment" in result.stderr
    assert "tensorflow" not in result.stderr.lower()


def test_cli_help_does_not_import_tensorflow():
    code = ("import sys\nfrom pipeline import cli\n"
            "try:\n    cli.main(['--help'])\nexcept SystemExit:\n    pass\n"
            "heavy = sorted(m for m in ('tensorflow', 'tfx', 'apache_beam') if m in sys.modules)\n"
            "print('HEAVY', heavy)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=os.path.dirname(os.path.dirname(TAXI)))
    assert "usage: tfxp" in result.stdout
    assert "HEAVY []" in result.stdout


def test_quantization_defaults_and_float_fallback_dir(tiny, tmp_path):
    config = load_config(tiny(MINIMAL))
    assert config.quantization.method == "int8"
    gates = dict(config.quantization.gates)
    # Kernels (with their scales) at least 3/4 of the method's ideal ratio: 3.0 for int8, 1.5 for float16.
    assert gates["min_size_ratio"] == 3.0 and gates["max_metric_drop"] == 0.005
    assert config.quantization.on_gate_failure == "push_float"  # a blessed model always ships
    float16 = load_config(tiny(MINIMAL + "quantization: {method: float16, on_gate_failure: push_nothing}\n"))
    assert dict(float16.quantization.gates)["min_size_ratio"] == 1.5
    assert float16.quantization.on_gate_failure == "push_nothing"
    assert config.float_serving_dir == config.serving_dir + "_float"
    moved = config.with_overrides(serving_dir=str(tmp_path / "srv"))
    assert moved.float_serving_dir == str(tmp_path / "srv_float")


def test_quantization_gate_null_disables_and_push_float_false_drops_the_fallback(tiny):
    config = load_config(tiny(MINIMAL + "quantization:\n  method: float16\n  push_float: false\n"
                                        "  gates: {min_size_ratio: null, max_latency_ratio: 1.5}\n"))
    gates = dict(config.quantization.gates)
    assert config.quantization.method == "float16"
    assert gates["min_size_ratio"] is None and gates["max_latency_ratio"] == 1.5
    assert config.float_serving_dir == ""


@pytest.mark.parametrize("text, key, message", [
    ("quantization: {method: int4}\n", "quantization.method", "must be one of"),
    ("quantization: {on_gate_failure: push_anyway}\n", "quantization.on_gate_failure", "must be one of"),
    ("quantization: {gates: {min_size_ratio: -1}}\n", "quantization.gates.min_size_ratio", "must be a number"),
    ("quantization: {gates: {max_speedup: 2}}\n", "quantization.gates.max_speedup", "unknown key"),
])
def test_quantization_config_errors(tiny, text, key, message):
    with pytest.raises(ConfigError) as error:
        load_config(tiny(MINIMAL + text))
    assert error.value.key == key and message in str(error.value)


@pytest.mark.parametrize("evaluator, component", [("columnar", "ColumnarEvaluator"), ("tfma", "Evaluator")])
def test_evaluation_evaluator_picks_the_evaluator_component(tiny, evaluator, component):
    from pipeline import nodes
    from pipeline.pipeline import pipeline_node

    config = load_config(tiny(MINIMAL + f"evaluation: {{evaluator: {evaluator}}}\n"))
    assert config.evaluation.evaluator == evaluator
    assert type(pipeline_node(config, nodes.EVALUATOR)).__name__ == component


def test_long_lists_in_messages_keep_the_first_ten_and_count_the_rest():
    from config import listed

    assert listed(["a", "b"]) == "a, b"
    assert listed(range(10)) == "0, 1, 2, 3, 4, 5, 6, 7, 8, 9"
    assert listed(range(12)) == "0, 1, 2, 3, 4, 5, 6, 7, 8, 9 and 2 more"


def test_a_parquet_payload_needs_the_columnar_example_gen_and_evaluator(tiny):
    config = load_config(tiny(MINIMAL.replace("data: {path: data}", "data: {path: data, payload: parquet}")))
    assert config.data.payload == "parquet"
    assert load_config(tiny(MINIMAL)).data.payload == "tf_example"
    with pytest.raises(ConfigError, match=r"data\.payload: parquet is written by the columnar ExampleGens.*reader stock"):
        load_config(tiny(MINIMAL.replace("data: {path: data}", "data: {path: data, payload: parquet, reader: stock}")))
    with pytest.raises(ConfigError, match=r"evaluation\.evaluator: tfma .* reads tf.Examples only"):
        load_config(tiny(MINIMAL.replace("data: {path: data}", "data: {path: data, payload: parquet}")
                         + "evaluation: {evaluator: tfma}\n"))
    with pytest.raises(ConfigError, match=r"data\.payload: must be one of"):
        load_config(tiny(MINIMAL.replace("data: {path: data}", "data: {path: data, payload: arrow}")))


def test_transform_writes_no_transformed_splits_or_statistics_unless_asked(tiny, tmp_path):
    """TFX's Transform options: off by default (tfxp's Trainer transforms raw batches itself), TFX's defaults
    with transform: {materialize: true, statistics: true, tf_compat_v1: false}; tfxp traces the
    preprocessing_fn into a TF1 graph unless tf_compat_v1 is false. End to end in formats_test.py."""
    from tfx.components.transform.executor import Executor as TfxTransformExecutor

    from components.transform.executor import Executor as TfxpTransformExecutor
    from pipeline import nodes
    from pipeline.pipeline import pipeline_node

    def transform_node(text):
        config = load_config(tiny(text))
        return config.transform, pipeline_node(config, nodes.TRANSFORM)

    options, node = transform_node(MINIMAL)
    assert (options.materialize, options.statistics, options.tf_compat_v1) == (False, False, True)
    assert "transformed_examples" not in node.outputs and node.exec_properties["disable_statistics"] == 1
    assert node.exec_properties["force_tf_compat_v1"] == 1
    # The preprocessing_fn reads batch_vocabulary_counts from custom_config (tests/preprocessing_test.py).
    assert json.loads(node.exec_properties["custom_config"])["batch_vocabulary_counts"] is True
    # ... and one_pass_vocabularies: on by default, off with spans (tf.Transform's analyzer cache keeps the
    # per-vocabulary analyzers' accumulators per span) or when configured off.
    assert json.loads(node.exec_properties["custom_config"])["one_pass_vocabularies"] is True
    off = transform_node(MINIMAL + "transform: {one_pass_vocabularies: false}\n")[1]
    assert json.loads(off.exec_properties["custom_config"])["one_pass_vocabularies"] is False
    span = tmp_path / "data" / "span-1"
    span.mkdir()
    shutil.copy(tmp_path / "data" / "rows.csv", span / "rows.csv")
    spans = load_config(tiny(MINIMAL.replace("data: {path: data}", "data: {path: data, pattern: 'span-{SPAN}/*.csv'}"),
                             name="spans.yaml"))
    assert spans.analyzer_cache and spans.to_custom_config().one_pass_vocabularies is False
    # tfxp's executor (components/transform) unless transform.executor is tfx.
    assert node.executor_spec.executor_class is TfxpTransformExecutor
    options, node = transform_node(MINIMAL + "transform: {materialize: true, statistics: true, tf_compat_v1: false, "
                                             "batch_vocabulary_counts: false, executor: tfx}\n")
    assert node.executor_spec.executor_class is TfxTransformExecutor
    assert (options.materialize, options.statistics, options.tf_compat_v1) == (True, True, False)
    assert "transformed_examples" in node.outputs and node.exec_properties["disable_statistics"] == 0
    assert node.exec_properties["force_tf_compat_v1"] == 0
    assert json.loads(node.exec_properties["custom_config"])["batch_vocabulary_counts"] is False
    assert json.loads(node.exec_properties["custom_config"])["one_pass_vocabularies"] is False  # needs batch counts


def test_statistics_gen_runs_one_pass_statistics_unless_configured_off(tiny):
    """validation.one_pass_statistics: on by default (components/statistics_gen's Executor: each split in one
    Beam combine, tests/statistics_one_pass_test.py); false runs TFDV's GenerateStatistics per split
    (TfdvExecutor). The node id is StatisticsGen either way (the summary, report and resolvers read it)."""
    from components.statistics_gen.executor import Executor, TfdvExecutor
    from pipeline import nodes
    from pipeline.pipeline import pipeline_node

    config = load_config(tiny(MINIMAL))
    assert config.validation.one_pass_statistics is True
    node = pipeline_node(config, nodes.STATISTICS_GEN)
    assert node.executor_spec.executor_class is Executor and Executor.one_pass_statistics
    off = load_config(tiny(MINIMAL + "validation: {one_pass_statistics: false}\n"))
    node = pipeline_node(off, nodes.STATISTICS_GEN)
    assert node.executor_spec.executor_class is TfdvExecutor and not TfdvExecutor.one_pass_statistics
    with pytest.raises(ConfigError, match="validation.one_pass_statistics"):
        load_config(tiny(MINIMAL + "validation: {one_pass_statistics: maybe}\n"))
