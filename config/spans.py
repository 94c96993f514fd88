"""Spans: data that arrives over time under an input pattern, the way TFX ExampleGen reads it.

A pattern relative to `data.path` holds `{SPAN}` (a number) or the date specs `{YYYY}`, `{MM}`, `{DD}`
(a dated span: TFX numbers it as days since 1970-01-01), e.g. `span-{SPAN}/*.csv` or
`{YYYY}-{MM}-{DD}/*.csv`. ExampleGen ingests the latest span on each run; the pipeline trains on a rolling
window of the latest spans. Plain Python: the config check, the pre-flight pass and the scheduler use it
without importing TFX.
"""
from __future__ import annotations

import datetime
import glob
import os
import re
from typing import Dict, List, Optional

SPAN_SPEC, DATE_SPECS = "{SPAN}", ("{YYYY}", "{MM}", "{DD}")
_SPEC_REGEX = {"{SPAN}": r"(?P<span>\d+)", "{YYYY}": r"(?P<year>\d{4})", "{MM}": r"(?P<month>\d{2})",
               "{DD}": r"(?P<day>\d{2})"}
_EPOCH = datetime.date(1970, 1, 1)


def check_pattern(pattern: str) -> Optional[str]:
    """None if the pattern is usable, else what is wrong with it."""
    has_span, dates = SPAN_SPEC in pattern, [spec for spec in DATE_SPECS if spec in pattern]
    if has_span and dates:
        return "use either {SPAN} or the date specs {YYYY}, {MM}, {DD}, not both"
    if dates and len(dates) != 3:
        return "a dated span needs all of {YYYY}, {MM} and {DD}"
    if not has_span and not dates:
        return "must hold {SPAN} or {YYYY}-{MM}-{DD}: the pipeline trains on spans"
    if any(pattern.count(spec) > 1 for spec in (SPAN_SPEC,) + DATE_SPECS):
        return "each of {SPAN}, {YYYY}, {MM}, {DD} may appear once"
    return None


def _glob_and_regex(pattern: str):
    glob_pattern, regex = pattern, re.escape(pattern)
    for spec, group in _SPEC_REGEX.items():
        glob_pattern = glob_pattern.replace(spec, "*")
        regex = regex.replace(re.escape(spec), group)
    # fnmatch wildcards of the rest of the pattern
    regex = regex.replace(r"\*", "[^/]*").replace(r"\?", "[^/]")
    return glob_pattern, re.compile(f"^{regex}$")


def files_glob(pattern: str) -> str:
    """A glob (relative to data.path) matching the files of every span."""
    return _glob_and_regex(pattern)[0]


def date_to_span(year: int, month: int, day: int) -> int:
    return (datetime.date(year, month, day) - _EPOCH).days


def list_spans(base_dir: str, pattern: str) -> Dict[int, List[str]]:
    """span number -> the data files of that span (sorted)."""
    glob_pattern, regex = _glob_and_regex(pattern)
    spans: Dict[int, List[str]] = {}
    for path in glob.glob(os.path.join(base_dir, glob_pattern)):
        if not os.path.isfile(path):
            continue
        match = regex.match(os.path.relpath(path, base_dir))
        if not match:
            continue
        groups = match.groupdict()
        span = (int(groups["span"]) if "span" in groups
                else date_to_span(int(groups["year"]), int(groups["month"]), int(groups["day"])))
        spans.setdefault(span, []).append(path)
    return {span: sorted(files) for span, files in sorted(spans.items())}

