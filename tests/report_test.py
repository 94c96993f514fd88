"""The run report (pipeline/report): the shared taxi run's report and the report of a run stopped by the data
gate, opened in a real headless browser (JavaScript off): sections, key numbers, a screenshot, and no network
request; `tfxp report` on an older run; the model card's metrics equal the Evaluator's."""
import os
import re

import browser
from data_validation_test import clean, mutated, run_case, write_case  # noqa: F401 - `clean` is a fixture
from pipeline import cli
from pipeline.local_runner import PipelineFailed, run_local

SECTIONS = ("run", "data", "transform", "training", "evaluation", "quantization", "model-card", "lineage")
MAX_REPORT_BYTES = 2_000_000


def text_of(dom, element_id):
    """The text inside the element with this id (tags stripped, whitespace collapsed)."""
    match = re.search(rf'<(\w+)[^>]*\bid="{element_id}"[^>]*>(.*?)</\1>', dom, re.S)
    assert match, f"no element #{element_id} in the rendered page"
    return " ".join(re.sub(r"<[^>]+>", " ", match.group(2)).split())


def cell(dom, attribute, name):
    match = re.search(rf'<td[^>]*{attribute}="{name}"[^>]*>([^<]*)</td>', dom)
    assert match, f"no cell {attribute}={name}"
    return match.group(1).strip()


def open_report(path, tmp_path):
    page = browser.load(path, str(tmp_path))
    assert browser.foreign_requests(page, path) == [], "the report fetched something: it must be self-contained"
    assert page.screenshot.startswith(b"\x89PNG") and len(page.screenshot) > 20_000
    (tmp_path / "screenshot.png").write_bytes(page.screenshot)
    return page.dom


def test_the_browser_check_sees_network_requests(tmp_path):
    """The control: a page that loads an image and a stylesheet from the network is caught."""
    path = tmp_path / "fetches.html"
    path.write_text('<html><body><img src="http://example.invalid/a.png">'
                    '<link rel="stylesheet" href="https://cdn.example.invalid/b.css"></body></html>')
    page = browser.load(str(path), str(tmp_path))
    assert browser.foreign_requests(page, str(path)) == ["http://example.invalid/a.png",
                                                         "https://cdn.example.invalid/b.css"]


def test_taxi_report_renders_offline_with_the_runs_numbers(taxi_run, tmp_path):
    summary, config, path = taxi_run["summary"], taxi_run["config"], taxi_run["report"]["html"]
    assert summary.report_file == config.report_file  # written by the run (conftest keeps a copy)
    assert os.path.getsize(path) < MAX_REPORT_BYTES
    html = open(path).read()
    assert "<script" not in html and not re.search(r'\b(src|href)="(?!#)', html)  # nothing to fetch or run
    dom = open_report(path, tmp_path)
    for section in SECTIONS:
        assert f'id="{section}"' in dom, section
    assert text_of(dom, "outcome") == "pushed"
    assert text_of(dom, "pushed-version") == os.path.basename(summary.pushed_model_dir)
    for name, value in summary.metrics.items():
        if name != "example_count":
            assert cell(dom, "data-metric", name) == f"{value:.4f}"
    assert text_of(dom, "blessed") == "yes"
    steps = text_of(dom, "steps")
    for node in ("CsvExampleGen", "StatisticsGen", "DataGate", "Transform", "Trainer", "Evaluator", "Pusher"):
        assert node in steps
    # Data: every feature and the label, with the skew distances the gate measured against their thresholds.
    features = text_of(dom, "features")
    assert all(f.name in features for f in config.features) and config.label.column in features
    assert re.search(r"skew 0\.\d{3} \(0\.1\)", features)
    # Transform: the analyzers' values, as the transform graph applies them.
    analyzers = text_of(dom, "analyzers")
    assert re.search(r"fare zscore mean [\d.]+, std [\d.]+", analyzers)
    assert re.search(r"payment_type vocab \d+ values; top: ", analyzers)
    # Slices (evaluation.slices), weakest first.
    slices = re.findall(r'<tr><td>(\w+) = ([^<]*)</td><td class="num">(\d+)</td><td class="num">([\d.]+)</td>',
                        dom[dom.index('id="slices"'):])
    assert {column for column, *_ in slices} == {"payment_type"}
    values = [float(v) for *_, v in slices]
    assert values == sorted(values) and values[0] < summary.metrics["binary_accuracy"]
    training = text_of(dom, "training-summary")
    assert "MirroredStrategy" in training and "64 per replica" in training
    assert dom.count("<svg") >= len(config.features) + 3  # histograms, training curves, timeline
    assert "int8" in text_of(dom, "quantization-table") and "passed" in text_of(dom, "gates")
    lineage = text_of(dom, "lineage-table")
    assert "Transform transform_graph TransformGraph" in lineage and "Pusher pushed_model PushedModel" in lineage


