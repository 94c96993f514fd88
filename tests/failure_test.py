"""A component that fails at run time: non-zero exit, the component and the cause named, nothing pushed."""
import json

from pipeline import cli, config as config_lib

CONFIG = """
name: broken
data: {path: data}
label: {column: y, task: binary}
features:
  x: zscore
  city: vocab
training: {train_steps: 5, eval_steps: 1, batch_size_per_replica: 8}
outputs: {pipeline_root: out/root, serving_dir: out/serving}
"""


def test_runtime_failure_names_the_component_exits_1_and_pushes_nothing(tmp_path, monkeypatch, capsys):
    (tmp_path / "data").mkdir()
    rows = [f"{i * 0.5},{'paris' if i % 2 else 'rome'},{i % 2}" for i in range(40)]
    rows[30] = "not-a-number,rome,1"  # past the rows the config check reads (patched to 5 below)
    (tmp_path / "data" / "rows.csv").write_text("x,city,y\n" + "\n".join(rows) + "\n")
    (tmp_path / "broken.yaml").write_text(CONFIG)
    monkeypatch.setattr(config_lib, "TYPE_SNIFF_ROWS", 5)
    summary_json = tmp_path / "summary.json"

    code = cli.main(["run", "--config", str(tmp_path / "broken.yaml"), "--summary-json", str(summary_json)])

    assert code == 1
    err = capsys.readouterr().err
    assert "component Transform failed" in err
    assert "full log:" in err
    summary = json.load(open(summary_json))
    assert summary["pushed"] is False and summary["failed_component"] == "Transform"
    assert not (tmp_path / "out" / "serving").exists()
