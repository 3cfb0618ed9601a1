"""The fast path after a partial failure (found by `make soak`): with Cloud Tasks down, a checkout's `pending` payment
document landed, its timeout task did not; the retry sent the whole batch again after the payment's `paid` document
had landed, and the client's app saw its paid payment as pending for good. What landed is marked published; only what
did not is retried."""

from __future__ import annotations

from datetime import UTC, datetime

from shared.domain.events import Committed, DocumentWrite, Event, TaskRequest, TopicMessage
from shared.services import projector
from tests.support.fakes import FakeDatabase, FakeOutbox, fake_ports

AT = datetime(2026, 1, 5, 9, 15, tzinfo=UTC)


def _commit(db: FakeDatabase, *events: Event) -> list[Committed]:
    """Rows committed with a change, as a unit of work hands them to the fast path."""
    outbox = FakeOutbox(db)
    outbox.add(*events)
    return outbox.flush()


def _status(write: object) -> object:
    assert isinstance(write, DocumentWrite)
    return write.data["status"]


def test_a_tasks_outage_retries_only_the_task_and_never_puts_an_older_document_back() -> None:
    db = FakeDatabase()
    ports = fake_ports(db)
    pending = DocumentWrite.at("payments/t-1", {"status": "pending"})
    timeout = TaskRequest("payment-timeouts", "payment-timeout-t-1", "task_payment_timeout", {"id": "t-1"}, AT)
    told = TopicMessage("notify", {"n": 1})
    ports.tasks.refuse = True

    projector.deliver(ports, _commit(db, pending, told, timeout))  # checkout: the timer cannot be created
    projector.deliver(ports, _commit(db, DocumentWrite.at("payments/t-1", {"status": "paid"})))  # the callback
    ports.tasks.refuse = False
    projector.project(ports)  # the sweep, once Cloud Tasks is back

    assert [_status(write) for write in ports.documents.written] == ["pending", "paid"], "pending never again"
    assert len(ports.publisher.published) == 1, "the push went once"
    assert list(ports.tasks.created) == ["payment-timeout-t-1"]
    assert db.pending() == []


def test_rows_that_landed_but_could_not_be_marked_are_retried_as_before() -> None:
    db = FakeDatabase()
    ports = fake_ports(db)
    ports.tasks.refuse = True

    class MarksDown:
        def mark(self, ids: object) -> None:
            raise ConnectionError("the database is unreachable")

    object.__setattr__(ports, "marks", MarksDown())
    committed = _commit(db, DocumentWrite.at("payments/t-2", {"status": "pending"}))

    projector.deliver(ports, committed)

    assert [row.outbox_id for row in db.pending()] == [committed[0].outbox_id], "still owned by the retry path"
