"""Bad input, fed to a run with the frozen taxi schema: the run stops before Transform, the message names the
cause, and the serving directory (a copy of the session run's pushed versions) stays byte-identical.

Malformed files are stopped by the pre-flight pass over the CSV files (file, line and column named); what
only statistics show (ranges, new categories, missing-value bursts, NaN/inf) by the DataGate component.
"""
import csv
import gzip
import os
import shutil

import pytest
from conftest import REPO, sample_taxi_csv, tree_digest

from pipeline import cli
from config import csv_probe
from config import load_config
from pipeline.local_runner import PipelineFailed, run_local
from pipeline.preflight import InputError

FROZEN_SCHEMA = os.path.join(REPO, "configs", "taxi.schema.pbtxt")
ROWS = 1200


@pytest.fixture(scope="module")
def clean(tmp_path_factory, taxi_run):
    root = tmp_path_factory.mktemp("bad_input")
    sample_taxi_csv(root / "clean.csv", ROWS, seed=7)
    with open(root / "clean.csv", newline="") as f:
        header, *rows = list(csv.reader(f))
    serving = root / "serving"
    shutil.copytree(taxi_run["config"].serving_dir, serving)
    assert os.listdir(serving), "the session run pushed nothing to copy"
    return {"root": root, "header": header, "rows": rows, "serving": serving, "digest": tree_digest(serving)}


def write_case(clean, name, rows=None, extra_files=None):
    """A data dir (the clean sample, or `rows`, plus extra files) and a taxi config that uses the frozen
    schema and the shared serving dir. Returns the config path."""
    case = clean["root"] / name
    (case / "data").mkdir(parents=True)
    with open(case / "data" / "part-1.csv", "w", newline="") as f:
        csv.writer(f).writerows([clean["header"]] + (rows if rows is not None else clean["rows"]))
    for file_name, content in (extra_files or {}).items():
        (case / "data" / file_name).write_bytes(content)
    text = open(os.path.join(REPO, "configs", "taxi.yaml")).read()
    text = (text.replace("package://tfx/examples/chicago_taxi_pipeline/data/big_tipper_label", "data")
            .replace("schema: taxi.schema.pbtxt", f"schema: {FROZEN_SCHEMA}")
            .replace("../runs/taxi/pipeline_root", "out/root")
            .replace("../runs/taxi/serving", str(clean["serving"])))
    (case / "taxi.yaml").write_text(text)
    return str(case / "taxi.yaml")


def mutated(clean, column, every, value, *more):
    """The clean rows with `column` set to `value` in every `every`-th row; each further (column, value)
    pair goes in the rows after those (offset 1, 2, ...)."""
    rows = [list(row) for row in clean["rows"]]
    for offset, (name, new) in enumerate([(column, value), *more]):
        index = clean["header"].index(name)
        for row in rows[offset::every]:
            row[index] = new
    return rows


def run_case(clean, config_path, preflight=True):
    lines = []
    with pytest.raises((PipelineFailed, InputError)) as failure:
        run_local(load_config(config_path), emit_line=lines.append, preflight=preflight)
    assert not any(line.startswith("[tfxp] Transform") or line.startswith("[tfxp] Trainer") for line in lines)
    assert tree_digest(clean["serving"]) == clean["digest"], "a failed run changed the serving dir"
    return failure.value


def gate_anomalies(clean, name, rows, preflight=True):
    error = run_case(clean, write_case(clean, name, rows), preflight=preflight)
    assert isinstance(error, PipelineFailed) and error.component == "DataGate", error
    return {(a.feature, a.kind): a for a in error.anomalies}


# -- malformed files: the pre-flight pass names file, line and column -------------------------------------


def test_row_with_the_wrong_number_of_columns(clean):
    rows = [list(row) for row in clean["rows"]]
    rows[100] = rows[100][:-1]
    error = run_case(clean, write_case(clean, "short_row", rows))
    assert isinstance(error, InputError)
    assert error.line == 102 and error.path.endswith("part-1.csv")  # header is line 1
    assert "18 fields, but the header has 19" in str(error)


def test_new_file_missing_a_column(clean):
    header = [c for c in clean["header"] if c != "fare"]
    keep = [clean["header"].index(c) for c in header]
    body = "\n".join(",".join(row[i] for i in keep) for row in clean["rows"][:50])
    error = run_case(clean, write_case(clean, "missing_column",
                                       extra_files={"part-2.csv": (",".join(header) + "\n" + body).encode()}))
    assert isinstance(error, InputError) and error.path.endswith("part-2.csv")
    assert "missing column(s) fare" in str(error)


def test_string_in_a_numeric_column_past_the_rows_the_config_check_reads(clean, monkeypatch):
    monkeypatch.setattr(csv_probe, "TYPE_SNIFF_ROWS", 50)
    rows = [list(row) for row in clean["rows"]]
    rows[900][clean["header"].index("fare")] = "twelve dollars"
    error = run_case(clean, write_case(clean, "text_in_fare", rows))
    assert isinstance(error, InputError)
    assert (error.line, error.column) == (902, "fare")
    assert "'twelve dollars' is not a number" in str(error)


