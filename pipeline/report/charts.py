"""The report's charts: matplotlib figures rendered to inline SVG (text kept as text, no external fonts or
scripts), small enough that the taxi report stays well under 2 MB; the run's timeline is SVG written here."""
from __future__ import annotations

import html
import io
import math
import re
from typing import Dict, List, Optional, Sequence, Tuple

# One colour per split or model, the same in every chart and in the page's legend.
COLORS = {"train": "#1f6fb2", "eval": "#e07b00", "accepted": "#6b6b6b", "validation": "#e07b00",
          "executed": "#1f6fb2", "cached": "#9bbf85", "failed": "#c0392b", "running": "#c0392b"}
SPLIT_LABELS = {"train": "train", "eval": "eval", "accepted": "last accepted train"}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # constrained layout: one layout pass, where bbox_inches="tight" draws every figure twice
    plt.rcParams.update({"svg.fonttype": "none", "svg.hashsalt": "tfxp", "font.size": 8,
                         "axes.spines.top": False, "axes.spines.right": False, "figure.dpi": 72,
                         "figure.constrained_layout.use": True})
    return plt


def _svg(fig) -> str:
    """The figure as an inline <svg> element (no XML prolog, no DOCTYPE, no metadata)."""
    plt = _pyplot()
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None})
    plt.close(fig)
    text = buffer.getvalue()
    text = text[text.index("<svg"):]
    return re.sub(r"<metadata>.*?</metadata>", "", text, flags=re.S)


def numeric_histogram(splits: Dict[str, List[Tuple[float, float, float]]]) -> str:
    """Share of examples per histogram bucket, one step line per split (TFDV's buckets differ per split), on a
    log scale: taxi fares and trip lengths put nearly everything in the first of TFDV's equal-width buckets,
    and the tails are where drift shows."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(3.4, 1.5))
    for split, buckets in splits.items():
        total = sum(b[2] for b in buckets) or 1.0
        edges = [b[0] for b in buckets] + [buckets[-1][1]]
        shares = [b[2] / total for b in buckets]
        ax.stairs(shares, edges, label=SPLIT_LABELS.get(split, split), color=COLORS.get(split),
                  linewidth=1.4, fill=split == "train", alpha=0.35 if split == "train" else 1.0)
    from matplotlib import ticker

    ax.set_yscale("log")
    ax.yaxis.set_major_locator(ticker.LogLocator(numticks=4))
    ax.yaxis.set_minor_locator(ticker.NullLocator())
    ax.yaxis.set_major_formatter(ticker.FuncFormatter(lambda value, _: f"{value:g}"))  # no mathtext: faster
    ax.xaxis.set_major_locator(ticker.MaxNLocator(5))
    ax.xaxis.set_major_formatter(ticker.FuncFormatter(lambda value, _: f"{value:.4g}"))
    ax.set_ylabel("share (log)")
    ax.legend(frameon=False, fontsize=7)
    return _svg(fig)


def top_values(splits: Dict[str, List[Tuple[str, float]]], counts: Dict[str, int]) -> str:
    """Share of examples per value, for the train split's most frequent values, side by side per split."""
    plt = _pyplot()
    order = [value for value, _ in next(iter(splits.values()))][:8]
    fig, ax = plt.subplots(figsize=(3.4, 0.35 + 0.2 * len(order)))
    height = 0.8 / max(len(splits), 1)
    for i, (split, values) in enumerate(splits.items()):
        share = {value: count / max(counts.get(split, 1), 1) for value, count in values}
        ax.barh([y + i * height for y in range(len(order))], [share.get(v, 0.0) for v in order], height=height,
                color=COLORS.get(split), label=SPLIT_LABELS.get(split, split))
    ax.set_yticks([y + height * (len(splits) - 1) / 2 for y in range(len(order))])
    ax.set_yticklabels([v if len(v) <= 24 else v[:23] + "…" for v in order])
    ax.invert_yaxis()
    ax.set_xlabel("share")
    ax.legend(frameon=False, fontsize=7)
    return _svg(fig)


