"""The chat use cases as stories, on the in-memory unit of work (tests/support/fakes.py): no database, no emulators.
The same rules on PostgreSQL are proven by tests/e2e/test_chat.py."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest

from shared.domain.chat import Participant, Receipt
from shared.domain.events import DocumentWrite, TopicMessage, ts
from shared.domain.roles import Role
from shared.errors import Conflict, InvalidRequest, NotFound, RateLimited
from shared.services import admin_sessions, chat, projector
from tests.support.fake_chat import add_session
from tests.support.fakes import FakeDatabase, FakePorts, fake_ports, with_config

SESSION = "5e551011-0000-4000-8000-000000000001"
CLIENT = Participant(Role.CLIENT, "c1", "uid-client")
MITRA = Participant(Role.MITRA, "m1", "uid-mitra")


@pytest.fixture
def db() -> FakeDatabase:
    database = FakeDatabase()
    add_session(
        database,
        SESSION,
        client={"id": "c1", "firebase_uid": "uid-client", "display_name": "Sari"},
        mitra={"id": "m1", "firebase_uid": "uid-mitra", "display_name": "Mitra Anisa"},
    )
    return database


@pytest.fixture
def ports(db: FakeDatabase) -> Iterator[FakePorts]:
    yield fake_ports(db)


def _send(ports: FakePorts, who: Participant = CLIENT, text: str = "halo", cmid: str | None = None) -> chat.Sent:
    return chat.send(ports, who, session_id=SESSION, client_message_id=cmid or str(uuid.uuid4()), text=text)


def test_a_message_is_stored_in_order_and_its_document_and_event_delivered(ports: FakePorts, db: FakeDatabase) -> None:
    first = _send(ports, CLIENT, "halo kak")
    second = _send(ports, MITRA, "halo, aku di sini")

    assert (first.seq, second.seq) == (1, 2)
    document = ports.documents.written[0]
    assert isinstance(document, DocumentWrite) and not document.merge
    assert document.paths == (f"sessions/{SESSION}/messages/{first.message_id}",)
    assert document.data["text"] == "halo kak" and document.data["seq"] == 1
    assert document.data["created_at"] == ts(db.now)
    topics = [(topic, json.loads(data)) for topic, data, _ in ports.publisher.published]
    assert topics[0] == (
        "chat-messages",
        {"message_id": first.message_id, "session_id": SESSION, "sender_role": "client"},
    )
    assert "halo kak" not in json.dumps(topics), "the event names the message and carries none of its words"
    assert db.pending() == [], "the fast path marked its rows published"


def test_a_retry_returns_the_first_message_and_stores_nothing_more(ports: FakePorts, db: FakeDatabase) -> None:
    cmid = str(uuid.uuid4())
    first = _send(ports, cmid=cmid)
    db.tick(5)
    again = _send(ports, cmid=cmid, text="halo (again)")

    assert again == first
    assert len(db.table("chat_messages")) == 1
    assert len(ports.documents.written) == 1


def test_only_the_participants_of_an_active_session_may_send(ports: FakePorts, db: FakeDatabase) -> None:
    stranger = Participant(Role.MITRA, "m2", "uid-other")
    with pytest.raises(Conflict) as refused:
        _send(ports, stranger)
    assert refused.value.code == "session_not_active"

    db.tick(31 * 60)  # the session's time is up
    with pytest.raises(Conflict) as late:
        _send(ports, CLIENT)
    assert late.value.code == "session_not_active"
    assert db.table("chat_messages") == {}


def test_a_sender_over_the_minute_s_limit_is_told_when_to_retry(ports: FakePorts, db: FakeDatabase) -> None:
    with_config(db, messages_per_minute=3)
    for _ in range(3):
        _send(ports)
        db.tick(10)

    with pytest.raises(RateLimited) as limited:
        _send(ports)
    assert limited.value.retry_after_s == 30  # the oldest of the three leaves the minute 30 s from now
    assert _send(ports, MITRA).seq == 4, "the other side has a limit of its own"


def test_an_outage_after_the_commit_leaves_the_message_to_the_retry_task(ports: FakePorts, db: FakeDatabase) -> None:
    ports.documents.refuse = True

    sent = _send(ports)

    assert sent.seq == 1, "the sender is answered: the message is stored"
    assert {row.outbox_id for row in db.pending()} == {1, 2}
    (retry,) = ports.tasks.created.values()
    assert (retry.handler, retry.payload) == (projector.RETRY_HANDLER, {"ids": [1, 2]})

    ports.documents.refuse = False
    assert projector.project(ports, ids=[1, 2]).published == 2
    assert db.pending() == []


def test_receipts_move_forward_only_and_wait_for_company_in_one_row(ports: FakePorts, db: FakeDatabase) -> None:
    first, second = _send(ports, MITRA), _send(ports, MITRA)

    assert chat.receipts(
        ports, CLIENT, session_id=SESSION, up_to_message_id=second.message_id, receipt=Receipt.DELIVERED
    ) == {"delivered_seq": 2, "read_seq": 0}
    assert chat.receipts(
        ports, CLIENT, session_id=SESSION, up_to_message_id=first.message_id, receipt=Receipt.READ
    ) == {"delivered_seq": 2, "read_seq": 1}

    (pending,) = db.pending()
    assert pending.event == DocumentWrite.at(
        f"sessions/{SESSION}", {"receipts": {"client": {"delivered_seq": 2, "read_seq": 1}}}
    ), "one row, brought up to date by each call"
    assert len(ports.tasks.created) == 1, "one deferred delivery"


def test_typing_is_a_lease_renewed_only_when_old_and_carries_waiting_receipts(
    ports: FakePorts, db: FakeDatabase
) -> None:
    message = _send(ports, MITRA)
    chat.receipts(ports, CLIENT, session_id=SESSION, up_to_message_id=message.message_id, receipt=Receipt.READ)
    written_before = len(ports.documents.written)

    assert chat.typing(ports, CLIENT, session_id=SESSION, is_typing=True) is True
    db.tick(3)
    assert chat.typing(ports, CLIENT, session_id=SESSION, is_typing=True) is False, "a fresh lease is not renewed"
    db.tick(4)
    assert chat.typing(ports, CLIENT, session_id=SESSION, is_typing=True) is True

    lease = ports.documents.written[written_before]
    assert lease.data["typing"]["client"]["typing_until"] is not None
    assert lease.data["receipts"] == {"client": {"delivered_seq": 1, "read_seq": 1}}, "the receipts rode along"
    assert db.pending() == [], "their own row is done"


def test_a_message_after_the_lease_clears_typing_without_a_write(ports: FakePorts, db: FakeDatabase) -> None:
    assert chat.typing(ports, CLIENT, session_id=SESSION, is_typing=True) is True
    db.tick(1)
    _send(ports, CLIENT)
    assert chat.typing(ports, CLIENT, session_id=SESSION, is_typing=False) is False


def test_a_receipt_for_a_message_of_another_session_names_the_field(ports: FakePorts) -> None:
    with pytest.raises(InvalidRequest) as invalid:
        chat.receipts(ports, CLIENT, session_id=SESSION, up_to_message_id=str(uuid.uuid4()), receipt=Receipt.READ)
    assert invalid.value.details["fields"] == [{"field": "up_to_message_id", "problem": "unknown"}]


def test_history_pages_back_in_time_and_only_for_participants(ports: FakePorts) -> None:
    for n in range(5):
        _send(ports, text=f"pesan {n}")
    reader = chat.Reader(Role.CLIENT, "c1", "uid-client")

    page, before = chat.history(ports, reader, session_id=SESSION, before_seq=None, limit=2)
    assert [m["text"] for m in page] == ["pesan 3", "pesan 4"] and before == 4
    page, before = chat.history(ports, reader, session_id=SESSION, before_seq=before, limit=2)
    assert [m["text"] for m in page] == ["pesan 1", "pesan 2"] and before == 2

    with pytest.raises(NotFound):
        chat.history(ports, chat.Reader(Role.MITRA, "m2", "uid-other"), session_id=SESSION, before_seq=None, limit=2)


def test_an_admin_reads_a_transcript_only_through_the_control_center_with_a_reason_audited(
    ports: FakePorts, db: FakeDatabase
) -> None:
    _send(ports)
    with pytest.raises(NotFound):
        chat.transcript(ports, chat.Reader(Role.ADMIN, "a1", "uid-admin"), session_id=SESSION)
    with pytest.raises(NotFound):
        chat.history(ports, chat.Reader(Role.ADMIN, "a1", "uid-admin"), session_id=SESSION, before_seq=None, limit=5)
    assert db.audit == []

    session, messages = admin_sessions.transcript(ports, "uid-admin", SESSION, "laporan keluhan #12")

    assert session["client_name"] == "Bestie #1234" and len(messages) == 1
    assert [(a["action"], a["target"], a["actor_uid"], a["new"]) for a in db.audit] == [
        ("session.transcript_read", SESSION, "uid-admin", {"reason": "laporan keluhan #12", "messages": 1})
    ]
    with pytest.raises(NotFound):
        admin_sessions.transcript(ports, "uid-admin", str(uuid.uuid4()), "laporan keluhan #12")


def test_a_push_shows_no_words_unless_the_client_opted_in_and_never_a_client_s_words_to_a_mitra(
    ports: FakePorts, db: FakeDatabase
) -> None:
    to_mitra = _send(ports, CLIENT, "aku capek banget")
    to_client = _send(ports, MITRA, "aku dengar kamu")

    def body(message_id: str) -> tuple[list[str], str]:
        pushed = chat.push_for(ports, session_id=SESSION, message_id=message_id)
        assert isinstance(pushed, TopicMessage)
        return pushed.data["recipients"], pushed.data["body"]

    assert body(to_mitra.message_id) == (["uid-mitra"], "Pesan baru")
    assert body(to_client.message_id) == (["uid-client"], "Pesan baru")
    db.table("clients")["c1"]["push_previews"] = True
    assert body(to_client.message_id) == (["uid-client"], "aku dengar kamu")
    assert body(to_mitra.message_id) == (["uid-mitra"], "Pesan baru")
