"""Group commit: concurrent callers' small units of work share one round trip.

One group runs at a time; the units that arrive while it runs go together in the next. Alone, a unit runs at once;
under load an instance makes one call for many requests instead of one each. Every caller waits for its own unit,
and a failed group fails every unit it carried (each caller then takes its own way out, e.g. the outbox retry).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

Unit = TypeVar("Unit")


@dataclass
class _Waiting(Generic[Unit]):
    unit: Unit
    done: bool = False
    error: Exception | None = None


class GroupCommit(Generic[Unit]):
    """`run` does one group's work; `take` says how many of the waiting units, from the oldest, the next group takes
    (at least one is always taken; by default, all)."""

    def __init__(self, run: Callable[[list[Unit]], None], take: Callable[[Sequence[Unit]], int] | None = None) -> None:
        self._run = run
        self._take = take or len
        self._queue: list[_Waiting[Unit]] = []
        self._queue_lock = threading.Lock()
        self._running = threading.Lock()

    def submit(self, unit: Unit) -> None:
        """Returns once a group carrying `unit` has run; raises that group's error."""
        mine = _Waiting(unit)
        with self._queue_lock:
            self._queue.append(mine)
        with self._running:
            while not mine.done:  # nobody took it along: run a group, with whatever waits before and beside it
                self._run_group()
        if mine.error is not None:
            raise mine.error

    def _run_group(self) -> None:
        with self._queue_lock:
            count = max(1, self._take([waiting.unit for waiting in self._queue]))
            group, self._queue = self._queue[:count], self._queue[count:]
        try:
            self._run([waiting.unit for waiting in group])
        except Exception as exc:
            for waiting in group:
                waiting.error = exc
        finally:
            for waiting in group:
                waiting.done = True

    def waiting(self) -> int:
        """Units queued for the next group (for tests)."""
        with self._queue_lock:
            return len(self._queue)

    def busy(self) -> bool:
        """A group is running (for tests)."""
        return self._running.locked()
