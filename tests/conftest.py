"""Test session set-up.

TensorFlow is given two logical CPU devices before anything initializes its runtime, so every test that
trains (the end-to-end pipeline included) runs MirroredStrategy with two replicas in sync.
Beam runs in-process (`in_memory`) in every pipeline the tests build.
"""
import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import csv  # noqa: E402
import random  # noqa: E402
import shutil  # noqa: E402

import pytest  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LOGICAL_CPUS = 2
SAMPLE_ROWS = 3000


def pytest_configure(config):
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(LOGICAL_CPUS)])


@pytest.fixture(scope="session")
def repo_dir():
    return REPO


def sample_taxi_csv(path, rows, seed=0):
    from config import resolve_data_path

    taxi_csv = os.path.join(resolve_data_path(
        "package://tfx/examples/chicago_taxi_pipeline/data/big_tipper_label", REPO), "data.csv")
    with open(taxi_csv, newline="") as f:
        reader = csv.reader(f)
        header = next(reader)
        data = list(reader)
    random.Random(seed).shuffle(data)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(data[:rows])
    return header, data[rows:rows + 300]  # held-out rows for scoring


@pytest.fixture(scope="session")
def taxi_run(tmp_path_factory):
    """One LocalDagRunner run of the default taxi config on a 3,000-row sample, shared by the test modules."""
    from config import load_config
    from pipeline.local_runner import run_local

    root = tmp_path_factory.mktemp("taxi_e2e")
    (root / "data").mkdir()
    header, held_out = sample_taxi_csv(root / "data" / "sample.csv", SAMPLE_ROWS)
    taxi = open(os.path.join(REPO, "configs", "taxi.yaml")).read()
    text = (taxi.replace("package://tfx/examples/chicago_taxi_pipeline/data/big_tipper_label", "data")
            .replace("train_steps: 300", "train_steps: 150")
            .replace("batch_size_per_replica: 128", "batch_size_per_replica: 64")
            .replace("../runs/taxi/", "out/"))
    config_path = root / "taxi.yaml"
    config_path.write_text(text)
    shutil.copy(os.path.join(REPO, "configs", "taxi.schema.pbtxt"), root / "taxi.schema.pbtxt")
    config = load_config(str(config_path))
    lines = []
    summary = run_local(config, emit_line=lines.append)
    # The run's report and model card as this run wrote them (later test runs on this root write theirs).
    report = {"html": str(root / "first_report.html"), "model_card": str(root / "first_model_card.md")}
    shutil.copy(summary.report_file, report["html"])
    shutil.copy(os.path.join(os.path.dirname(summary.report_file), "model_card.md"), report["model_card"])
    return {"config": config, "config_path": str(config_path), "summary": summary, "lines": lines,
            "header": header, "held_out": held_out, "root": root, "report": report}



def held_out_rows(taxi_run, n=None):
    """The shared run's held-out rows (not in its sample) as {feature: cell} dicts, and their labels."""
    header, held_out = taxi_run["header"], taxi_run["held_out"][:n]
    features = [f.name for f in taxi_run["config"].features]
    label = header.index(taxi_run["config"].label.column)
    return ([{name: row[header.index(name)] for name in features} for row in held_out],
            [int(row[label]) for row in held_out])


def trainer_spec(config, **overrides):
    """The Trainer's inputs of `config`'s latest run (from ML Metadata) as a SPEC for tests/multi_worker.py,
    with the config's steps; the caller adds the outputs and any override."""
    from pipeline import nodes
    from pipeline.summary import latest_output_uri

    def uri(node, key):
        return latest_output_uri(config.metadata_path, config.name, node, key)

    schema_node = "FrozenSchemaGen" if config.validation.schema_file else "SchemaGen"
    spec = {"examples": uri(nodes.EXAMPLE_GEN, "examples"), "split_names": ["train", "eval"],
            "transform_graph": uri(nodes.TRANSFORM, "transform_graph"), "schema": uri(schema_node, "schema"),
            "train_steps": config.training.train_steps, "eval_steps": config.training.eval_steps,
            "custom_config": config.to_custom_config().to_json()}
    return dict(spec, **overrides)


