"""The report's HTML and the model card's Markdown, through Jinja2 templates (pipeline/report/templates/).
The page is one file: styles inline, charts inline SVG, no script, no font or image fetched."""
from __future__ import annotations

import datetime
import math
from typing import Dict, List, Optional, Tuple

from pipeline.report import charts
from pipeline.report.cache import ChartCache
from pipeline.report.records import RunReport
from pipeline.report.model_card import ModelCard

MAX_SLICES = 30  # rows of the slices table; the rest are counted


def _environment(html: bool):
    """The templates' environment: the HTML report's (autoescaped) or the model card's (Markdown, as
    written). Compiled templates are kept in jinja2's bytecode cache (a directory of
    this user's in the temporary directory, each entry checked against the template's source): compiling
    the report's template took ~0.08 s of every run."""
    import jinja2

    options = (dict(autoescape=jinja2.select_autoescape(["html", "j2"]), trim_blocks=False) if html
               else dict(autoescape=False, keep_trailing_newline=True))
    return jinja2.Environment(loader=jinja2.PackageLoader("pipeline.report", "templates"),
                              undefined=jinja2.StrictUndefined, bytecode_cache=jinja2.FileSystemBytecodeCache(),
                              **options)


def _num(value: Optional[float]) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.4g}"


def _pct(value: Optional[float]) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def feature_charts(report: RunReport, cache: ChartCache) -> Dict[str, str]:
    out = {}
    for feature in report.features:
        splits = {s: feature.splits[s] for s in ("train", "eval", "accepted") if s in feature.splits}
        if not splits:
            continue
        if next(iter(splits.values())).kind == "numeric":
            with_buckets = {s: v.buckets for s, v in splits.items() if v.buckets}
            out[feature.name] = cache.draw(charts.numeric_histogram, with_buckets) if with_buckets else ""
        else:
            with_values = {s: v.top_values for s, v in splits.items() if v.top_values}
            out[feature.name] = (cache.draw(charts.top_values, with_values, {s: v.count for s, v in splits.items()})
                                 if with_values else "")
    return out


def curve_charts(report: RunReport, cache: ChartCache) -> List[str]:
    """Per-step curves (Keras' batch_* tags) with the epoch-end validation value as a marker."""
    if report.training is None:
        return []
    curves = report.training.curves
    out = []
    for tag in sorted(curves):
        if not tag.startswith("batch_"):
            continue
        name = tag[len("batch_"):]
        phases = dict(curves[tag])
        validation = curves.get(f"epoch_{name}", {}).get("validation")
        if validation:
            last_step = phases.get("train", [(0, 0.0)])[-1][0]
            phases["validation"] = [(last_step, value) for _, value in validation]
        out.append(cache.draw(charts.curves, name, phases))
    return out


def gate_rows(report: RunReport) -> List[Tuple[str, Optional[float], str]]:
    """(gate, threshold, the failure line or "") for every gate of the config."""
    failures = report.pushed.quantization_gate_failures if report.pushed else []
    rows = []
    for name, threshold in report.config.quantization.gates:
        failed = next((f for f in failures if name in f), "")
        rows.append((name, threshold, failed))
    return rows


def render_html(report: RunReport, card: ModelCard, cache: Optional[ChartCache] = None) -> str:
    """The report page; `cache` (its charts) is pruned to what this page used."""
    started = (datetime.datetime.fromtimestamp(report.started, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
               if report.started else "-")
    timeline = ""
    if report.steps:
        rows = [(s.node, s.started - report.started, s.seconds, s.state) for s in report.steps]
        timeline = charts.timeline(rows)  # changes with every run
    latency_chart = ""
    cache = cache or ChartCache(None)
    if report.pushed and report.pushed.quantization_results.get("latency_interval"):
        threshold = dict(report.config.quantization.gates).get("max_latency_ratio")
        latency_chart = cache.draw(charts.latency, report.pushed.quantization_results["latency_interval"], threshold)
    features, curves = feature_charts(report, cache), curve_charts(report, cache)
    cache.prune()
    template = _environment(html=True).get_template("report.html.j2")
    return template.render(r=report, card=card, started=started, timeline=timeline,
                           feature_charts=features, curve_charts=curves,
                           latency_chart=latency_chart, gates=gate_rows(report), num=_num, pct=_pct,
                           max_slices=MAX_SLICES)


def render_markdown(card: ModelCard) -> str:
    return _environment(html=False).get_template("model_card.md.j2").render(c=card)
