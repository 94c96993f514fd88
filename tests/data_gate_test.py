"""The data gate's pieces without a pipeline: the frozen schema's domains, each check, the freeze command."""
import textwrap

import pandas as pd
import pytest
import tensorflow_data_validation as tfdv

from components.data_gate import checks
from components.data_gate.freeze import frozen_schema
from pipeline import cli
from config import ConfigError, load_config

CONFIG = """
name: gate
data: {path: data}
label: {column: y, task: binary}
features:
  x: zscore
  lat: minmax
  c: vocab
  h: vocab
"""
N = 200


def frame(x=None, lat=None, c=None, h=None, y=None, note=None):
    return pd.DataFrame({
        "x": x if x is not None else [float(i % 11) if i % 10 else None for i in range(N)],  # 10% empty
        "lat": lat if lat is not None else [-88.0 + (i % 5) / 4 for i in range(N)],
        "c": c if c is not None else ["a" if i % 3 else "b" for i in range(N)],
        "h": h if h is not None else [i % 24 for i in range(N)],
        "y": y if y is not None else [i % 2 for i in range(N)],
        "note": note if note is not None else [None] * N,
    })


def csv_text(df):
    return df.to_csv(index=False, na_rep="")


@pytest.fixture
def config(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "rows.csv").write_text(csv_text(frame(note=["n"] * N)))
    (tmp_path / "gate.yaml").write_text(CONFIG)
    return load_config(str(tmp_path / "gate.yaml"))


def stats_of(df):
    return tfdv.generate_statistics_from_dataframe(df)


@pytest.fixture
def schema(config):
    schema, notes = frozen_schema(stats_of(frame()), config)
    assert notes == []
    return schema


def by_name(schema):
    return {f.name: f for f in schema.feature}


def test_frozen_domains(schema):
    features = by_name(schema)
    x = features["x"].float_domain
    assert (x.min, x.max) == (0.0, 11.0)  # [0, 10] widened by 10% of the range, not below 0 (no negatives)
    assert x.disallow_nan and x.disallow_inf
    lat = features["lat"].float_domain
    assert lat.min == pytest.approx(-88.1) and lat.max == pytest.approx(-86.9)
    c = features["c"]
    assert sorted(c.string_domain.value) == ["a", "b"]
    assert c.distribution_constraints.min_domain_mass == pytest.approx(0.99)
    assert (features["h"].int_domain.min, features["h"].int_domain.max) == (0, 23)  # vocab: exact range
    assert (features["y"].int_domain.min, features["y"].int_domain.max) == (0, 1)
    assert checks.max_missing_fraction(features["y"]) == 0
    assert checks.max_missing_fraction(features["x"]) == pytest.approx(0.10 + 0.05)
    assert checks.max_missing_fraction(features["c"]) == pytest.approx(0.05)


def test_columns_the_config_does_not_use_cannot_block(schema):
    note = by_name(schema)["note"]
    assert not note.HasField("domain") and not note.HasField("string_domain")
    assert note.presence.min_count == 0 and checks.max_missing_fraction(note) is None


def test_frozen_schema_flags_out_of_range_and_new_categories_beyond_the_allowed_fraction(schema):
    clean = tfdv.validate_statistics(stats_of(frame()), schema)
    assert not clean.anomaly_info, clean
    one_new = ["a"] * (N - 1) + ["z"]  # 0.5% new: tolerated
    assert "c" not in tfdv.validate_statistics(stats_of(frame(c=one_new)), schema).anomaly_info
    many_new = ["z" if i % 20 == 0 else "a" for i in range(N)]  # 5% new
    found = {(a.feature, a.kind) for a in checks.from_tfdv(
        tfdv.validate_statistics(stats_of(frame(c=many_new, x=[50.0] * N)), schema), "train")}
    assert ("c", "ENUM_TYPE_UNEXPECTED_STRING_VALUES") in found
    assert ("x", "FLOAT_TYPE_BIG_FLOAT") in found