def curves(tag: str, phases: Dict[str, List[Tuple[int, float]]]) -> str:
    """A training curve: points per logged step (a single point is drawn as a marker)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(3.4, 1.7))
    for phase, points in phases.items():
        steps, values = zip(*points)
        ax.plot(steps, values, marker="o" if len(points) < 3 else None, markersize=4, linewidth=1.4,
                color=COLORS.get(phase), label=phase)
    ax.set_title(tag, fontsize=8)
    ax.set_xlabel("step")
    ax.legend(frameon=False, fontsize=7)
    return _svg(fig)


def _tick_step(span: float, most: int = 6) -> float:
    """The smallest 1, 2 or 5 x 10^k step that cuts [0, span] into at most `most` intervals."""
    step = 10.0 ** math.floor(math.log10(max(span, 1e-9) / most))
    while True:
        for factor in (1, 2, 5):
            if span / (step * factor) <= most:
                return step * factor
        step *= 10


def timeline(rows: Sequence[Tuple[str, float, float, str]]) -> str:
    """One bar per step: (name, start offset in s, seconds, state). Written as SVG directly, not through
    matplotlib: the timeline changes with every run, so it is the one chart a cached re-run draws, and
    matplotlib's import and layout cost ~0.5 s of a ~7 s cached re-run."""
    width, row_height, font = 504, 16, 8
    label_width = 8 + int(0.6 * font * max((len(r[0]) for r in rows), default=1))
    top, axis_height = 6, 30
    plot_left, plot_width = label_width, width - label_width - 12
    end = max((start + max(seconds, 0.05) for _, start, seconds, _ in rows), default=1.0)
    step = _tick_step(end)
    span = step * math.ceil(end / step)
    x = lambda seconds: plot_left + plot_width * seconds / span  # noqa: E731
    bottom = top + row_height * len(rows)
    text = f'font-family="DejaVu Sans, sans-serif" font-size="{font}"'
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{bottom + axis_height}" '
           f'viewBox="0 0 {width} {bottom + axis_height}" class="timeline">']
    for i, (name, start, seconds, state) in enumerate(rows):
        y = top + i * row_height
        out.append(f'<rect x="{x(start):.1f}" y="{y + 3}" width="{max(x(start + max(seconds, 0.05)) - x(start), 1):.1f}" '
                   f'height="{row_height - 6}" fill="{COLORS.get(state, "#999999")}"><title>{html.escape(name)}: '
                   f'{state}, {seconds:.2f} s</title></rect>')
        out.append(f'<text x="{plot_left - 4}" y="{y + row_height / 2 + 3:.1f}" text-anchor="end" {text}>'
                   f'{html.escape(name)}</text>')
    out.append(f'<line x1="{plot_left}" y1="{bottom}" x2="{plot_left + plot_width}" y2="{bottom}" stroke="#000000" '
               f'stroke-width="0.8"/>')
    out.append(f'<line x1="{plot_left}" y1="{top}" x2="{plot_left}" y2="{bottom}" stroke="#000000" stroke-width="0.8"/>')
    for k in range(int(round(span / step)) + 1):
        tick = k * step
        out.append(f'<line x1="{x(tick):.1f}" y1="{bottom}" x2="{x(tick):.1f}" y2="{bottom + 3}" stroke="#000000" '
                   f'stroke-width="0.8"/><text x="{x(tick):.1f}" y="{bottom + 12}" text-anchor="middle" {text}>'
                   f'{tick:g}</text>')
    out.append(f'<text x="{plot_left + plot_width / 2:.1f}" y="{bottom + 25}" text-anchor="middle" {text}>'
               'seconds since the run started</text></svg>')
    return "".join(out)


def latency(intervals: Dict[str, Dict[str, float]], threshold: Optional[float]) -> str:
    """The latency gate: per batch size, the median paired ratio with its interval, and the threshold."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(3.4, 0.4 + 0.3 * len(intervals)))
    for i, (batch, interval) in enumerate(intervals.items()):
        ax.errorbar(interval["ratio"], i, xerr=[[interval["ratio"] - interval["low"]],
                                                [interval["high"] - interval["ratio"]]],
                    fmt="o", color=COLORS["train"], capsize=3)
    if threshold is not None:
        ax.axvline(threshold, color=COLORS["failed"], linestyle="--", linewidth=1)
    ax.axvline(1.0, color="#999999", linewidth=0.8)
    ax.set_yticks(range(len(intervals)))
    ax.set_yticklabels([f"batch {b}" for b in intervals])
    ax.set_xlabel("quantized / float time")
    return _svg(fig)
