"""The control center's roster as stories on the in-memory unit of work (tests/support/fakes.py): registering,
renaming, deactivating (offline at once, offers withdrawn, signed out) and reactivating a mitra, and their presence
history. The same on PostgreSQL and through the gateway: tests/e2e/test_admin.py, tests/integration/test_dashboard.py
(online time by Jakarta day)."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from shared.adapters.identity_cache import IdentityCache
from shared.domain import days
from shared.domain.events import DocumentDelete, DocumentWrite
from shared.domain.presence import Presence
from shared.domain.roles import Role
from shared.errors import Conflict, InvalidRequest, NotFound
from shared.services import admin_mitras, identity, pairing, presence
from tests.support.fake_accounts import FakeIdentityProvider, add_client
from tests.support.fake_chat import add_session
from tests.support.fake_pairing import add_mitra, uid
from tests.support.fakes import FakeDatabase, FakePorts, fake_ports

ADMIN = "uid-admin"


@pytest.fixture
def db() -> FakeDatabase:
    return FakeDatabase()


@pytest.fixture
def ports(db: FakeDatabase) -> FakePorts:
    return fake_ports(db)


@pytest.fixture
def idp() -> FakeIdentityProvider:
    return FakeIdentityProvider()


@pytest.fixture
def identities() -> IdentityCache:
    return IdentityCache(ttl_s=60)


def _on_roster(db: FakeDatabase, name: str = "Mitra Anisa", *, online: bool = True) -> str:
    """A mitra who has signed in (and is online, unless not)."""
    mitra_id = add_mitra(db, name=name, online=online)
    db.table("mitras")[mitra_id].update(phone=f"+62811{len(db.table('mitras')):08d}", created_at=db.now)
    return mitra_id


def _logged(db: FakeDatabase, mitra_id: str) -> list[tuple[str, str, str]]:
    rows = db.table("mitra_status_logs").values()
    return [(r["from_status"], r["to_status"], r["reason"]) for r in rows if r["mitra_id"] == mitra_id]


# -- registering and renaming ------------------------------------------------------------------------------------------


def test_a_mitra_is_registered_by_phone_offline_and_not_yet_signed_in(ports: FakePorts, db: FakeDatabase) -> None:
    created = admin_mitras.create(ports, ADMIN, phone="+6281600000001", display_name="Mitra Baru")

    assert (created.phone, created.active, created.presence, created.signed_in) == (
        "+6281600000001",
        True,
        "offline",
        False,
    )
    assert db.audit[-1]["action"] == "mitra.create"
    assert db.audit[-1]["new"] == {"phone": "+6281600000001", "display_name": "Mitra Baru"}


def test_a_phone_number_belongs_to_one_person(ports: FakePorts, db: FakeDatabase) -> None:
    admin_mitras.create(ports, ADMIN, phone="+6281600000001", display_name="Mitra Baru")
    add_client(db, "c1", firebase_uid="uid-c1", phone="+6281600000002")

    for phone in ("+6281600000001", "+6281600000002"):
        with pytest.raises(Conflict) as refused:
            admin_mitras.create(ports, ADMIN, phone=phone, display_name="Mitra Lagi")
        assert refused.value.code == "phone_taken"
    assert len(db.table("mitras")) == 1 and len(db.audit) == 1


def test_a_new_name_reaches_the_clients_of_running_sessions(ports: FakePorts, db: FakeDatabase) -> None:
    mitra_id = _on_roster(db)
    session_id = str(uuid.uuid4())
    add_session(db, session_id, client=add_client(db, "c1"), mitra=db.table("mitras")[mitra_id])

    renamed = admin_mitras.rename(ports, ADMIN, mitra_id, "Mitra Dua")

    assert renamed.display_name == "Mitra Dua"
    assert ports.documents.written == [
        DocumentWrite.at(f"sessions/{session_id}", {"session_id": session_id, "mitra_name": "Mitra Dua"})
    ]
    assert db.audit[-1]["old"] == {"display_name": "Mitra Anisa"}
    assert db.audit[-1]["new"] == {"display_name": "Mitra Dua"}


# -- deactivation ------------------------------------------------------------------------------------------------------


def test_deactivation_takes_a_mitra_out_at_once(
    ports: FakePorts, db: FakeDatabase, idp: FakeIdentityProvider, identities: IdentityCache
) -> None:
    mitra_id = _on_roster(db)
    mitra_uid = uid(db, "mitras", mitra_id)
    running = str(uuid.uuid4())
    add_session(db, running, client=add_client(db, "c1", firebase_uid="uid-c1"), mitra=db.table("mitras")[mitra_id])
    request_id = pairing.request_pairing(
        ports, add_client(db, "c2", firebase_uid="uid-c2")["id"], tier_id=None, free_trial=True
    ).request_id
    pairing.blast(ports, request_id)
    assert identity.resolve(ports, identities, mitra_uid).role is Role.MITRA

    after = admin_mitras.deactivate(ports, idp, identities, ADMIN, mitra_id)

    assert (after.active, after.presence) == (False, "offline")
    assert _logged(db, mitra_id) == [("online", "offline", "deactivated")]
    written = ports.documents.written
    assert DocumentDelete((f"mitras/{mitra_uid}/offers/{request_id}",)) in written
    assert DocumentWrite.at(f"sessions/{running}", {"participant_uids": ["uid-c1"]}) in written, "out of the session"
    assert [e.data["blocked"] for e in written if e.paths == (f"revocations/{mitra_uid}",)] == [True]
    assert (idp.revoked, idp.roles) == ([mitra_uid], {mitra_uid: None})
    assert identity.resolve(ports, identities, mitra_uid).role is None, "the instance forgot the mitra's role"
    assert db.table("sessions")[running]["status"] == "active", "running sessions go on until rerouted"
    assert db.audit[-1]["action"] == "mitra.deactivate"
    assert db.audit[-1]["new"] == {"active": False, "presence": "offline"}
    with pytest.raises(NotFound):
        presence.set_status(ports, mitra_id, Presence.ONLINE)


def test_a_mitra_offline_already_is_deactivated_without_a_transition(
    ports: FakePorts, db: FakeDatabase, idp: FakeIdentityProvider, identities: IdentityCache
) -> None:
    mitra_id = _on_roster(db, online=False)

    admin_mitras.deactivate(ports, idp, identities, ADMIN, mitra_id)
    admin_mitras.deactivate(ports, idp, identities, ADMIN, mitra_id)

    assert _logged(db, mitra_id) == []
    assert [row["action"] for row in db.audit] == ["mitra.deactivate"], "deactivating twice changes nothing more"


def test_a_reactivated_mitra_stays_offline_until_going_online(
    ports: FakePorts, db: FakeDatabase, idp: FakeIdentityProvider, identities: IdentityCache
) -> None:
    mitra_id = _on_roster(db)
    admin_mitras.deactivate(ports, idp, identities, ADMIN, mitra_id)

    back = admin_mitras.reactivate(ports, ADMIN, mitra_id)

    assert (back.active, back.presence) == (True, "offline")
    assert db.audit[-1]["action"] == "mitra.reactivate"
    assert db.audit[-1]["old"] == {"active": False, "presence": "offline"}
    assert presence.set_status(ports, mitra_id, Presence.ONLINE).changed


def test_an_unknown_mitra_is_not_found(ports: FakePorts, idp: FakeIdentityProvider, identities: IdentityCache) -> None:
    with pytest.raises(NotFound):
        admin_mitras.deactivate(ports, idp, identities, ADMIN, str(uuid.uuid4()))
    assert idp.revoked == []


# -- the roster and its history ----------------------------------------------------------------------------------------


def test_the_roster_filters_and_pages_by_name(ports: FakePorts, db: FakeDatabase) -> None:
    for name in ("Roster C", "Roster A", "Roster B"):
        _on_roster(db, name)
    _on_roster(db, "Lain", online=False)

    first, cursor = admin_mitras.list_mitras(ports, presence=None, active=None, search="roster", cursor=None, limit=2)
    second, end = admin_mitras.list_mitras(ports, presence=None, active=None, search="roster", cursor=cursor, limit=2)
    online, _ = admin_mitras.list_mitras(ports, presence="online", active=True, search=None, cursor=None, limit=10)

    assert [m.display_name for m in first + second] == ["Roster A", "Roster B", "Roster C"]
    assert end is None
    assert {m.display_name for m in online} == {"Roster A", "Roster B", "Roster C"}
    with pytest.raises(InvalidRequest):
        admin_mitras.list_mitras(ports, presence=None, active=None, search=None, cursor="garbage", limit=2)


def test_presence_history_covers_the_last_seven_days_with_time_online(ports: FakePorts, db: FakeDatabase) -> None:
    mitra_id = _on_roster(db, online=False)
    presence.set_status(ports, mitra_id, Presence.ONLINE)
    db.tick(3_600)
    presence.set_status(ports, mitra_id, Presence.OFFLINE)

    today = days.today(db.now)  # the service's own default is the wall clock's today (tests/e2e/test_admin.py)

    history = admin_mitras.status_history(ports, mitra_id, None, today)

    assert (history.from_date, history.to_date) == (today - timedelta(days=6), today)
    assert [day.day for day in history.online_by_day] == [today - timedelta(days=n) for n in range(6, -1, -1)]
    assert [(c.to_status, c.reason) for c in history.changes] == [("online", "manual"), ("offline", "manual")]
    assert history.total_online_s == 3_600


def test_presence_history_refuses_bad_ranges_and_unknown_mitras(ports: FakePorts, db: FakeDatabase) -> None:
    mitra_id = _on_roster(db)
    today = days.today(db.now)

    with pytest.raises(InvalidRequest):
        admin_mitras.status_history(ports, mitra_id, today, today - timedelta(days=1))
    with pytest.raises(InvalidRequest):
        admin_mitras.status_history(ports, mitra_id, today - timedelta(days=days.MAX_RANGE_DAYS), today)
    with pytest.raises(NotFound):
        admin_mitras.status_history(ports, str(uuid.uuid4()), None, None)
