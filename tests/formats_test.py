"""Every input format end to end on a small table, with no code change: the iris table as CSV, Parquet and
tf.Example TFRecords gives the same transformed examples; the freeze command reads each format; BigQuery
compiles into the Vertex spec and is refused by a local run with the reason."""
import csv
import glob
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from conftest import REPO

CONFIG = os.path.join(REPO, "configs", "iris.yaml")


def iris_rows():
    with open(os.path.join(REPO, "data", "iris", "iris.csv")) as f:
        reader = csv.reader(f)
        header = next(reader)
        return header, list(reader)


def write_parquet(path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    header, rows = iris_rows()
    columns = {name: [float(r[i]) for r in rows] if name != "species" else [r[i] for r in rows]
               for i, name in enumerate(header)}
    pq.write_table(pa.table(columns), str(path))


def write_tfrecord(path):
    header, rows = iris_rows()
    with tf.io.TFRecordWriter(str(path), options="GZIP") as writer:
        for row in rows:
            example = tf.train.Example()
            for name, cell in zip(header, row):
                if name == "species":
                    example.features.feature[name].bytes_list.value.append(cell.encode())
                else:
                    example.features.feature[name].float_list.value.append(float(cell))
            writer.write(example.SerializeToString(deterministic=True))


def config_for(tmp_path, data_format):
    data = tmp_path / data_format / "data"
    data.mkdir(parents=True)
    if data_format == "csv":
        shutil.copy(os.path.join(REPO, "data", "iris", "iris.csv"), data / "iris.csv")
    elif data_format == "parquet":
        write_parquet(data / "iris.parquet")
    else:
        write_tfrecord(data / "iris.tfrecord.gz")
    text = open(CONFIG).read().replace("path: ../data/iris", f"path: {data}\n  format: {data_format}")
    text = text.replace("../runs/iris/", f"{tmp_path / data_format}/out/")
    if data_format == "tfrecord":  # TFX Transform's defaults: the transformed splits, statistics, a TF2 graph,
        # tf.Transform's own token counting (the label vocabulary: the same class ids as the other formats),
        # TFX's own executor
        text += ("\ntransform:\n  materialize: true\n  statistics: true\n  tf_compat_v1: false\n"
                 "  batch_vocabulary_counts: false\n  executor: tfx\n")
    path = tmp_path / data_format / "iris.yaml"
    path.write_text(text)
    return str(path)


def transformed(config):
    """Every example of both splits through the run's tf.Transform graph (what the Trainer and serving see):
    a [rows, features] array (features by name), rows in the order of their raw values (exact in every
    format; identical raw rows have identical transformed rows)."""
    import numpy as np
    import tensorflow_transform as tft

    from pipeline import nodes
    from pipeline.summary import latest_output_uri

    examples = latest_output_uri(config.metadata_path, config.name, nodes.EXAMPLE_GEN, "examples")
    output = tft.TFTransformOutput(latest_output_uri(config.metadata_path, config.name, nodes.TRANSFORM,
                                                     "transform_graph"))
    layer = output.transform_features_layer()
    keyed = []
    for path in glob.glob(os.path.join(examples, "Split-*", "*.gz")):
        serialized = [r.numpy() for r in tf.data.TFRecordDataset(path, compression_type="GZIP")]
        raw = tf.io.parse_example(serialized, output.raw_feature_spec())
        features = layer(raw)
        raw_values = [tf.sparse.to_dense(raw[name], default_value=b"" if raw[name].dtype == tf.string else 0)
                      .numpy().reshape(len(serialized), -1) if isinstance(raw[name], tf.SparseTensor)
                      else raw[name].numpy().reshape(len(serialized), -1) for name in sorted(raw)]
        values = np.concatenate([tf.cast(features[name], tf.float64).numpy().reshape(len(serialized), -1)
                                 for name in sorted(features)], axis=1)
        for i in range(len(serialized)):
            keyed.append((tuple(tuple(column[i].tolist()) for column in raw_values), tuple(values[i])))
    return np.array([values for _, values in sorted(keyed)])


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    from config import load_config
    from pipeline.local_runner import run_local

    tmp_path = tmp_path_factory.mktemp("formats")
    out = {}
    for data_format in ("csv", "parquet", "tfrecord"):
        config = load_config(config_for(tmp_path, data_format))
        out[data_format] = (config, run_local(config, emit_line=lambda line: None))
    return out


@pytest.mark.parametrize("data_format", ["parquet", "tfrecord"])
def test_each_format_gives_the_csv_path_s_transformed_examples(runs, data_format):
    csv_config, csv_summary = runs["csv"]
    config, summary = runs[data_format]
    assert summary.pushed and summary.blessed, summary.validation_failures
    values, csv_values = transformed(config), transformed(csv_config)
    assert values.shape == csv_values.shape and len(values) == 150
    # The same values; the analyzers' float sums may differ in the last digits with the order of the rows.
    np.testing.assert_allclose(values, csv_values, atol=1e-4)


def test_transform_materializes_the_transformed_splits_and_their_statistics_when_asked(runs):
    """transform: {materialize: true, statistics: true} (the tfrecord run): TFX's Transform writes both splits
    transformed, the values the transform graph gives the raw rows (the Trainer's and serving's), and its
    pre- and post-transform statistics; without them (the other runs) it writes neither."""
    from tensorflow_metadata.proto.v0 import statistics_pb2

    from components.data_gate.checks import STATS_FILE
    from pipeline import nodes
    from pipeline.summary import latest_output_uri

    config, summary = runs["tfrecord"]
    assert config.transform.materialize and config.transform.statistics and summary.pushed
    uri = latest_output_uri(config.metadata_path, config.name, nodes.TRANSFORM, "transformed_examples")
    rows = []
    for split in ("train", "eval"):
        files = glob.glob(os.path.join(uri, f"Split-{split}", "*"))
        records = [r.numpy() for r in tf.data.TFRecordDataset(files, compression_type="GZIP")]
        assert records, split
        for record in records:
            feature = tf.train.Example.FromString(record).features.feature
            rows.append([float(v) for name in sorted(feature)
                         for v in getattr(feature[name], feature[name].WhichOneof("kind")).value])
        names = sorted(feature)
    assert names == sorted(f"{name}_xf" for name in ("petal_length", "petal_width", "sepal_length",
                                                     "sepal_width", "species"))
    materialized, expected = np.array(rows), transformed(config)
    assert materialized.shape == expected.shape == (150, 5)
    np.testing.assert_allclose(materialized[np.lexsort(materialized.T[::-1])],
                               expected[np.lexsort(expected.T[::-1])], atol=1e-6)
    statistics = latest_output_uri(config.metadata_path, config.name, nodes.TRANSFORM, "post_transform_stats")
    [stats_file] = glob.glob(os.path.join(statistics, "**", STATS_FILE), recursive=True)
    with open(stats_file, "rb") as f:
        stats = statistics_pb2.DatasetFeatureStatisticsList.FromString(f.read())
    assert {f.path.step[0] for f in stats.datasets[0].features} == set(names)
    csv_config, _ = runs["csv"]
    assert not csv_config.transform.materialize
    for key in ("transformed_examples", "post_transform_stats"):
        with pytest.raises(KeyError):
            latest_output_uri(csv_config.metadata_path, csv_config.name, nodes.TRANSFORM, key)


@pytest.mark.parametrize("data_format", ["parquet", "tfrecord"])
def test_freeze_reads_each_format(runs, data_format, tmp_path):
    config, _ = runs[data_format]
    output = tmp_path / "schema.pbtxt"
    result = subprocess.run([sys.executable, "-m", "pipeline.cli", "schema", "freeze", "--config", config.source,
                             "--output", str(output)], capture_output=True, text=True, timeout=600,
                            env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    assert result.returncode == 0, result.stderr[-2000:]
    text = output.read_text()
    assert 'name: "petal_length"' in text and '"virginica"' in text


def test_a_parquet_config_names_a_missing_column(tmp_path):
    from config import ConfigError, load_config

    path = config_for(tmp_path, "parquet")
    with open(path) as f:
        text = f.read().replace("  petal_width: zscore", "  petal_area: zscore")
    with open(path, "w") as f:
        f.write(text)
    with pytest.raises(ConfigError, match="feature 'petal_area' is not a column of .*iris.parquet"):
        load_config(path)


BIGQUERY = """
name: iris-bq
data:
  format: bigquery
  query: SELECT * FROM `my-project.iris.flowers`
label: {column: species, task: multiclass}
features: {sepal_length: zscore, petal_length: zscore}
cloud:
  project: my-project
  region: us-central1
  pipeline_root: gs://bucket/root
  image: us-docker.pkg.dev/my-project/tfxp/tfxp:1
  serving_dir: gs://bucket/serving
"""


def test_bigquery_compiles_into_the_vertex_spec_and_a_local_run_says_why_not(tmp_path):
    path = tmp_path / "bq.yaml"
    path.write_text(BIGQUERY)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run([sys.executable, "-m", "pipeline.cli", "run", "--config", str(path)],
                            capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 2 and "bigquery runs in compiled pipelines" in result.stderr
    spec_path = tmp_path / "spec.json"
    result = subprocess.run([sys.executable, "-m", "pipeline.cli", "compile", "--config", str(path), "--target",
                             "vertex", "--output", str(spec_path)], capture_output=True, text=True, timeout=600,
                            env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    spec = json.loads(spec_path.read_text())
    text = json.dumps(spec)
    assert "BigQueryExampleGen" in text or "big_query" in text
    assert "my-project.iris.flowers" in text


def test_the_transform_graph_is_tf1_unless_tf_compat_v1_is_false(runs):
    """transform.tf_compat_v1 (default true) traces the preprocessing_fn into a TF1 graph; the tfrecord run
    (tf_compat_v1: false, TFX's default) writes TFT's TF2 SavedModel. Both kinds go through the Trainer into a
    pushed serving model, and give the CSV run's transformed values (the test above)."""
    import tensorflow_transform as tft
    from tensorflow_transform.saved import saved_transform_io

    from pipeline import nodes
    from pipeline.summary import latest_output_uri

    for data_format, tf1 in (("csv", True), ("parquet", True), ("tfrecord", False)):
        config, summary = runs[data_format]
        assert config.transform.tf_compat_v1 is tf1 and summary.pushed
        output = tft.TFTransformOutput(latest_output_uri(config.metadata_path, config.name, nodes.TRANSFORM,
                                                         "transform_graph"))
        assert saved_transform_io.exported_as_v1(output.transform_savedmodel_dir) is tf1, data_format
