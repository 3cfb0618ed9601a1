"""Group commit on its own: who runs which group, what each caller learns, and that the lead always passes on."""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from shared.adapters.group_commit import GroupCommit


class Recorder:
    """A `run` that records each group, can hold the first one until released, and fails groups carrying 'bad'."""

    def __init__(self) -> None:
        self.groups: list[list[str]] = []
        self.entered = threading.Event()
        self.release = threading.Event()
        self.release.set()

    def __call__(self, units: list[str]) -> None:
        self.groups.append(list(units))
        self.entered.set()
        assert self.release.wait(10)
        if "bad" in units:
            raise ValueError("refused")


def _submit_all(commit: GroupCommit[str], units: list[str], outcomes: dict[str, str]) -> list[threading.Thread]:
    def submit(unit: str) -> None:
        try:
            commit.submit(unit)
            outcomes[unit] = "ok"
        except Exception as exc:
            outcomes[unit] = type(exc).__name__

    threads = [threading.Thread(target=submit, args=(unit,)) for unit in units]
    for thread in threads:
        thread.start()
    return threads


def _until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 5
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.001)


def _held(recorder: Recorder, commit: GroupCommit[str], outcomes: dict[str, str]) -> list[threading.Thread]:
    """A first unit whose group is held running."""
    recorder.release.clear()
    first = _submit_all(commit, ["first"], outcomes)
    assert recorder.entered.wait(5)
    return first


def test_a_lone_unit_runs_at_once_on_the_callers_thread() -> None:
    ran_on: list[Any] = []
    commit: GroupCommit[int] = GroupCommit(lambda units: ran_on.append((units, threading.current_thread())))

    commit.submit(7)

    assert ran_on == [([7], threading.current_thread())]
    assert not commit.busy() and commit.waiting() == 0


def test_units_arriving_while_a_group_runs_go_together_in_the_next() -> None:
    recorder, outcomes = Recorder(), dict[str, str]()
    commit: GroupCommit[str] = GroupCommit(recorder)
    first = _held(recorder, commit, outcomes)
    later = _submit_all(commit, [f"u{n}" for n in range(6)], outcomes)
    _until(lambda: commit.waiting() == 6)

    recorder.release.set()
    for thread in [*first, *later]:
        thread.join(5)

    assert recorder.groups[0] == ["first"]
    assert sorted(recorder.groups[1]) == [f"u{n}" for n in range(6)] and len(recorder.groups) == 2
    assert set(outcomes.values()) == {"ok"} and len(outcomes) == 7
    assert not commit.busy()


def test_a_failed_group_fails_exactly_its_callers() -> None:
    recorder, outcomes = Recorder(), dict[str, str]()
    commit: GroupCommit[str] = GroupCommit(recorder, take=lambda units: 2)  # groups of two, oldest first
    first = _held(recorder, commit, outcomes)
    later: list[threading.Thread] = []
    for queued, unit in enumerate(["a", "bad", "c", "d"], start=1):  # in this order: groups [a, bad], [c, d]
        later += _submit_all(commit, [unit], outcomes)
        _until(functools.partial(lambda n: commit.waiting() == n, queued))

    recorder.release.set()
    for thread in [*first, *later]:
        thread.join(5)

    assert recorder.groups == [["first"], ["a", "bad"], ["c", "d"]]
    assert outcomes == {"first": "ok", "a": "ValueError", "bad": "ValueError", "c": "ok", "d": "ok"}
    assert not commit.busy() and commit.waiting() == 0


@pytest.mark.parametrize("group_size", [1, 3, 1000])
def test_under_load_every_unit_runs_once_and_the_lead_always_passes_on(group_size: int) -> None:
    seen: list[int] = []
    lock = threading.Lock()

    def run(units: list[int]) -> None:
        time.sleep(0.0005)
        with lock:
            seen.extend(units)

    commit: GroupCommit[int] = GroupCommit(run, take=lambda units: min(len(units), group_size))

    def sender(base: int) -> None:
        for n in range(50):
            commit.submit(base * 100 + n)

    threads = [threading.Thread(target=sender, args=(base,)) for base in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert sorted(seen) == sorted(base * 100 + n for base in range(16) for n in range(50))
    assert not commit.busy() and commit.waiting() == 0
