"""Crisis signals as stories on the in-memory unit of work: a client's risky message raises one alert, one push to
the admins on duty and one hotline card per session; the control center lists and acknowledges alerts. The same on
PostgreSQL, Firestore and FCM is proven by tests/e2e/test_safety.py."""

from __future__ import annotations

import json
import logging
import uuid

import pytest

from shared.domain.chat import Participant
from shared.domain.events import DocumentWrite, ts
from shared.domain.roles import Role
from shared.errors import InvalidRequest, NotFound
from shared.services import chat, safety
from tests.support.fake_accounts import add_admin
from tests.support.fake_chat import add_session
from tests.support.fakes import FakeDatabase, FakePorts, fake_ports, with_config

SESSION = "5e551011-0000-4000-8000-000000000001"
CLIENT = Participant(Role.CLIENT, "c1", "uid-client")
MITRA = Participant(Role.MITRA, "m1", "uid-mitra")
RISKY = "aku udah ga kuat lagi... pengen mattiii aja"
HOTLINES = "119 ext 8 (SEJIWA), 112"


@pytest.fixture
def db() -> FakeDatabase:
    database = FakeDatabase()
    add_session(
        database,
        SESSION,
        client={"id": "c1", "firebase_uid": "uid-client", "display_name": "Sari", "alias_number": 4821},
        mitra={"id": "m1", "firebase_uid": "uid-mitra", "display_name": "Mitra Anisa"},
    )
    add_admin(database, "a1", firebase_uid="uid-admin")
    add_admin(database, "a2", firebase_uid="uid-resting", on_duty=False)
    with_config(database, hotline_numbers=HOTLINES)
    return database


@pytest.fixture
def ports(db: FakeDatabase) -> FakePorts:
    return fake_ports(db)


def _say(ports: FakePorts, who: Participant, text: str) -> str:
    sent = chat.send(ports, who, session_id=SESSION, client_message_id=str(uuid.uuid4()), text=text)
    return sent.message_id


def _check(ports: FakePorts, message_id: str) -> str:
    return safety.check_message(ports, message_id=message_id, session_id=SESSION)


def _alert_documents(ports: FakePorts) -> list[DocumentWrite]:
    return [
        d for d in ports.documents.written if isinstance(d, DocumentWrite) and d.paths[0].startswith("admin_alerts/")
    ]


def _pushes(ports: FakePorts) -> list[dict[str, object]]:
    return [json.loads(data) for topic, data, _ in ports.publisher.published if topic == "notify"]


def test_a_risky_message_raises_an_alert_a_push_and_the_hotline_card(ports: FakePorts, db: FakeDatabase) -> None:
    message_id = _say(ports, CLIENT, RISKY)

    assert _check(ports, message_id) == "flagged"

    (flag,) = db.table("safety_flags").values()
    assert (flag["message_id"], flag["category"], flag["phrase"]) == (message_id, "suicidal_ideation", "pengen mati")
    (alert,) = _alert_documents(ports)
    assert not alert.merge and alert.data == {
        "alert_id": flag["id"],
        "session_id": SESSION,
        "message_id": message_id,
        "client_alias": "Bestie #4821",
        "category": "suicidal_ideation",
        "status": "open",
        "created_at": ts(db.now),
    }
    (push,) = _pushes(ports)
    assert push["recipients"] == ["uid-admin"], "only the admins on duty"
    assert push["data"] == {"type": "safety_alert", "alert_id": flag["id"], "session_id": SESSION}
    assert "mati" not in json.dumps([alert.data, push]), "never the message's words"
    card = db.table("chat_messages")[flag["hotline_message_id"]]
    assert (card["kind"], card["sender_role"], card["seq"]) == ("system", "system", 2)
    assert HOTLINES in card["text"]
    assert db.table("chat_messages")[message_id]["text"] == RISKY, "the message itself is untouched"
    assert db.pending() == [], "delivered on the fast path"


def test_a_redelivered_check_raises_nothing_twice_and_the_card_shows_once_per_session(
    ports: FakePorts, db: FakeDatabase
) -> None:
    first, later = _say(ports, CLIENT, RISKY), _say(ports, CLIENT, "I want to kill myself")

    outcomes = [_check(ports, first), _check(ports, first), _check(ports, later)]

    assert outcomes == ["flagged", "already_flagged", "flagged"]
    flags = list(db.table("safety_flags").values())
    assert len(flags) == 2 and sum(f["hotline_message_id"] is not None for f in flags) == 1
    assert len(_pushes(ports)) == 2 and len(_alert_documents(ports)) == 2
    assert [m["kind"] for m in db.table("chat_messages").values()].count("system") == 1


