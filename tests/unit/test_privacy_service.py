"""A client's data as stories on the in-memory unit of work: the export, the deletion (anonymised, texts erased,
signed out, taken out of every document, the ledger kept), and the retention sweep. The same on PostgreSQL, Firestore
and Firebase Auth is proven by tests/e2e/test_safety.py."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from shared.adapters.identity_cache import IdentityCache
from shared.domain.accounts import Identity
from shared.domain.chat import Participant
from shared.domain.events import DELETE_FIELD, DocumentDelete, DocumentWrite, TopicMessage
from shared.domain.privacy import Requester
from shared.domain.reports import ReportCategory, ReportStatus
from shared.domain.roles import Role
from shared.errors import Conflict, NotFound
from shared.services import blocks, chat, feedback, notes, notify, privacy, reports
from tests.support.fake_accounts import FakeIdentityProvider
from tests.support.fake_chat import add_session
from tests.support.fakes import FakeDatabase, FakePorts, fake_ports, with_config

SESSION = "5e551011-0000-4000-8000-000000000001"
OTHER_SESSION = "5e551011-0000-4000-8000-000000000002"
CLIENT = Participant(Role.CLIENT, "c1", "uid-client")
MITRA = Participant(Role.MITRA, "m1", "uid-mitra")
MITRA_ROW = {"id": "m1", "firebase_uid": "uid-mitra", "display_name": "Mitra Anisa"}
ADMIN = Requester("uid-admin", "admin", reason="permintaan klien lewat email")
THEMSELF = Requester("uid-client", "client")


@pytest.fixture
def db() -> FakeDatabase:
    database = FakeDatabase()
    add_session(
        database,
        SESSION,
        client={
            "id": "c1",
            "firebase_uid": "uid-client",
            "display_name": "Sari",
            "phone": "+628123",
            "email": "sari@example.com",
            "created_at": database.now,
        },
        mitra=MITRA_ROW,
    )
    database.table("pairing_requests")["r1"] = {"id": "r1", "client_id": "c1", "status": "matched"}
    database.table("customer_transactions")["t1"] = {"id": "t1", "client_id": "c1", "status": "paid", "amount": 35000}
    return database


@pytest.fixture
def ports(db: FakeDatabase) -> FakePorts:
    return fake_ports(db)


def _chat(ports: FakePorts, session_id: str = SESSION) -> None:
    for who, text in ((CLIENT, "ini rahasia aku"), (MITRA, "aman bersamaku")):
        chat.send(ports, who, session_id=session_id, client_message_id=str(uuid.uuid4()), text=text)


def _close(db: FakeDatabase, session_id: str, *, days_ago: int) -> None:
    db.table("sessions")[session_id].update(status="closed", closed_at=db.now - timedelta(days=days_ago))


def test_the_export_holds_the_profile_sessions_messages_and_transactions_and_is_audited(
    ports: FakePorts, db: FakeDatabase
) -> None:
    _chat(ports)

    exported = privacy.export(ports, ADMIN, "c1")

    assert exported["profile"]["alias"] == "Bestie #1234" and "alias_number" not in exported["profile"]
    assert (exported["profile"]["display_name"], exported["profile"]["email"]) == ("Sari", "sari@example.com")
    assert [s["session_id"] for s in exported["sessions"]] == [SESSION]
    assert [(m["sender_role"], m["text"]) for m in exported["messages"]] == [
        ("client", "ini rahasia aku"),
        ("mitra", "aman bersamaku"),
    ]
    assert [t["transaction_id"] for t in exported["transactions"]] == ["t1"]
    mine = privacy.export(ports, THEMSELF, "c1")
    assert {key: mine[key] for key in ("profile", "sessions", "messages", "transactions")} == {
        key: exported[key] for key in ("profile", "sessions", "messages", "transactions")
    }, "a client's own export holds what an admin's does"
    with pytest.raises(NotFound):
        privacy.export(ports, ADMIN, "c2")
    assert [(a["actor_uid"], a["actor_role"], a["action"], a["target"], a["new"]) for a in db.audit] == [
        ("uid-admin", "admin", "client.export", "c1", {"messages": 2, "reason": "permintaan klien lewat email"}),
        ("uid-client", "client", "client.export", "c1", {"messages": 2}),
    ]


def test_the_export_holds_what_the_client_wrote_after_a_session_their_settings_and_their_balance(
    ports: FakePorts, db: FakeDatabase
) -> None:
    db.table("clients")["c1"].update(locale="en", push_previews=True)
    _close(db, SESSION, days_ago=0)
    feedback.give(ports, CLIENT, SESSION, rating=4, comment="membantu sekali")
    mine = reports.report(ports, CLIENT, SESSION, ReportCategory.OTHER, "mitra terlambat")
    reports.report(ports, MITRA, SESSION, ReportCategory.ABUSIVE_LANGUAGE, "klien memaki")
    reports.decide(ports, "uid-admin", mine.report_id, ReportStatus.RESOLVED, "sudah ditegur")
    blocks.block(ports, CLIENT, SESSION)
    blocks.block(ports, MITRA, SESSION)
    notes.write(ports, MITRA, SESSION, "catatan pribadi mitra")
    db.table("session_credit_backs")[SESSION] = {
        "session_id": SESSION,
        "client_id": "c1",
        "unused_s": 600,
        "amount": 10000,
        "created_by": "uid-admin",
        "created_at": db.now,
    }
    db.table("credit_back_uses")[1] = {"transaction_id": "t1", "client_id": "c1", "kind": "use", "amount": 10000}

    exported = privacy.export(ports, THEMSELF, "c1")

    assert (exported["profile"]["locale"], exported["profile"]["push_previews"]) == ("en", True)
    assert [(f["session_id"], f["rating"], f["comment"]) for f in exported["feedback"]] == [
        (SESSION, 4, "membantu sekali")
    ]
    assert [(r["report_id"], r["category"], r["text"], r["status"]) for r in exported["reports"]] == [
        (mine.report_id, "other", "mitra terlambat", "resolved")
    ], "their own report only: never the mitra's report of them"
    assert "sudah ditegur" not in str(exported) and "klien memaki" not in str(exported)
    assert "catatan pribadi mitra" not in str(exported), "a mitra's notes are the mitra's (docs/privacy.md)"
    assert [(b["session_id"], b["mitra_name"]) for b in exported["blocks"]] == [(SESSION, "Mitra Anisa")]
    assert [(c["session_id"], c["unused_s"], c["amount"]) for c in exported["credit_backs"]] == [(SESSION, 600, 10000)]
    assert "uid-admin" not in str(exported["credit_backs"])
    assert [(u["transaction_id"], u["kind"], u["amount"]) for u in exported["credit_back_uses"]] == [
        ("t1", "use", 10000)
    ]
    assert privacy.export(ports, ADMIN, "c1") | {"exported_at": exported["exported_at"]} == exported


def test_a_client_is_deleted_only_once_nothing_is_open_and_then_forgotten_everywhere(
    ports: FakePorts, db: FakeDatabase
) -> None:
    _chat(ports)
    notify.register_device(ports, "uid-client", "fcm-token-of-the-client-phone", "android")
    idp = FakeIdentityProvider()
    identities = IdentityCache(ttl_s=60)
    identities.put("uid-client", Identity(Role.CLIENT, "c1", suspended=False))
    written_before = len(ports.documents.written)

    with pytest.raises(Conflict) as busy:
        privacy.delete(ports, idp, identities, ADMIN, "c1")
    _close(db, SESSION, days_ago=0)
    deleted = privacy.delete(ports, idp, identities, ADMIN, "c1")
    again = privacy.delete(ports, idp, identities, ADMIN, "c1")

    assert busy.value.code == "client_busy"
    profile = deleted["profile"]
    assert (profile["display_name"], profile["phone"], profile["email"]) == ("Deleted", None, None)
    assert profile["deleted_at"] is not None and again["profile"] == profile, "deleting again changes nothing"
    assert [m["text"] for m in deleted["messages"]] == [None, None]
    assert [t["transaction_id"] for t in deleted["transactions"]] == ["t1"], "the ledger stays"
    assert db.table("clients")["c1"]["firebase_uid"] is None and db.table("devices") == {}
    assert idp.deleted == ["uid-client"], "the Firebase user is deleted, not only signed out"
    assert identities.get("uid-client") is None
    assert [(a["action"], a["new"]) for a in db.audit] == [
        ("client.delete", {"deleted": True, "messages_erased": 2, "reason": "permintaan klien lewat email"})
    ]
    documents = ports.documents.written[written_before:]
    erased = [d for d in documents if isinstance(d, DocumentWrite) and "/messages/" in d.paths[0]]
    assert len(erased) == 2 and all(d.data == {"text": DELETE_FIELD, "erased": True} for d in erased)
    (session,) = [d for d in documents if isinstance(d, DocumentWrite) and d.paths == (f"sessions/{SESSION}",)]
    assert session.data == {
        "participant_uids": ["uid-mitra"],
        "client_uid": DELETE_FIELD,
        "client_name": "Bestie #1234",
    }, "the client leaves the session's document; the mitra keeps it"
    gone = {d.paths[0] for d in documents if isinstance(d, DocumentDelete)}
    assert gone == {"pairing_requests/r1", "payments/t1"}
    assert db.pending() == []


def test_a_searching_request_keeps_a_client_from_deletion(ports: FakePorts, db: FakeDatabase) -> None:
    _close(db, SESSION, days_ago=0)
    db.table("pairing_requests")["r2"] = {"id": "r2", "client_id": "c1", "status": "searching"}

    with pytest.raises(Conflict):
        privacy.delete(ports, FakeIdentityProvider(), IdentityCache(ttl_s=60), THEMSELF, "c1")
    assert db.table("clients")["c1"].get("deleted_at") is None
    assert db.table("clients")["c1"]["firebase_uid"] == "uid-client"


def test_retention_erases_the_texts_of_long_closed_sessions_only_once(ports: FakePorts, db: FakeDatabase) -> None:
    other = Participant(Role.CLIENT, "c2", "uid-2")
    rina = {"id": "c2", "firebase_uid": "uid-2", "display_name": "Rina"}
    add_session(db, OTHER_SESSION, client=rina, mitra=MITRA_ROW)
    _chat(ports, SESSION)
    chat.send(ports, other, session_id=OTHER_SESSION, client_message_id=str(uuid.uuid4()), text="cerita baru")
    with_config(db, retention_days=365)
    _close(db, SESSION, days_ago=400)
    _close(db, OTHER_SESSION, days_ago=300)
    written_before = len(ports.documents.written)

    first = privacy.retention_sweep(ports, budget_s=5)
    second = privacy.retention_sweep(ports, budget_s=5)

    assert (first, second) == (2, 0)
    texts = {m["session_id"]: [] for m in db.table("chat_messages").values()}
    for message in db.table("chat_messages").values():
        texts[message["session_id"]].append(message["text"])
    assert texts == {SESSION: [None, None], OTHER_SESSION: ["cerita baru"]}
    assert db.table("sessions")[SESSION]["texts_erased_at"] == db.now
    assert db.table("sessions")[OTHER_SESSION].get("texts_erased_at") is None
    erased = ports.documents.written[written_before:]
    assert len(erased) == 2 and all(d.paths[0].startswith(f"sessions/{SESSION}/messages/") for d in erased)


def test_a_client_deleting_themself_reaches_every_copy_of_their_words(ports: FakePorts, db: FakeDatabase) -> None:
    _chat(ports)
    risky = next(m for m in db.table("chat_messages").values() if m["sender_role"] == "client")
    db.table("safety_flags")["f1"] = {
        "id": "f1",
        "session_id": SESSION,
        "message_id": risky["id"],
        "phrase": "ingin mati",
        "note": "klien bilang ingin mati",
    }
    db.audit.append(
        {
            "actor_uid": "uid-admin",
            "actor_role": "admin",
            "action": "alert.acknowledge",
            "target": "f1",
            "old": {"acknowledged": False},
            "new": {"acknowledged": True, "note": "klien bilang ingin mati"},
        }
    )
    ports.documents.refuse = True  # the message waits in the outbox
    chat.send(ports, CLIENT, session_id=SESSION, client_message_id=str(uuid.uuid4()), text="pesan yang tertunda")
    ports.documents.refuse = False
    _close(db, SESSION, days_ago=0)
    published_before = [row for row in db.outbox if row.published]
    assert published_before, "the first messages were published"

    privacy.delete(ports, FakeIdentityProvider(), IdentityCache(ttl_s=60), THEMSELF, "c1")

    assert (db.table("safety_flags")["f1"]["phrase"], db.table("safety_flags")["f1"]["note"]) == (None, None)
    remaining = {row.outbox_id for row in db.outbox}
    assert not remaining & {row.outbox_id for row in published_before}, "published rows about the client are gone"
    words = [
        row.event.data.get("text")
        for row in db.outbox
        if isinstance(row.event, DocumentWrite) and "/messages/" in row.event.paths[0]
    ]
    assert "pesan yang tertunda" not in words, "a pending message's document no longer carries its text"
    assert [(a["action"], a["actor_role"]) for a in db.audit] == [
        ("alert.acknowledge", "admin"),
        ("client.delete", "client"),
    ]
    assert db.audit[0]["new"] == {"acknowledged": True}, "the note left the acknowledgement's audit row too"


def test_the_retention_sweep_purges_published_outbox_rows_after_a_week(ports: FakePorts, db: FakeDatabase) -> None:
    _chat(ports)
    published = [row.outbox_id for row in db.outbox if row.published]
    db.now += timedelta(days=6)
    privacy.retention_sweep(ports, budget_s=5)
    assert {row.outbox_id for row in db.outbox} >= set(published), "kept for a week"

    db.now += timedelta(days=2)
    privacy.retention_sweep(ports, budget_s=5)
    assert not {row.outbox_id for row in db.outbox} & set(published)


def test_pending_pushes_of_an_erased_session_lose_their_body(ports: FakePorts, db: FakeDatabase) -> None:
    push = TopicMessage("notify", {"dedup_key": "message:x", "data": {"session_id": SESSION}, "body": "aku capek"})
    with ports.uow() as uow:
        uow.outbox.add(push)
        uow.commit()  # not delivered: pending

    with ports.uow() as uow:
        uow.privacy.erase_copies_in([SESSION])
        uow.commit()

    (row,) = [row for row in db.outbox if isinstance(row.event, TopicMessage)]
    assert "body" not in row.event.data and row.event.data["dedup_key"] == "message:x"
