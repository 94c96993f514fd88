"""Issue 11's goals judged from one bench run: bench/scale's results, bench/pipeline's report (fixed cost
against the official example, cached re-runs) and bench/floors' report (pyarrow/numpy floors), all three
made by one `python -m bench.scale.run --goals` (README, "Performance").

Each goal is a Goal record: what it asks, what this run measured, and whether this run met it. A goal whose
measurement is not in the run (10M rows not asked for, a bench not run) is reported as not measured, never as
met.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Dict, List, Optional

# The targets, as issue 11 states them.
MAX_1M_SECONDS = 180.0
ONE_MILLION = 1_000_000
TEN_MILLION = 10_000_000
MAX_10M_PEAK_RSS_MB = 4 * 1024
MIN_SPEEDUP_VS_STOCK = 10.0
MAX_OVER_FLOOR = 10.0
MAX_FIXED_COST_RATIO = 0.4
MAX_RERUN_SHARE = 0.15
# The data-proportional steps compared with the stock components (bench/scale's PER_ROW_STEPS).
STOCK_STEPS = ("CsvExampleGen", "StatisticsGen", "Transform", "Evaluator")
# Each step's floor in bench/floors' report: (the step's seconds there, or None for the step's seconds in
# bench/scale's 1M run of the variant; the floor's name). ExampleGen's floor is the parse of the same
# generated table (bench/scale and bench/floors generate it with the same seed).
FLOORS = {"CsvExampleGen": (None, "pyarrow_csv_parse"),
          "StatisticsGen": ("statistics_gen_parquet", "pyarrow_csv_statistics"),
          "Transform": ("transform_parquet", "pyarrow_csv_analyzers")}
# The variant whose steps the ratio goals are judged on: the Parquet payload (data.payload: parquet), tfxp's
# columnar path; the tf.Example payload's ratios are reported beside it.
JUDGED_VARIANT = "parquet"


@dataclasses.dataclass(frozen=True)
class Goal:
    goal: str
    measured: str
    met: Optional[bool]  # None: not measured in this run


def by_size(results: List[Dict[str, Any]]) -> Dict[int, Dict[str, Dict[str, Any]]]:
    """bench/scale's results as {rows: {variant: result}}."""
    out: Dict[int, Dict[str, Dict[str, Any]]] = {}
    for result in results:
        out.setdefault(result["rows"], {})[result["variant"]] = result
    return out


def _by_size(scale: Dict[str, Any]) -> Dict[int, Dict[str, Dict[str, Any]]]:
    return by_size(scale.get("results", []))


def _wall(result: Dict[str, Any]) -> str:
    return f"{result['variant']} {result['wall_seconds']:.1f} s" + ("" if result["pushed"] else " (pushed nothing)")


def end_to_end(scale: Dict[str, Any]) -> Goal:
    runs = [r for r in _by_size(scale).get(ONE_MILLION, {}).values() if r["variant"] != "stock"]
    goal = f"1M rows end to end in at most {MAX_1M_SECONDS:.0f} s, a model pushed"
    if not runs:
        return Goal(goal, "no 1M run", None)
    met = any(r["wall_seconds"] <= MAX_1M_SECONDS and r["pushed"] for r in runs)
    return Goal(goal, "; ".join(_wall(r) for r in runs), met)


def ten_million(scale: Dict[str, Any]) -> Goal:
    runs = [r for r in _by_size(scale).get(TEN_MILLION, {}).values() if r["variant"] != "stock"]
    goal = f"10M rows complete with peak RSS at most {MAX_10M_PEAK_RSS_MB:,} MB"
    if not runs:
        return Goal(goal, "not run (opt-in: --sizes ... 10000000)", None)
    met = any(r["pushed"] and r["peak_rss_mb"] <= MAX_10M_PEAK_RSS_MB for r in runs)
    return Goal(goal, "; ".join(f"{_wall(r)}, {r['peak_rss_mb']:,} MB" for r in runs), met)


