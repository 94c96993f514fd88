"""How long lists are cut in messages: the first MAX_LISTED items, then "and N more"."""
from __future__ import annotations

from typing import Iterable

MAX_LISTED = 10


def listed(items: Iterable, limit: int = MAX_LISTED) -> str:
    """'a, b, c'; with more than `limit` items, the first `limit` and then ' and N more'."""
    names = [str(item) for item in items]
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more
