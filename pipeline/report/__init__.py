"""The run report: one self-contained HTML page per run (runs/<name>/report.html) and its model card
(model_card.md beside it, and in the pushed model's assets.extra/). Written at the end of every local run,
failed runs included, and on demand by `tfxp report`. README, "Run report"."""
from __future__ import annotations

import dataclasses
import os
from typing import List, Optional

from config import PipelineConfig, is_remote

MODEL_CARD_FILE = "model_card.md"
CHART_CACHE_DIR = ".report_charts"


@dataclasses.dataclass(frozen=True)
class ReportFiles:
    html: str
    model_card: str
    pushed_model_card: Optional[str]  # in the pushed version's assets.extra/, when this run pushed it


def run_cache(config: PipelineConfig):
    """The cache beside the run's own report (pipeline/report/cache.py): its charts and values, and the
    constant predictor's metrics that the run summary reads too."""
    from pipeline.report.cache import ChartCache

    return ChartCache(os.path.join(os.path.dirname(os.path.abspath(config.report_file)), CHART_CACHE_DIR))


def _write_atomically(path: str, text: str) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    partial = f"{path}.partial"
    with open(partial, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(partial, path)


def write_report(config: PipelineConfig, run_id: Optional[str] = None, output: Optional[str] = None,
                 error: Optional[str] = None, anomalies: Optional[List] = None,
                 run_started: bool = True) -> ReportFiles:
    """Collects the run (default: the latest; run_started=False: a run stopped before any component, by
    `error`) and writes its report and model card."""
    from pipeline.report import model_card
    from pipeline.report.cache import ChartCache
    from pipeline.report.collect import collect, not_started
    from pipeline.report.render import render_html, render_markdown
    from serving.layout import MODEL_CARD

    html_path = os.path.abspath(output or config.report_file)
    # The run's own report keeps its charts and values beside it, for the next run to reuse; `--output`
    # elsewhere does not.
    cache = ChartCache(None) if output else run_cache(config)
    report = collect(config, run_id, error, anomalies, cache) if run_started else not_started(config, error or "")
    card = model_card.build(report)
    _write_atomically(html_path, render_html(report, card, cache))
    markdown = render_markdown(card)
    card_path = os.path.join(os.path.dirname(html_path), MODEL_CARD_FILE)
    _write_atomically(card_path, markdown)
    pushed_card = None
    pushed = report.pushed
    # Only the run that pushed a version writes its card there (a later run that finds it pushed does not).
    if pushed is not None and pushed.pushed and not pushed.already_pushed and pushed.pushed_destination and not \
            is_remote(pushed.pushed_destination) and os.path.isdir(pushed.pushed_destination):
        pushed_card = os.path.join(pushed.pushed_destination, MODEL_CARD)
        _write_atomically(pushed_card, markdown)
    return ReportFiles(html=html_path, model_card=card_path, pushed_model_card=pushed_card)
