"""Quantizing pusher: component.py (spec + component), executor.py, and the plain functions it uses
(quantize.py, gates.py, push.py)."""
