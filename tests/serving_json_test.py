"""The JSON serving signature (serving_json): a TF Serving REST request body, decoded as TF Serving decodes row
format, gives serving_default's predictions on the same rows as tf.Examples, missing cells included, for the
float and the int8 model (binary; multiclass and regression in small_tables_test.py). And `tfxp predict`
scoring a CSV and a Parquet file with the pushed model, bad rows named by line and the run going on."""
import csv
import json
import math

import numpy as np
import pytest

from conftest import held_out_rows
from pipeline import cli
from serving.client import ServedModel
from serving_json import assert_json_answers_like_examples, decode_row_format, rest_body


def taxi_rows(taxi_run, n=200):
    return held_out_rows(taxi_run, n)[0]


def with_missing_cells(rows):
    """Every feature missing in some rows (numeric and text), and one row with every cell missing."""
    rows = [dict(row) for row in rows]
    names = list(rows[0])
    for i, row in enumerate(rows):
        for j, name in enumerate(names):
            if (i + j) % 7 == 0:
                row[name] = ""
    rows[-1] = {name: "" for name in names}
    return rows


@pytest.mark.parametrize("kind", ["float", "quantized"])
def test_rest_request_answers_like_tf_examples(taxi_run, kind):
    summary = taxi_run["summary"]
    model_dir = summary.pushed_float_model_dir if kind == "float" else summary.pushed_quantized_model_dir
    rows = with_missing_cells(taxi_rows(taxi_run))
    predictions = assert_json_answers_like_examples(model_dir, rows)
    assert predictions.shape == (len(rows), 1) and np.all((predictions >= 0) & (predictions <= 1))


def test_rest_body_is_what_tf_serving_takes_and_refuses_what_it_refuses(taxi_run):
    model = ServedModel(taxi_run["summary"].pushed_model_dir)
    body = json.loads(rest_body(with_missing_cells(taxi_rows(taxi_run, 3)), model.info))
    assert body["signature_name"] == "serving_json"
    assert math.isnan(body["instances"][-1]["fare"]) and body["instances"][-1]["company"] == ""
    signature = model._model.signatures["serving_json"]
    incomplete = {"instances": [{"fare": 1.0}]}
    with pytest.raises(ValueError, match="does not have named input"):
        decode_row_format(json.dumps(incomplete), signature)


def write_rows(path, header, rows):
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)


def test_tfxp_predict_scores_a_csv_and_names_bad_rows(taxi_run, tmp_path, capsys):
    header, held_out = taxi_run["header"], taxi_run["held_out"]
    rows = [list(r) for r in held_out[:300]]
    fare = header.index("fare")
    rows[4][fare] = "twelve"                      # line 6: not a number
    rows[9] = rows[9][:-2]                        # line 11: too few cells
    rows[20][header.index("trip_start_hour")] = "3.5"  # line 22: not an integer
    source = tmp_path / "rows.csv"
    write_rows(source, header, rows)
    output = tmp_path / "scored.csv"
    code = cli.main(["predict", "--config", taxi_run["config_path"], "--input", str(source), "--output",
                     str(output), "--batch-size", "64"])
    assert code == 0
    captured = capsys.readouterr()
    assert "line 6: not scored: fare: 'twelve' is not a number" in captured.err
    assert "line 11: not scored:" in captured.err and "the header has" in captured.err
    assert "line 22: not scored: trip_start_hour: '3.5' is not an integer" in captured.err
    assert "297 of 299 rows scored" in captured.out
    with open(output, newline="") as f:
        scored = list(csv.DictReader(f))
    assert len(scored) == 299  # the row with too few cells cannot be written back
    assert scored[0].keys() >= set(header) | {"class", "probability", "tfxp_error"}
    bad = [r for r in scored if r["tfxp_error"]]
    assert len(bad) == 2 and all(r["probability"] == "" for r in bad)
    # The scores are the pushed model's on the same rows as tf.Examples.
    model = ServedModel.latest(taxi_run["config"].serving_dir)
    good = [r for r in scored if not r["tfxp_error"]]
    expected = model.predict_rows([{name: r[name] for name in model.info["features"]} for r in good]).reshape(-1)
    np.testing.assert_allclose([float(r["probability"]) for r in good], expected, atol=1e-6)
    assert [int(r["class"]) for r in good] == [int(p > 0.5) for p in expected]


def test_tfxp_predict_scores_parquet(taxi_run, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    header, held_out = taxi_run["header"], taxi_run["held_out"]
    table = pa.table({name: [row[i] for row in held_out[:50]] for i, name in enumerate(header)})
    pq.write_table(table, tmp_path / "rows.parquet")
    assert cli.main(["predict", "--model-dir", taxi_run["summary"].pushed_model_dir, "--input",
                     str(tmp_path / "rows.parquet"), "--output", str(tmp_path / "scored.parquet")]) == 0
    scored = pq.read_table(tmp_path / "scored.parquet").to_pydict()
    assert len(scored["probability"]) == 50 and all(p is not None for p in scored["probability"])
