"""Benchmarks: figures printed side by side with their baselines, never asserted.

Each module here (not starting with `_`) exposes `run() -> str`, which measures and returns its report;
`python -m bench` runs them all, `python -m bench NAME ...` only the named ones.
"""