def test_missing_value_burst(schema):
    dataset = stats_of(frame(x=[1.0 if i % 2 else None for i in range(N)])).datasets[0]
    [anomaly] = checks.missing_value_checks(dataset, schema, "train")
    assert (anomaly.feature, anomaly.kind) == ("x", "MISSING_VALUES_HIGH")
    assert "50.0% of the cells are empty; the frozen schema allows at most 15.0%" in anomaly.description
    assert checks.missing_value_checks(stats_of(frame()).datasets[0], schema, "train") == []


def test_config_checks_hold_without_a_frozen_schema(config):
    custom = config.to_custom_config()
    assert checks.config_checks(stats_of(frame()).datasets[0], custom, "train") == []
    bad = frame(x=["1.5"] * (N - 1) + ["twelve"], y=[2] + [0] * (N - 1))
    found = {(a.feature, a.kind): a for a in checks.config_checks(stats_of(bad).datasets[0], custom, "eval")}
    assert "'twelve'" in found[("x", "TEXT_IN_NUMERIC_COLUMN")].description
    assert "found values from 0 to 2" in found[("y", "LABEL_OUTSIDE_CLASSES")].description
    unlabeled = frame(y=[None] * 3 + [1] * (N - 3))
    [missing] = checks.config_checks(stats_of(unlabeled).datasets[0], custom, "train")
    assert (missing.feature, missing.kind, missing.split) == ("y", "LABEL_MISSING", "train")
    assert missing.description.startswith("3 of 200 examples")


def test_drift_against_the_last_accepted_data_and_skew_between_splits(schema):
    baseline = stats_of(frame())
    shifted = stats_of(frame(c=["b"] * N, x=[9.0 + (i % 3) for i in range(N)]))
    found, distances = checks.comparator_checks(tfdv.validate_statistics, schema, shifted, baseline, None,
                                                drift=[("c", 0.1), ("x", 0.1)], skew=[])
    kinds = {(a.feature, a.kind) for a in found}
    assert kinds == {("c", "DRIFT (COMPARATOR_L_INFTY_HIGH)"),
                     ("x", "DRIFT (COMPARATOR_JENSEN_SHANNON_DIVERGENCE_HIGH)")}
    assert all(a.split == "train vs last accepted data" for a in found)
    # Every distance measured, with its threshold (the report shows them): c moved from "a"/"b" mixed to all "b".
    by_feature = {d.feature: d for d in distances}
    assert set(by_feature) == {"c", "x"} and all(d.comparison == "drift" and d.threshold == 0.1 for d in distances)
    assert by_feature["c"].measure == "L_INFTY" and by_feature["c"].value > 0.1
    assert by_feature["x"].measure == "JENSEN_SHANNON_DIVERGENCE" and by_feature["x"].value > 0.1
    # The first run has no accepted data yet; unchanged data does not drift (and is measured at 0).
    assert checks.comparator_checks(tfdv.validate_statistics, schema, shifted, None, None, [("c", 0.1)], []) == ([], [])
    unchanged, distances = checks.comparator_checks(tfdv.validate_statistics, schema, baseline, baseline, None,
                                                    [("c", 0.1)], [])
    assert unchanged == [] and [(d.feature, d.value) for d in distances] == [("c", 0.0)]
    skewed, distances = checks.comparator_checks(tfdv.validate_statistics, schema, baseline, None, shifted,
                                                 drift=[], skew=[("c", 0.2)])
    assert [(a.feature, a.kind, a.split) for a in skewed] == [("c", "SKEW (COMPARATOR_L_INFTY_HIGH)", "train vs eval")]
    assert [(d.comparison, d.feature) for d in distances] == [("skew", "c")]