def stock_speedups(scale: Dict[str, Any]) -> List[Goal]:
    """Per step, at each size run with stock: stock seconds / the judged variant's (the other variants
    reported beside it)."""
    goals = []
    for rows, by_variant in sorted(scale.get("speedup_vs_stock", {}).items(), key=lambda kv: int(kv[0])):
        sizes = _by_size(scale)[int(rows)]
        stock = sizes["stock"]["component_seconds"]
        for step in STOCK_STEPS:
            goal = f"{step} at {int(rows):,} rows at least {MIN_SPEEDUP_VS_STOCK:.0f}x the stock step"
            judged = by_variant.get(JUDGED_VARIANT, {}).get(step)
            parts = [f"{variant} {ratios[step]}x ({sizes[variant]['component_seconds'][step]:.1f} s)"
                     for variant, ratios in sorted(by_variant.items()) if step in ratios]
            measured = f"stock {stock.get(step, 0):.1f} s; " + ", ".join(parts) if parts else "not run"
            goals.append(Goal(goal, measured, None if judged is None else judged >= MIN_SPEEDUP_VS_STOCK))
    if not goals:
        goals.append(Goal(f"each data-proportional step at least {MIN_SPEEDUP_VS_STOCK:.0f}x the stock step",
                          "no size run with stock (--stock-at)", None))
    return goals


def floor_ratios(scale: Dict[str, Any], floors: Optional[Dict[str, Any]]) -> List[Goal]:
    goals = []
    for step, (seconds_key, floor_key) in FLOORS.items():
        goal = f"{step} within {MAX_OVER_FLOOR:.0f}x of its pyarrow/numpy floor ({floor_key})"
        if not floors:
            goals.append(Goal(goal, "bench/floors not run", None))
            continue
        floor = floors["seconds"].get(floor_key)
        if seconds_key is None:
            run = _by_size(scale).get(floors["rows"], {}).get(JUDGED_VARIANT)
            seconds = run["component_seconds"].get(step) if run else None
            where = f"bench/scale's {floors['rows']:,}-row {JUDGED_VARIANT} run"
        else:
            seconds = floors["seconds"].get(seconds_key)
            where = f"bench/floors' {seconds_key}, {floors['rows']:,} rows"
        if not seconds or not floor:
            goals.append(Goal(goal, f"not measured ({where})", None))
            continue
        ratio = seconds / floor
        goals.append(Goal(goal, f"{ratio:.2f}x: {seconds:.2f} s ({where}) against {floor:.2f} s",
                          ratio <= MAX_OVER_FLOOR))
    return goals


def fixed_cost(pipeline: Optional[Dict[str, Any]]) -> List[Goal]:
    ratio_goal = f"default run at most {MAX_FIXED_COST_RATIO}x the official example's wall time"
    rerun_goal = (f"cached re-runs at most {MAX_RERUN_SHARE:.0%} of the first run, nothing re-evaluated "
                  f"against the same baseline")
    if not pipeline:
        return [Goal(ratio_goal, "bench/pipeline not run", None), Goal(rerun_goal, "bench/pipeline not run", None)]
    tfxp = pipeline["tfxp"]
    goals = []
    ratio = pipeline.get("ratio_tfxp_to_official_wall")
    if ratio is None:
        goals.append(Goal(ratio_goal, "the official example not run", None))
    else:
        goals.append(Goal(ratio_goal, f"{ratio:.3f}: tfxp {tfxp['full']['wall_seconds']:.1f} s, official "
                                      f"{pipeline['official']['wall_seconds']:.1f} s", ratio <= MAX_FIXED_COST_RATIO))
    reruns = [tfxp[key] for key in ("cached_rerun", "second_rerun")]
    evaluated = [run for run in reruns if "Evaluator" not in run["cached_components"]]
    measured = ", ".join(f"{run['wall_seconds']:.2f} s ({run['share_of_full']:.1%})" for run in reruns)
    if evaluated:
        measured += f"; the Evaluator ran again in {len(evaluated)} of them"
    goals.append(Goal(rerun_goal, f"{measured} of {tfxp['full']['wall_seconds']:.1f} s",
                      all(run["share_of_full"] <= MAX_RERUN_SHARE for run in reruns) and not evaluated))
    return goals


def issue11_goals(scale: Dict[str, Any], pipeline: Optional[Dict[str, Any]] = None,
                  floors: Optional[Dict[str, Any]] = None) -> List[Goal]:
    return [end_to_end(scale), ten_million(scale), *stock_speedups(scale), *floor_ratios(scale, floors),
            *fixed_cost(pipeline)]


def goals_table(goals: List[Goal]) -> str:
    verdict = {True: "met", False: "**not met**", None: "not measured"}
    lines = ["| goal | measured in this bench run | status |", "| --- | --- | --- |"]
    lines += [f"| {g.goal} | {g.measured} | {verdict[g.met]} |" for g in goals]
    return "\n".join(lines)
