"""The scheduled sweep stays while rows fail (found by `make soak`): timers held back by a Cloud Tasks outage were
created at the next scheduled sweep and sessions ended seconds late, in production up to a minute. A sweep that finds
timer rows failing tries them again every few seconds, so they are created within seconds of Cloud Tasks coming
back; with nothing failing, it leaves at once."""

from __future__ import annotations

from datetime import UTC, datetime

from shared.domain.events import DocumentWrite, TaskRequest
from shared.services import projector
from tests.support.fakes import FakeDatabase, FakeOutbox, FakePorts, fake_ports

AT = datetime(2026, 1, 5, 9, 30, tzinfo=UTC)


class Clock:
    """Monotonic time that passes only when the sweep pauses (and moves the fake database's clock with it)."""

    def __init__(self, db: FakeDatabase, ports: FakePorts, *, tasks_back_after_s: float | None) -> None:
        self.db, self.ports, self.t = db, ports, 0.0
        self.tasks_back_after_s = tasks_back_after_s
        self.pauses: list[float] = []

    def now(self) -> float:
        return self.t

    def pause(self, seconds: float) -> None:
        self.pauses.append(seconds)
        self.t += seconds
        self.db.tick(seconds)
        if self.tasks_back_after_s is not None and self.t >= self.tasks_back_after_s:
            self.ports.tasks.refuse = False


def _record(db: FakeDatabase, *events: object) -> None:
    outbox = FakeOutbox(db)
    outbox.add(*events)  # type: ignore[arg-type]
    outbox.flush()


def _expiry(session: str) -> TaskRequest:
    return TaskRequest("session-timers", f"session-expire-{session}", "task_session_expire", {"s": session}, AT)


def test_a_sweep_stays_while_cloud_tasks_is_down_and_creates_the_timers_soon_after_it_is_back() -> None:
    db = FakeDatabase()
    ports = fake_ports(db)
    ports.tasks.refuse = True
    _record(db, _expiry("a"), _expiry("b"), DocumentWrite.at("sessions/a", {"status": "active"}))
    clock = Clock(db, ports, tasks_back_after_s=9)

    swept = projector.sweep(ports, budget_s=45, stay_s=45, pause=clock.pause, clock=clock.now)

    assert sorted(ports.tasks.created) == ["session-expire-a", "session-expire-b"]
    assert swept.failing == 0 and swept.published == 3
    # Tried again every SWEEP_RETRY_S; the timers were created at the first try after Cloud Tasks came back.
    assert set(clock.pauses) == {projector.SWEEP_RETRY_S}
    assert 9 <= clock.t < 9 + projector.SWEEP_RETRY_S + 1
    assert db.pending() == []


def test_a_sweep_leaves_when_its_stay_is_over_and_the_rows_wait_for_the_next() -> None:
    db = FakeDatabase()
    ports = fake_ports(db)
    ports.tasks.refuse = True
    _record(db, _expiry("c"))
    clock = Clock(db, ports, tasks_back_after_s=None)

    swept = projector.sweep(ports, budget_s=45, stay_s=5, pause=clock.pause, clock=clock.now)

    assert swept.failing == 1 and swept.published == 0
    assert clock.t <= 5
    assert len(db.pending()) == 1, "the row is kept for the next sweep"


def test_with_nothing_failing_a_sweep_publishes_and_leaves_without_pausing() -> None:
    db = FakeDatabase()
    ports = fake_ports(db)
    _record(db, _expiry("d"), DocumentWrite.at("sessions/d", {"status": "active"}))
    clock = Clock(db, ports, tasks_back_after_s=None)

    swept = projector.sweep(ports, budget_s=45, stay_s=45, pause=clock.pause, clock=clock.now)

    assert (swept.published, swept.failing, clock.pauses) == (2, 0, [])


def test_a_document_failing_for_long_backs_off_and_does_not_keep_the_sweep() -> None:
    """Only rows due again soon keep a sweep: a document write failing for minutes backs off past its stay."""
    db = FakeDatabase()
    ports = fake_ports(db)
    ports.documents.refuse = True
    _record(db, DocumentWrite.at("sessions/e", {"status": "active"}))
    for _ in range(5):  # earlier sweeps failed it five times: the next failure backs it off 32 s
        projector.project(ports)
        db.tick(20)
    clock = Clock(db, ports, tasks_back_after_s=None)

    swept = projector.sweep(ports, budget_s=45, stay_s=45, pause=clock.pause, clock=clock.now)

    assert clock.t <= projector.SWEEP_RETRY_S, "one try, its backoff past the next, and the sweep leaves"
    assert swept.published == 0