def test_freeze_command_writes_a_reviewable_schema_that_a_config_then_imports(config, tmp_path, capsys):
    config_path = str(tmp_path / "gate.yaml")
    assert cli.main(["schema", "freeze", "--config", config_path]) == 0
    schema_path = tmp_path / "gate.schema.pbtxt"
    text = schema_path.read_text()
    assert text.startswith("# Frozen by `tfxp schema freeze --config gate.yaml`")
    assert 'tag: "tfxp:max_missing_fraction=0"' in text and "min_domain_mass: 0.99" in text
    assert "schema: gate.schema.pbtxt" in capsys.readouterr().out
    assert cli.main(["schema", "freeze", "--config", config_path]) == cli.EXIT_CONFIG  # reviewed: no overwrite
    assert "pass --force" in capsys.readouterr().err

    (tmp_path / "gate.yaml").write_text(CONFIG + "validation:\n  schema: gate.schema.pbtxt\n  drift: {c: 0.2}\n")
    imported = load_config(config_path)
    assert imported.validation.schema_file == str(schema_path) and imported.validation.drift == (("c", 0.2),)
    schema_path.write_text(text.replace("min_domain_mass: 0.99", "min_domain_mass: 0.95"))
    assert load_config(config_path).validation.schema_fingerprint != imported.validation.schema_fingerprint
    # A config that names a schema file not written yet: freeze writes exactly that file.
    schema_path.unlink()
    assert cli.main(["schema", "freeze", "--config", config_path]) == 0
    assert schema_path.read_text().startswith("# Frozen by")


@pytest.mark.parametrize("validation, key, message", [
    ("schema: absent.pbtxt", "validation.schema", "tfxp schema freeze --config"),
    ("drift: {nope: 0.1}", "validation.drift.nope", "not a configured feature or the label"),
    ("skew: {c: 2}", "validation.skew.c", "must be a threshold in (0, 1]"),
    ("max_new_category_fraction: 1.5", "validation.max_new_category_fraction", "must be a fraction"),
])
def test_validation_config_errors(config, tmp_path, validation, key, message):
    (tmp_path / "gate.yaml").write_text(CONFIG + "validation:\n" + textwrap.indent(validation, "  ") + "\n")
    with pytest.raises(ConfigError) as error:
        load_config(str(tmp_path / "gate.yaml"))
    assert error.value.key == key and message in str(error.value)


def test_freeze_reads_every_span_of_a_spans_config(tmp_path, capsys):
    """`data.pattern: span-{SPAN}/*.csv`: the freeze command reads the CSV files inside the span directories
    (the files ExampleGen reads), not the directories themselves; values seen only in one span are frozen."""
    for span, category in ((1, "only-in-span-1"), (2, "only-in-span-2")):
        (tmp_path / "data" / f"span-{span}").mkdir(parents=True)
        rows = frame(c=["a" if i % 3 else category for i in range(N)], note=["n"] * N)
        (tmp_path / "data" / f"span-{span}" / "rows.csv").write_text(csv_text(rows))
    (tmp_path / "gate.yaml").write_text(CONFIG.replace("data: {path: data}",
                                                       'data: {path: data, pattern: "span-{SPAN}/*.csv"}'))
    output = tmp_path / "spans.schema.pbtxt"
    assert cli.main(["schema", "freeze", "--config", str(tmp_path / "gate.yaml"), "--output", str(output)]) == 0
    text = output.read_text()
    assert '"only-in-span-1"' in text and '"only-in-span-2"' in text


def test_anomaly_with_many_values_lists_ten_and_counts_the_rest():
    from tensorflow_metadata.proto.v0 import anomalies_pb2

    anomalies = anomalies_pb2.Anomalies()
    info = anomalies.anomaly_info["company"]
    values = ", ".join(f"Bitcoin{i} (<1%)" for i in range(1000))
    info.reason.add(type=anomalies_pb2.AnomalyInfo.ENUM_TYPE_UNEXPECTED_STRING_VALUES,
                    description=f"Examples contain values missing from the schema: {values}.")
    [anomaly] = checks.from_tfdv(anomalies, "train")
    assert anomaly.description.startswith("Examples contain values missing from the schema: Bitcoin0 (<1%), ")
    assert "Bitcoin9 (<1%)" in anomaly.description and "Bitcoin10 (<1%)" not in anomaly.description
    assert anomaly.description.endswith("and 990 more.")
    assert len(anomaly.line()) < 400
