"""The control center's sessions as stories on the in-memory unit of work (tests/support/fakes.py): finding them,
and rerouting a running one. The same on PostgreSQL, Firestore and its rules: tests/e2e/test_admin.py."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

import pytest

from shared.domain import days
from shared.domain.chat import Participant
from shared.domain.events import DocumentWrite
from shared.domain.roles import Role
from shared.errors import Conflict, InvalidRequest, NotFound
from shared.services import admin_sessions, chat
from tests.support.fake_accounts import add_client
from tests.support.fake_chat import add_session
from tests.support.fake_pairing import add_mitra, uid
from tests.support.fakes import FakeDatabase, FakePorts, fake_ports

ADMIN = "uid-admin"
SESSION = "5e551011-0000-4000-8000-000000000001"
LATER = "5e551011-0000-4000-8000-000000000002"


@pytest.fixture
def db() -> FakeDatabase:
    database = FakeDatabase()
    client = add_client(database, "c1", firebase_uid="uid-client")
    mitra = database.table("mitras")[add_mitra(database, name="Mitra Lama")]
    add_session(database, SESSION, client=client, mitra=mitra)
    return database


@pytest.fixture
def ports(db: FakeDatabase) -> FakePorts:
    return fake_ports(db)


def _current_mitra(db: FakeDatabase) -> str:
    return str(db.table("sessions")[SESSION]["mitra_id"])


def _send(ports: FakePorts, who: Participant, text: str) -> None:
    chat.send(ports, who, session_id=SESSION, client_message_id=str(uuid.uuid4()), text=text)


def _pushes(ports: FakePorts) -> list[dict[str, object]]:
    return [json.loads(data) for topic, data, _ in ports.publisher.published if topic == "notify"]


# -- rerouting ---------------------------------------------------------------------------------------------------------


def test_a_rerouted_session_continues_with_the_new_mitra_and_the_old_one_is_cut_off(
    ports: FakePorts, db: FakeDatabase
) -> None:
    old = _current_mitra(db)
    new = add_mitra(db, name="Mitra Baru")
    before, after = (Participant(Role.MITRA, m, uid(db, "mitras", m)) for m in (old, new))
    _send(ports, before, "halo")

    moved = admin_sessions.reroute(ports, ADMIN, SESSION, new)

    assert (moved.mitra_id, moved.mitra_name, moved.messages) == (new, "Mitra Baru", 1)
    document = ports.documents.written[-1]
    assert isinstance(document, DocumentWrite) and document.paths == (f"sessions/{SESSION}",)
    assert document.data["participant_uids"] == ["uid-client", after.uid]
    assert (document.data["mitra_uid"], document.data["mitra_name"]) == (after.uid, "Mitra Baru")
    assert document.data["typing"] == {"mitra": {"typing_until": None}}
    told = [(p["recipients"], p["data"]["type"]) for p in _pushes(ports)[-2:]]
    assert told == [([after.uid], "session_assigned"), ([before.uid], "session_rerouted")]
    (closure,) = db.table("session_closures").values()
    assert (closure["mitra_id"], closure["reason"], closure["closed_by"]) == (old, "rerouted", ADMIN)
    assert db.audit[-1]["action"] == "session.reroute"
    assert (db.audit[-1]["old"], db.audit[-1]["new"]) == ({"mitra_id": old}, {"mitra_id": new})
    assert db.pending() == []
    _send(ports, after, "saya melanjutkan")
    with pytest.raises(Conflict) as refused:
        _send(ports, before, "masih di sini?")
    assert refused.value.code == "session_not_active"


@pytest.mark.parametrize("status", ["closing", "closed"])
def test_only_an_active_session_is_rerouted(ports: FakePorts, db: FakeDatabase, status: str) -> None:
    db.table("sessions")[SESSION]["status"] = status

    with pytest.raises(Conflict) as refused:
        admin_sessions.reroute(ports, ADMIN, SESSION, add_mitra(db))

    assert refused.value.code == "session_not_active"
    assert db.audit == [] and ports.documents.written == []


def test_a_session_whose_time_is_up_is_not_rerouted_even_before_its_timer_fires(
    ports: FakePorts, db: FakeDatabase
) -> None:
    db.tick(31 * 60)
    fresh = add_mitra(db)

    with pytest.raises(Conflict) as refused:
        admin_sessions.reroute(ports, ADMIN, SESSION, fresh)

    assert refused.value.code == "session_not_active"


def test_a_session_is_not_rerouted_to_its_own_mitra(ports: FakePorts, db: FakeDatabase) -> None:
    with pytest.raises(Conflict) as refused:
        admin_sessions.reroute(ports, ADMIN, SESSION, _current_mitra(db))

    assert refused.value.code == "same_mitra"


def test_the_new_mitra_must_be_available_as_for_an_offer(ports: FakePorts, db: FakeDatabase) -> None:
    offline = add_mitra(db, online=False)
    silent = add_mitra(db, heard_s_ago=db.config.heartbeat_grace_s + 1)
    inactive = add_mitra(db, active=False)
    full = add_mitra(db)
    for n in range(db.config.max_concurrent_clients):
        client = add_client(db, f"other-{n}", firebase_uid=f"uid-other-{n}")
        add_session(db, str(uuid.uuid4()), client=client, mitra=db.table("mitras")[full])

    for unavailable in (offline, silent, inactive, full):
        with pytest.raises(Conflict) as refused:
            admin_sessions.reroute(ports, ADMIN, SESSION, unavailable)
        assert refused.value.code == "mitra_unavailable"
    assert db.table("sessions")[SESSION]["mitra_id"] != full and db.audit == []


def test_rerouting_an_unknown_session_or_to_an_unknown_mitra_is_not_found(ports: FakePorts, db: FakeDatabase) -> None:
    with pytest.raises(NotFound):
        admin_sessions.reroute(ports, ADMIN, str(uuid.uuid4()), add_mitra(db))
    with pytest.raises(NotFound):
        admin_sessions.reroute(ports, ADMIN, SESSION, str(uuid.uuid4()))


# -- finding sessions --------------------------------------------------------------------------------------------------


def test_sessions_are_listed_newest_first_filtered_and_paged(ports: FakePorts, db: FakeDatabase) -> None:
    db.tick(60)
    later = add_client(db, "c2", firebase_uid="uid-c2", display_name="Dua")
    add_session(db, LATER, client=later, mitra=db.table("mitras")[_current_mitra(db)])

    first_page, cursor = admin_sessions.list_sessions(
        ports, status=None, mitra_id=None, client_id=None, first=None, last=None, cursor=None, limit=1
    )
    second_page, end = admin_sessions.list_sessions(
        ports, status=None, mitra_id=None, client_id=None, first=None, last=None, cursor=cursor, limit=1
    )
    by_client, _ = admin_sessions.list_sessions(
        ports, status="active", mitra_id=None, client_id="c1", first=None, last=None, cursor=None, limit=10
    )

    assert [s.session_id for s in first_page + second_page] == [LATER, SESSION]
    assert end is None
    assert [(s.session_id, s.client_alias) for s in by_client] == [(SESSION, "Bestie #1000")]
    today = days.today(db.now)
    yesterday = today - timedelta(days=1)
    none_yet, _ = admin_sessions.list_sessions(
        ports, status=None, mitra_id=None, client_id=None, first=None, last=yesterday, cursor=None, limit=10
    )
    assert none_yet == []


def test_a_range_that_ends_before_it_starts_is_refused(ports: FakePorts, db: FakeDatabase) -> None:
    today = days.today(db.now)

    yesterday = today - timedelta(days=1)

    with pytest.raises(InvalidRequest):
        admin_sessions.list_sessions(
            ports, status=None, mitra_id=None, client_id=None, first=today, last=yesterday, cursor=None, limit=10
        )