def run_example_gen(executor_class, input_base, out, payload_format=None, splits=None):
    """An ExampleGen executor on the files under input_base, as one input split hashed 2:1 into train and
    eval (or `splits`: {name: pattern}, the input's own splits); payload_format: example_gen_pb2's
    FORMAT_TF_EXAMPLE (default) or FORMAT_PARQUET. Returns the Examples artifact."""
    from tfx.proto import example_gen_pb2
    from tfx.types import standard_artifacts
    from tfx.utils import proto_utils

    examples = standard_artifacts.Examples()
    examples.uri = str(out)
    if splits:
        input_config = example_gen_pb2.Input(splits=[example_gen_pb2.Input.Split(name=name, pattern=pattern)
                                                     for name, pattern in splits.items()])
        output_config = example_gen_pb2.Output()
    else:
        input_config = example_gen_pb2.Input(splits=[example_gen_pb2.Input.Split(name="single_split", pattern="*")])
        output_config = example_gen_pb2.Output(split_config=example_gen_pb2.SplitConfig(splits=[
            example_gen_pb2.SplitConfig.Split(name="train", hash_buckets=2),
            example_gen_pb2.SplitConfig.Split(name="eval", hash_buckets=1)]))
    payload_format = payload_format or example_gen_pb2.FORMAT_TF_EXAMPLE
    file_format = (example_gen_pb2.FILE_FORMAT_PARQUET if payload_format == example_gen_pb2.FORMAT_PARQUET
                   else example_gen_pb2.FORMAT_TFRECORDS_GZIP)
    executor_class(executor_class.Context(beam_pipeline_args=["--direct_running_mode=in_memory"])).Do(
        {}, {"examples": [examples]},
        {"input_base": str(input_base), "input_config": proto_utils.proto_to_json(input_config),
         "output_config": proto_utils.proto_to_json(output_config), "output_data_format": payload_format,
         "output_file_format": file_format})
    return examples


def assert_same_statistics(first, second, untyped=()):
    """Two DatasetFeatureStatisticsLists of the same rows: the same features, types, counts, ranges, means and
    string top values (sketches such as quantiles depend on the order of the rows). `untyped`: features with
    no value in any row, whose type may differ (nothing to compare but their missing counts)."""
    by_name = [{f.path.step[0]: f for f in s.datasets[0].features} for s in (first, second)]
    assert first.datasets[0].num_examples == second.datasets[0].num_examples
    assert by_name[0].keys() == by_name[1].keys()
    for name in by_name[0]:
        a, b = by_name[0][name], by_name[1][name]
        if name in untyped:
            missing = [getattr(f, f.WhichOneof("stats")).common_stats.num_missing for f in (a, b)]
            assert missing == [first.datasets[0].num_examples] * 2, name
            continue
        assert a.type == b.type, name
        if a.HasField("num_stats"):
            assert a.num_stats.common_stats.num_non_missing == b.num_stats.common_stats.num_non_missing, name
            assert (a.num_stats.min, a.num_stats.max) == (b.num_stats.min, b.num_stats.max), name
            assert a.num_stats.mean == pytest.approx(b.num_stats.mean, rel=1e-9), name
            assert a.num_stats.num_zeros == b.num_stats.num_zeros, name
        else:
            assert a.string_stats.common_stats.num_non_missing == b.string_stats.common_stats.num_non_missing, name
            assert a.string_stats.unique == b.string_stats.unique, name
            assert list(a.string_stats.top_values) == list(b.string_stats.top_values), name


def tree_digest(path):
    """Names and contents of every file under path: equal digests = byte-identical trees."""
    import hashlib

    digest = hashlib.sha256()
    for directory, dirs, files in sorted(os.walk(path)):
        dirs.sort()
        for name in sorted(files):
            full = os.path.join(directory, name)
            digest.update(os.path.relpath(full, path).encode())
            with open(full, "rb") as f:
                digest.update(f.read())
    return digest.hexdigest()
