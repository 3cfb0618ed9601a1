"""Counted operations for the cost model (`bench/cost.py`), off unless `HALO_METER_DIR` is set.

With it set (only ever by the bench, on its local stack), each process appends one line `<kind> <count>` per counted
operation to a file of its own in that folder: Firestore document writes/deletes/reads at the Firestore adapter,
Pub/Sub messages at the publisher, Cloud Tasks created at the scheduler, FCM sends at the sender, and each function's
invocations and CPU milliseconds at `main`. Unset (production, tests), `count` returns at once.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import IO

_DIR = os.environ.get("HALO_METER_DIR")
_lock = threading.Lock()
_open: list[IO[str]] = []  # this process's file, once opened


def enabled() -> bool:
    return _DIR is not None


def count(kind: str, n: float = 1) -> None:
    """Add `n` to `kind`'s count (one line in this process's file)."""
    if _DIR is None or not n:
        return
    with _lock:
        if not _open:
            _open.append((Path(_DIR) / f"{os.getpid()}.meter").open("a", buffering=1))
        _open[0].write(f"{kind} {n}\n")


def totals(folder: Path) -> dict[str, float]:
    """Every process's counts in `folder`, summed by kind."""
    summed: dict[str, float] = {}
    for path in folder.glob("*.meter"):
        for line in path.read_text().splitlines():
            kind, _, value = line.rpartition(" ")
            if kind:
                summed[kind] = summed.get(kind, 0.0) + float(value)
    return summed
