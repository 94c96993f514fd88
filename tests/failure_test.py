"""A component that fails at run time: non-zero exit, the component and the cause named, nothing pushed."""
import json

from pipeline import cli

CONFIG = """
name: broken
data: {path: data}
label: {column: y, task: binary}
features:
  x: zscore
  city: vocab
model: {learning_rate: 1.0e+30}
training: {train_steps: 20, eval_steps: 1, batch_size_per_replica: 8}
outputs: {pipeline_root: out/root, serving_dir: out/serving}
"""


def test_training_that_diverges_fails_the_trainer_exits_1_and_pushes_nothing(tmp_path, capsys):
    (tmp_path / "data").mkdir()
    rows = [f"{i * 0.5},{'paris' if i % 2 else 'rome'},{i % 2}" for i in range(40)]
    (tmp_path / "data" / "rows.csv").write_text("x,city,y\n" + "\n".join(rows) + "\n")
    (tmp_path / "broken.yaml").write_text(CONFIG)
    summary_json = tmp_path / "summary.json"

    code = cli.main(["run", "--config", str(tmp_path / "broken.yaml"), "--summary-json", str(summary_json)])

    assert code == cli.EXIT_COMPONENT_FAILED
    err = capsys.readouterr().err
    assert "component Trainer failed: TrainingDiverged: training diverged: loss is nan" in err
    assert "full log:" in err
    summary = json.load(open(summary_json))
    assert summary["pushed"] is False and summary["failed_component"] == "Trainer"
    assert not (tmp_path / "out" / "serving").exists()
