"""An admin ends a session, as stories on the in-memory unit of work (tests/support/fakes.py): with the goodbye
window or at once, the unused paid time credited back, a repeat answered as the first time, the session's timers
stale afterwards. The same on PostgreSQL, Firestore and FCM: tests/e2e/test_admin_end.py."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from shared.domain.events import DocumentWrite
from shared.domain.idempotency import KeyedCall
from shared.errors import Conflict, NotFound
from shared.services import admin_sessions, lifecycle, pricing
from tests.support.fake_accounts import add_client
from tests.support.fake_chat import add_session
from tests.support.fake_credits import add_paid_transaction
from tests.support.fake_pairing import add_mitra
from tests.support.fakes import FakeDatabase, FakePorts, fake_ports

ADMIN = "uid-admin"
SESSION = "5e551011-0000-4000-8000-0000000000e1"
REQUEST = "5e551011-0000-4000-8000-0000000000f1"
PAYMENT = "5e551011-0000-4000-8000-0000000000a1"


@pytest.fixture
def db() -> FakeDatabase:
    database = FakeDatabase()
    client = add_client(database, "c1", firebase_uid="uid-client")
    mitra = database.table("mitras")[add_mitra(database, name="Mitra")]
    add_paid_transaction(database, PAYMENT, client_id="c1", tier_id="sesi-30", duration_s=1800, amount=36000)
    database.table("customer_transactions")[PAYMENT]["purpose"] = "session"
    database.table("pairing_requests")[REQUEST] = {"id": REQUEST, "transaction_id": PAYMENT}
    add_session(database, SESSION, client=client, mitra=mitra, minutes=30, request_id=REQUEST)
    return database


@pytest.fixture
def ports(db: FakeDatabase) -> FakePorts:
    return fake_ports(db)


def _end(ports: FakePorts, *, goodbye: bool, credit_unused: bool, keyed: KeyedCall | None = None) -> object:
    return admin_sessions.end_session(
        ports, ADMIN, SESSION, reason="abusive messages", goodbye=goodbye, credit_unused=credit_unused, keyed=keyed
    )


def _pushes(ports: FakePorts) -> list[dict[str, object]]:
    return [json.loads(data) for topic, data, _ in ports.publisher.published if topic == "notify"]


def _session_document(ports: FakePorts) -> dict[str, object]:
    document = ports.documents.written[-1]
    assert isinstance(document, DocumentWrite) and document.paths == (f"sessions/{SESSION}",)
    return document.data


def test_ended_with_the_goodbye_window_the_session_is_closing_for_admin_and_both_are_pushed(
    ports: FakePorts, db: FakeDatabase
) -> None:
    db.tick(600)
    ended = admin_sessions.end_session(
        ports, ADMIN, SESSION, reason="crisis hand-off", goodbye=True, credit_unused=False
    )

    window = timedelta(seconds=db.config.goodbye_window_s)
    assert (ended.status, ended.close_reason, ended.goodbye_until) == ("closing", "admin", db.now + window)
    assert (ended.credited_s, ended.credited_amount) == (0, 0)
    data = _session_document(ports)
    assert (data["status"], data["close_reason"]) == ("closing", "admin")
    (told,) = _pushes(ports)
    mitra_uid = db.table("mitras")[db.table("sessions")[SESSION]["mitra_id"]]["firebase_uid"]
    assert sorted(told["recipients"]) == sorted(["uid-client", mitra_uid])
    assert told["data"] == {"type": "session_closing", "session_id": SESSION, "reason": "admin"}
    assert f"session-close-{SESSION}" in ports.tasks.created, "the goodbye window ends on its timer"
    (closure,) = db.table("session_closures").values()
    assert (closure["reason"], closure["closed_by"]) == ("admin", ADMIN)
    assert db.audit[-1]["action"] == "session.end" and db.audit[-1]["target"] == SESSION
    assert db.audit[-1]["old"]["status"] == "active"
    assert db.audit[-1]["new"]["reason"] == "crisis hand-off" and db.audit[-1]["new"]["status"] == "closing"
    db.tick(window.total_seconds())
    assert lifecycle.close(ports, SESSION) == "closed"


def test_ended_at_once_the_session_is_closed_and_no_timer_fires_into_it(ports: FakePorts, db: FakeDatabase) -> None:
    ended = _end(ports, goodbye=False, credit_unused=False)

    assert ended.status == "closed"
    data = _session_document(ports)
    assert (data["status"], data["close_reason"]) == ("closed", "admin") and data["closed_at"] is not None
    assert f"session-close-{SESSION}" not in ports.tasks.created
    assert db.table("sessions")[SESSION]["status"] == "closed"
    freed = [json.loads(data) for topic, data, _ in ports.publisher.published if topic == "mitra-slot-freed"]
    assert len(freed) == 1, "closed at once, the mitra's slot is offered to whoever searches"
    db.tick(1800)
    assert lifecycle.expire(ports, SESSION, 1) == "stale", "the expiry speaks for an active session"
    assert lifecycle.warn(ports, SESSION, 1) == "stale"
    assert lifecycle.close(ports, SESSION) == "stale"
    assert db.table("sessions")[SESSION]["status"] == "closed"


def test_the_unused_paid_time_is_credited_back_pro_rata_and_the_client_sees_it(
    ports: FakePorts, db: FakeDatabase
) -> None:
    db.tick(10 * 60)  # 20 of 30 paid minutes left

    ended = admin_sessions.end_session(
        ports, ADMIN, SESSION, reason="mitra vanished", goodbye=False, credit_unused=True
    )

    assert (ended.credited_s, ended.credited_amount) == (1200, 24000)
    assert db.audit[-1]["new"]["credited_amount"] == 24000
    quote = pricing.quote(ports, "c1")
    assert [(c.session_id, c.unused_s, c.amount) for c in quote.credited_back] == [(SESSION, 1200, 24000)]


def test_a_free_trial_has_nothing_to_credit_back(ports: FakePorts, db: FakeDatabase) -> None:
    db.table("sessions")[SESSION]["kind"] = "free_trial"
    db.table("pairing_requests")[REQUEST]["transaction_id"] = None

    ended = admin_sessions.end_session(ports, ADMIN, SESSION, reason="abuse", goodbye=True, credit_unused=True)

    assert (ended.credited_s, ended.credited_amount) == (0, 0)
    assert db.table("session_credit_backs") == {}


def test_a_repeat_with_the_key_gets_the_first_answer_and_without_it_an_ended_session_is_a_conflict(
    ports: FakePorts, db: FakeDatabase
) -> None:
    keyed = KeyedCall(ADMIN, "admin_session_end", "end-1", "hash-1")
    first = _end(ports, goodbye=True, credit_unused=True, keyed=keyed)
    pushes = len(_pushes(ports))

    again = _end(ports, goodbye=True, credit_unused=True, keyed=keyed)
    with pytest.raises(Conflict) as refused:
        _end(ports, goodbye=True, credit_unused=True)

    assert again == first
    assert refused.value.code == "session_not_active"
    assert len(_pushes(ports)) == pushes and len(db.table("session_credit_backs")) == 1
    assert [a["action"] for a in db.audit] == ["session.end"]


def test_an_unknown_session_is_not_found(ports: FakePorts, db: FakeDatabase) -> None:
    with pytest.raises(NotFound):
        admin_sessions.end_session(
            ports, ADMIN, "5e551011-0000-4000-8000-00000000dead", reason="x", goodbye=True, credit_unused=False
        )
    assert db.audit == []


def test_a_goodbye_window_is_cut_short_only_when_asked_without_one(ports: FakePorts, db: FakeDatabase) -> None:
    db.table("sessions")[SESSION].update(status="closing", goodbye_until=db.now + timedelta(minutes=5))
    db.table("session_closures")[1] = {"session_id": SESSION, "reason": "ended_by_client", "mitra_id": "m"}

    with pytest.raises(Conflict):
        _end(ports, goodbye=True, credit_unused=True)
    ended = admin_sessions.end_session(ports, ADMIN, SESSION, reason="stuck", goodbye=False, credit_unused=True)

    assert (ended.status, ended.close_reason, ended.credited_s) == ("closed", "ended_by_client", 0)
    assert _session_document(ports)["status"] == "closed"
    assert db.table("session_credit_backs") == {} and db.audit[-1]["old"]["status"] == "closing"
    assert lifecycle.close(ports, SESSION) == "stale"