def test_model_card_metrics_equal_the_evaluators(taxi_run):
    """The card (beside the report and in the pushed model) shows the Evaluator's metrics, read from TFMA."""
    from pipeline.summary import evaluation_metrics, latest_output_uri
    from pipeline import nodes
    from serving.layout import MODEL_CARD

    config, summary = taxi_run["config"], taxi_run["summary"]
    evaluator = evaluation_metrics(latest_output_uri(config.metadata_path, config.name, nodes.EVALUATOR,
                                                     "evaluation"))["candidate"]
    card = open(taxi_run["report"]["model_card"]).read()
    assert card == open(os.path.join(summary.pushed_model_dir, MODEL_CARD)).read()  # only its pushing run writes it
    rows = dict(re.findall(r"^\| (\w+) \| ([\d.]+) \|", card, re.M))
    assert {name: float(value) for name, value in rows.items() if name in evaluator} == {
        name: round(value, 4) for name, value in evaluator.items() if name != "example_count"}
    assert f"version {os.path.basename(summary.pushed_model_dir)}" in card
    assert "| fare | z-score ((x - " in card and "vocabulary of" in card
    assert "Not for decisions" in card  # the config's model_card section
    assert "Weakest slices (of " in card


def test_report_of_a_run_stopped_by_the_data_gate(clean, tmp_path):  # noqa: F811 - the imported fixture
    from config import load_config

    config_path = write_case(clean, "report_gate", mutated(clean, "payment_type", 20, "Bitcoin"))
    error = run_case(clean, config_path)
    assert isinstance(error, PipelineFailed) and error.component == "DataGate"
    assert error.report_file == load_config(config_path).report_file
    dom = open_report(error.report_file, tmp_path)
    assert text_of(dom, "outcome") == "failed"
    assert "component DataGate failed" in text_of(dom, "reasons")
    anomalies = text_of(dom, "anomalies")
    assert "payment_type" in anomalies and "ENUM_TYPE_UNEXPECTED_STRING_VALUES" in anomalies
    steps = text_of(dom, "steps")
    assert "DataGate failed" in steps and "Transform" not in steps  # how far it got
    assert "payment_type" in text_of(dom, "features")  # the statistics it had are shown
    assert "The Trainer did not run in this run." in dom


def test_report_of_an_input_error_before_any_component(clean, tmp_path):  # noqa: F811
    rows = [list(row) for row in clean["rows"]]
    rows[10] = rows[10][:-1]
    error = run_case(clean, write_case(clean, "report_preflight", rows))
    dom = open_report(error.report_file, tmp_path)
    assert text_of(dom, "outcome") == "failed"
    assert "bad input data, nothing was run" in text_of(dom, "reasons") and "line 12" in text_of(dom, "reasons")