def test_only_a_client_s_kept_words_are_checked(ports: FakePorts, db: FakeDatabase) -> None:
    question = _say(ports, MITRA, "Apakah kamu pernah kepikiran bunuh diri?")
    ordinary = _say(ports, CLIENT, "hp aku mati tadi, maaf ya")
    erased = _say(ports, CLIENT, RISKY)
    db.table("chat_messages")[erased]["text"] = None

    assert [_check(ports, m) for m in (question, ordinary, erased)] == ["not_checked", "clear", "not_checked"]
    assert _check(ports, str(uuid.uuid4())) == "not_checked"
    assert db.table("safety_flags") == {}


def test_with_nobody_on_duty_the_alert_is_escalated_to_every_admin_and_logged_at_error(
    ports: FakePorts, db: FakeDatabase, caplog: pytest.LogCaptureFixture
) -> None:
    db.table("admins")["a1"]["on_duty"] = False

    with caplog.at_level(logging.INFO, logger="shared.services.safety"):
        assert _check(ports, _say(ports, CLIENT, "i want to end my life")) == "flagged"

    (push,) = _pushes(ports)
    assert sorted(push["recipients"]) == ["uid-admin", "uid-resting"], "every admin, on duty or not"
    assert push["data"]["escalated"] == "true" and push["body"].startswith("Tidak ada admin yang bertugas")
    assert len(_alert_documents(ports)) == 1
    escalated = [r for r in caplog.records if r.getMessage() == "crisis signal escalated"]
    assert [r.levelno for r in escalated] == [logging.ERROR]


def test_with_no_admin_at_all_the_alert_waits_in_the_control_center(ports: FakePorts, db: FakeDatabase) -> None:
    db.table("admins").clear()

    assert _check(ports, _say(ports, CLIENT, "i want to end my life")) == "flagged"

    assert _pushes(ports) == []
    assert len(_alert_documents(ports)) == 1


def test_admins_list_alerts_newest_first_and_acknowledge_once(ports: FakePorts, db: FakeDatabase) -> None:
    for text in ("self-harm is all I think about", RISKY, "I want to kill myself"):
        _check(ports, _say(ports, CLIENT, text))
        db.tick(60)

    page, cursor = safety.list_alerts(ports, acknowledged=None, cursor=None, limit=2)
    rest, end = safety.list_alerts(ports, acknowledged=None, cursor=cursor, limit=2)
    oldest = rest[0]
    done = safety.acknowledge(ports, "uid-admin", oldest.alert_id, "Mitra informed, client safe")
    db.tick(5)
    again = safety.acknowledge(ports, "uid-other", oldest.alert_id, "second")

    assert [a.category for a in page + rest] == ["suicidal_ideation", "suicidal_ideation", "self_harm"]
    assert page[0].client_alias == "Bestie #4821" and cursor is not None and end is None
    assert (done.acknowledged_by, done.note) == ("uid-admin", "Mitra informed, client safe")
    assert again == done, "the first acknowledgement stands"
    assert [(a["action"], a["actor_uid"]) for a in db.audit] == [("alert.acknowledge", "uid-admin")]
    document = _alert_documents(ports)[-1]
    assert document.merge and document.data["status"] == "acknowledged" and "note" not in document.data
    open_alerts, _ = safety.list_alerts(ports, acknowledged=False, cursor=None, limit=10)
    acknowledged, _ = safety.list_alerts(ports, acknowledged=True, cursor=None, limit=10)
    assert oldest.alert_id not in [a.alert_id for a in open_alerts] and len(open_alerts) == 2
    assert [a.alert_id for a in acknowledged] == [oldest.alert_id]


def test_an_unknown_alert_or_cursor_is_refused(ports: FakePorts) -> None:
    with pytest.raises(NotFound):
        safety.acknowledge(ports, "uid-admin", str(uuid.uuid4()), None)
    with pytest.raises(InvalidRequest):
        safety.list_alerts(ports, acknowledged=None, cursor="not-ours", limit=10)
