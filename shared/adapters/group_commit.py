"""Group commit: concurrent callers' small units of work share one round trip.

One group runs at a time; the units that arrive while it runs go together in the next. Alone, a unit runs at once;
under load an instance makes one call for many requests instead of one each. Every caller waits for its own unit,
and a failed group fails every unit it carried (each caller then takes its own way out, e.g. the outbox retry).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

Unit = TypeVar("Unit")


@dataclass
class _Waiting(Generic[Unit]):
    unit: Unit
    # Set once: when the unit's group has run, or when this caller is to lead the next group.
    woken: threading.Event = field(default_factory=threading.Event)
    done: bool = False
    error: Exception | None = None


class GroupCommit(Generic[Unit]):
    """`run` does one group's work; `take` says how many of the waiting units, from the oldest, the next group takes
    (at least one is always taken; by default, all).

    The caller that finds no group running leads: it runs the next group (its own unit is the oldest), wakes the
    callers whose units that group carried, and hands the lead to the oldest caller still waiting. Every caller is
    woken once, by the group that carried its unit or to lead."""

    def __init__(self, run: Callable[[list[Unit]], None], take: Callable[[Sequence[Unit]], int] | None = None) -> None:
        self._run = run
        self._take = take or len
        self._queue: list[_Waiting[Unit]] = []
        self._lock = threading.Lock()
        self._leading = False  # a caller is running a group or has been handed the lead; never with an empty queue

    def submit(self, unit: Unit) -> None:
        """Returns once a group carrying `unit` has run; raises that group's error."""
        mine = _Waiting(unit)
        with self._lock:
            self._queue.append(mine)
            lead = not self._leading
            self._leading = True
        if not lead:
            mine.woken.wait()
        if not mine.done:  # leading: this caller's unit is the oldest waiting, so the group carries it
            self._run_group()
        if mine.error is not None:
            raise mine.error

    def _run_group(self) -> None:
        with self._lock:
            count = max(1, self._take([waiting.unit for waiting in self._queue]))
            group, self._queue = self._queue[:count], self._queue[count:]
        try:
            self._run([waiting.unit for waiting in group])
        except BaseException as exc:
            failure = exc if isinstance(exc, Exception) else RuntimeError("the group's run was interrupted")
            for waiting in group:
                waiting.error = failure
            if failure is not exc:
                raise
        finally:
            with self._lock:
                if self._queue:  # the lead passes on first: the next group starts before these callers go on
                    self._queue[0].woken.set()
                else:
                    self._leading = False
            for waiting in group:
                waiting.done = True
                waiting.woken.set()

    def waiting(self) -> int:
        """Units queued for the next group (for tests)."""
        with self._lock:
            return len(self._queue)

    def busy(self) -> bool:
        """A group is running or about to (for tests)."""
        with self._lock:
            return self._leading