def test_tfxp_report_on_an_older_run(taxi_run, tmp_path, capsys):
    """On a copy of the shared run's root and serving dir (the shared run stays as it is): a second, cached
    run, then `tfxp report --run-id` of the first. The page is the first run's, the default the latest."""
    import shutil

    config = taxi_run["config"]
    root, serving = tmp_path / "root", tmp_path / "serving"
    shutil.copytree(config.pipeline_root, root)
    shutil.copytree(config.serving_dir, serving)
    copy = config.with_overrides(pipeline_root=str(root), serving_dir=str(serving))
    args = ["report", "--config", taxi_run["config_path"], "--pipeline-root", str(root)]
    assert cli.main(args + ["--list-runs"]) == 0
    before = capsys.readouterr().out.split()  # the shared run first, then any run of other test modules
    first = before[0]
    run_local(copy, emit_line=lambda line: None)
    assert cli.main(args + ["--list-runs"]) == 0
    runs = capsys.readouterr().out.split()
    assert runs[:-1] == before and len(runs) == len(before) + 1
    output = tmp_path / "first.html"
    assert cli.main(args + ["--run-id", first, "--output", str(output)]) == 0
    html = output.read_text()
    assert f"run {first}" in html and ">executed<" in html and "none (no other blessed model)" in html
    latest = tmp_path / "latest.html"
    assert cli.main(args + ["--output", str(latest)]) == 0
    html = latest.read_text()
    # The re-run took the Evaluator from cache too: its model is the first run's, and the baseline the
    # latest blessed model other than that one (none), as in the first run. (The Pusher ran: the copy's
    # serving dir is another exec property, and it found the model already pushed there.)
    assert f"run {runs[-1]}" in html
    for node in ("Trainer", "DataGate", "Evaluator"):
        assert f'<td>{node}</td><td class="">cached<' in html, node
    assert "none (no other blessed model)" in html
    assert cli.main(args + ["--run-id", "no-such-run"]) == cli.EXIT_CONFIG
    assert "no such run" in capsys.readouterr().err


def test_charts_are_drawn_once_per_data_and_the_cache_keeps_one_reports(tmp_path):
    from pipeline.report import charts
    from pipeline.report.cache import ChartCache

    calls = []

    def histogram(buckets):
        calls.append(buckets)
        return charts.numeric_histogram(buckets)

    cache = ChartCache(str(tmp_path / "charts"))
    first = cache.draw(histogram, {"train": [(0.0, 1.0, 5.0), (1.0, 2.0, 3.0)]})
    assert cache.draw(histogram, {"train": [(0.0, 1.0, 5.0), (1.0, 2.0, 3.0)]}) == first and len(calls) == 1
    assert first.startswith("<svg") and "<script" not in first
    later = ChartCache(str(tmp_path / "charts"))  # the next run: other data, so the old chart goes
    later.draw(histogram, {"train": [(0.0, 1.0, 1.0), (1.0, 2.0, 7.0)]})
    later.prune()
    assert len(calls) == 2 and len(os.listdir(tmp_path / "charts")) == 1


def test_timeline_is_svg_with_a_bar_per_step_on_a_seconds_axis():
    """The timeline (written without matplotlib): one bar per step, placed and sized by its seconds, in its
    state's colour, named and escaped; the axis reaches past the last step's end in 1/2/5 steps."""
    import subprocess
    import sys
    import xml.etree.ElementTree as ElementTree

    from pipeline.report import charts

    rows = [("CsvExampleGen", 0.5, 1.2, "executed"), ("Transform", 1.8, 8.4, "cached"),
            ("Pusher<&>", 10.3, 14.2, "failed"), ("zero", 24.6, 0.0, "running")]
    svg = charts.timeline(rows)
    root = ElementTree.fromstring(svg)  # well-formed XML, names escaped
    ns = "{http://www.w3.org/2000/svg}"
    bars = root.findall(f"{ns}rect")
    assert [bar.get("fill") for bar in bars] == [charts.COLORS[state] for *_, state in rows]
    assert [bar.find(f"{ns}title").text.split(":")[0] for bar in bars] == [name for name, *_ in rows]
    texts = [t.text for t in root.findall(f"{ns}text")]
    assert texts[:4] == [name for name, *_ in rows]
    ticks = [float(t) for t in texts[4:-1]]
    assert ticks == [0.0, 5.0, 10.0, 15.0, 20.0, 25.0] and texts[-1] == "seconds since the run started"
    x = [float(bar.get("x")) for bar in bars]
    widths = [float(bar.get("width")) for bar in bars]
    scale = widths[1] / 8.4  # px per second
    assert abs(x[2] - x[0] - (10.3 - 0.5) * scale) < 0.2 and abs(widths[2] / 14.2 - scale) < 0.05
    assert widths[3] >= 1  # a zero-second step still shows
    assert [charts._tick_step(span) for span in (40.7, 7.0, 1.7, 0.05)] == [10.0, 2.0, 0.5, 0.01]
    # A cached re-run's report draws only the timeline: that needs no matplotlib.
    probe = "import sys; from pipeline.report import charts; charts.timeline([('a', 0, 1, 'cached')]); " \
            "print('matplotlib' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          check=True).stdout.strip() == "False"