def test_string_in_a_numeric_column_is_also_stopped_by_the_gate(clean, monkeypatch):
    """Remote data gets no pre-flight pass: the frozen schema and the config check stop it in the DAG."""
    monkeypatch.setattr(csv_probe, "TYPE_SNIFF_ROWS", 50)
    rows = [list(row) for row in clean["rows"]]
    rows[900][clean["header"].index("fare")] = "twelve dollars"
    error = run_case(clean, write_case(clean, "text_in_fare_gate", rows), preflight=False)
    fare = [a for a in error.anomalies if a.feature == "fare"]
    assert any(a.kind == "TEXT_IN_NUMERIC_COLUMN" and "'twelve dollars'" in a.description for a in fare), fare
    assert any(a.kind != "TEXT_IN_NUMERIC_COLUMN" and "TYPE" in a.kind for a in fare), fare  # frozen schema


def test_empty_file(clean):
    error = run_case(clean, write_case(clean, "empty_file", extra_files={"part-2.csv": b""}))
    assert isinstance(error, InputError) and error.path.endswith("part-2.csv")
    assert "empty file" in str(error)


def test_files_that_are_not_csv(clean):
    error = run_case(clean, write_case(clean, "gzip_file", extra_files={"part-2.csv": gzip.compress(b"a,b\n1,2\n")}))
    assert isinstance(error, InputError) and error.path.endswith("part-2.csv")
    assert "not a text CSV file" in str(error)
    jsonl = b'{"fare": 1.0, "company": "x"}\n{"fare": 2.0, "company": "y"}\n'
    error = run_case(clean, write_case(clean, "json_file", extra_files={"part-2.json": jsonl}))
    assert isinstance(error, InputError) and error.path.endswith("part-2.json")
    assert "not a CSV header" in str(error)


def test_binary_label_outside_its_classes(clean):
    rows = mutated(clean, "big_tipper", 200, "2")
    error = run_case(clean, write_case(clean, "label_2", rows))
    assert isinstance(error, InputError) and error.column == "big_tipper"
    assert "'2' is not a binary class (0 or 1)" in str(error)
    anomalies = gate_anomalies(clean, "label_2_gate", rows, preflight=False)
    assert "found values from 0 to 2" in anomalies[("big_tipper", "LABEL_OUTSIDE_CLASSES")].description
    assert ("big_tipper", "INT_TYPE_BIG_INT") in anomalies  # the frozen schema's 0..1 domain


def test_data_path_that_does_not_exist(clean, capsys):
    config_path = write_case(clean, "no_path")
    text = open(config_path).read().replace("path: data", "path: no/such/dir")
    open(config_path, "w").write(text)
    assert cli.main(["run", "--config", config_path]) == cli.EXIT_CONFIG
    err = capsys.readouterr().err
    assert "data.path" in err and os.path.join("no_path", "no", "such", "dir") in err
    assert tree_digest(clean["serving"]) == clean["digest"]


# -- what only the statistics show: the DataGate component --------------------------------------------------


def test_new_categorical_values_beyond_the_allowed_fraction(clean):
    anomalies = gate_anomalies(clean, "new_payment_type", mutated(clean, "payment_type", 20, "Bitcoin"))
    anomaly = anomalies[("payment_type", "ENUM_TYPE_UNEXPECTED_STRING_VALUES")]
    assert "Bitcoin" in anomaly.description and anomaly.split in ("train", "eval")


def test_burst_of_missing_values(clean):
    anomalies = gate_anomalies(clean, "missing_trip_miles", mutated(clean, "trip_miles", 4, ""))
    anomaly = anomalies[("trip_miles", "MISSING_VALUES_HIGH")]
    assert "the frozen schema allows at most 5.0%" in anomaly.description


def test_values_outside_the_schema_range(clean):
    rows = mutated(clean, "fare", 300, "5000", ("pickup_community_area", "99"))
    anomalies = gate_anomalies(clean, "out_of_range", rows)
    assert ("fare", "FLOAT_TYPE_BIG_FLOAT") in anomalies
    assert ("pickup_community_area", "INT_TYPE_BIG_INT") in anomalies


def test_nan_and_inf_in_float_columns(clean):
    anomalies = gate_anomalies(clean, "non_finite", mutated(clean, "fare", 250, "nan", ("trip_miles", "inf")))
    assert ("fare", "FLOAT_TYPE_HAS_NAN") in anomalies
    assert ("trip_miles", "FLOAT_TYPE_HAS_INF") in anomalies


def test_cli_prints_each_anomaly_and_exits_3(clean, capsys, tmp_path):
    import json

    config_path = write_case(clean, "cli_anomalies", mutated(clean, "payment_type", 20, "Bitcoin"))
    summary_json = tmp_path / "summary.json"
    code = cli.main(["run", "--config", config_path, "--summary-json", str(summary_json)])
    assert code == cli.EXIT_BAD_DATA
    err = capsys.readouterr().err
    assert "data validation stopped the run before Transform; nothing was trained or pushed" in err
    assert "feature payment_type: ENUM_TYPE_UNEXPECTED_STRING_VALUES" in err
    summary = json.load(open(summary_json))
    assert summary["pushed"] is False and summary["failed_component"] == "DataGate"
    assert {"split", "feature", "kind", "description"} <= set(summary["anomalies"][0])
    assert tree_digest(clean["serving"]) == clean["digest"]
