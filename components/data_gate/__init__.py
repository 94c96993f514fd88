"""Data gate: blocks a run before Transform when the data breaks the (frozen) schema, the config's needs,
or the drift/skew thresholds. component.py (spec + component), executor.py, checks.py (plain checks) and
freeze.py (`tfxp schema freeze`)."""