def test_analyzer_values_are_read_once_per_transform_graph(taxi_run, tmp_path):
    """The report reads the analyzer values through the transform graph once; the next report of a run with
    the same graph (a cached re-run) takes them from its cache, equal."""
    from pipeline.report import artifacts
    from pipeline.report.cache import ChartCache
    from pipeline.summary import latest_output_uri

    config = taxi_run["config"]
    graph = latest_output_uri(config.metadata_path, config.name, "Transform", "transform_graph")
    calls = []

    def counted(features, uri):
        calls.append(uri)
        return artifacts.analyzer_values(features, uri)

    first = ChartCache(str(tmp_path / "cache")).value(counted, list(config.features), graph)
    again = ChartCache(str(tmp_path / "cache")).value(counted, list(config.features), graph)
    assert again == first and calls == [graph]
    fare = next(values for values in first if values["name"] == "fare")
    assert fare["treatment"] == "zscore" and fare["mean"] > 0 and fare["std"] > 0


def test_constant_metrics_are_read_once_per_examples_and_kept_by_the_runs_report(taxi_run, tmp_path, monkeypatch):
    """The constant predictor's metrics: the labels are read once per ExampleGen output; the summary and the
    report share the entry in the run report's cache, so a cached re-run reads no labels."""
    from config import TASK_METRICS
    from pipeline import constant_baseline
    from pipeline.report import run_cache
    from pipeline.report.cache import ChartCache
    from pipeline.summary import read_summary

    config = taxi_run["config"]
    read = []
    real = constant_baseline.read_labels
    monkeypatch.setattr(constant_baseline, "read_labels", lambda *args: read.append(args) or real(*args))

    def summary(cache):
        return read_summary(config.metadata_path, config.name, config.label.column, config.label.task, cache)

    # The shared run wrote its summary and report: the entry is there, kept by the report's pruning.
    assert summary(run_cache(config)).constant_metrics == taxi_run["summary"].constant_metrics and read == []
    first = summary(ChartCache(str(tmp_path / "cache")))
    assert len(read) == 2  # the train and eval labels
    again = summary(ChartCache(str(tmp_path / "cache")))
    assert len(read) == 2 and again.constant_metrics == first.constant_metrics == taxi_run["summary"].constant_metrics
    assert set(first.constant_metrics) == set(first.metrics) & set(TASK_METRICS[config.label.task])
    assert 0.5 < first.constant_metrics["binary_accuracy"] < 1


def test_a_cached_value_is_computed_again_when_a_module_it_depends_on_changes(tmp_path, monkeypatch):
    """ChartCache.value(..., depends_on=modules): the modules' sources are part of the key (the constant
    predictor's metrics name the code that computes them)."""
    import importlib

    from pipeline.report.cache import ChartCache

    (tmp_path / "scoring_rule.py").write_text("FACTOR = 2\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    calls = []

    def scored(x):
        calls.append(x)
        return x * 2

    def value():
        return ChartCache(str(tmp_path / "cache")).value(scored, 3, depends_on=("scoring_rule",))

    assert value() == value() == 6 and calls == [3]
    (tmp_path / "scoring_rule.py").write_text("FACTOR = 3\n")
    assert value() == 6 and calls == [3, 3]
