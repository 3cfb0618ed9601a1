"""The control center's clients as stories on the in-memory unit of work (tests/support/fakes.py): finding them,
suspending (refused at once, a search cancelled, signed out) and reinstating. The same through the gateway, with
Firestore and Firebase Auth: tests/e2e/test_admin.py."""

from __future__ import annotations

from datetime import timedelta

import pytest

from shared.adapters.identity_cache import IdentityCache
from shared.domain.events import DocumentDelete, DocumentWrite
from shared.domain.roles import Role
from shared.errors import NotFound
from shared.services import admin_users, identity, pairing
from tests.support.fake_accounts import FakeIdentityProvider, add_client
from tests.support.fake_chat import add_session
from tests.support.fake_pairing import add_mitra, uid
from tests.support.fakes import FakeDatabase, FakePorts, fake_ports

ADMIN = "uid-admin"
CLIENT = "c0000000-0000-4000-8000-000000000001"


@pytest.fixture
def db() -> FakeDatabase:
    database = FakeDatabase()
    add_client(database, CLIENT, firebase_uid="uid-sari", display_name="Klien Nakal", email="nakal@example.com")
    return database


@pytest.fixture
def ports(db: FakeDatabase) -> FakePorts:
    return fake_ports(db)


@pytest.fixture
def idp() -> FakeIdentityProvider:
    return FakeIdentityProvider()


@pytest.fixture
def identities() -> IdentityCache:
    return IdentityCache(ttl_s=60)


def _suspend(ports: FakePorts, idp: FakeIdentityProvider, identities: IdentityCache) -> None:
    admin_users.suspend(ports, idp, identities, ADMIN, CLIENT, reason="abusive messages")


def test_a_suspended_client_is_refused_at_once_and_its_search_is_cancelled(
    ports: FakePorts, db: FakeDatabase, idp: FakeIdentityProvider, identities: IdentityCache
) -> None:
    mitra = add_mitra(db)
    request_id = pairing.request_pairing(ports, CLIENT, tier_id=None, free_trial=True).request_id
    pairing.blast(ports, request_id)
    assert identity.resolve(ports, identities, "uid-sari").suspended is False  # remembered by this instance

    suspended = admin_users.suspend(ports, idp, identities, ADMIN, CLIENT, reason="abusive messages")

    assert suspended.suspended and suspended.suspended_at == db.now
    known = identity.resolve(ports, identities, "uid-sari")
    assert (known.role, known.suspended) == (Role.CLIENT, True), "the instance forgot what it remembered"
    assert idp.revoked == ["uid-sari"]
    assert db.table("pairing_requests")[request_id]["status"] == "cancelled"
    assert DocumentDelete((f"mitras/{uid(db, 'mitras', mitra)}/offers/{request_id}",)) in ports.documents.written
    told = [e for e in ports.documents.written if e.paths == (f"pairing_requests/{request_id}",)][-1]
    assert isinstance(told, DocumentWrite) and told.data["status"] == "cancelled", "the client's app sees it end"
    (revoked,) = [e for e in ports.documents.written if e.paths == ("revocations/uid-sari",)]
    assert isinstance(revoked, DocumentWrite) and revoked.data["blocked"] is True, "Firestore reads nothing for them"
    assert identity.resolve(ports, identities, "uid-sari").tokens_valid_after == db.now
    assert db.audit[-1]["action"] == "client.suspend"
    assert db.audit[-1]["new"] == {"suspended": True, "reason": "abusive messages"}
    assert db.pending() == []


def test_suspending_twice_changes_nothing_more(
    ports: FakePorts, db: FakeDatabase, idp: FakeIdentityProvider, identities: IdentityCache
) -> None:
    _suspend(ports, idp, identities)
    first = db.table("clients")[CLIENT]["suspended_at"]
    db.tick(60)

    _suspend(ports, idp, identities)

    assert db.table("clients")[CLIENT]["suspended_at"] == first
    assert [row["action"] for row in db.audit] == ["client.suspend"]


def test_a_reinstated_client_is_served_again(
    ports: FakePorts, db: FakeDatabase, idp: FakeIdentityProvider, identities: IdentityCache
) -> None:
    _suspend(ports, idp, identities)
    identity.resolve(ports, identities, "uid-sari")

    back = admin_users.unsuspend(ports, identities, ADMIN, CLIENT, reason="appeal accepted")

    assert back.suspended_at is None
    assert identity.resolve(ports, identities, "uid-sari").suspended is False
    assert ports.documents.written[-1] == DocumentWrite.at(
        "revocations/uid-sari", {"tokens_valid_after": int(db.now.timestamp()), "blocked": False}
    ), "Firestore reads again, for a sign-in after the suspension"
    assert (db.audit[-1]["action"], db.audit[-1]["old"]) == ("client.unsuspend", {"suspended": True})
    admin_users.unsuspend(ports, identities, ADMIN, CLIENT, reason=None)
    assert len(db.audit) == 2, "reinstating a client who is not suspended changes nothing"


def test_a_suspended_client_leaves_their_open_session_and_is_back_once_reinstated(
    ports: FakePorts, db: FakeDatabase, idp: FakeIdentityProvider, identities: IdentityCache
) -> None:
    mitra = add_mitra(db)
    session_id = "s0000000-0000-4000-8000-000000000001"
    add_session(db, session_id, client=db.table("clients")[CLIENT], mitra=db.table("mitras")[mitra])
    readers = f"sessions/{session_id}"

    _suspend(ports, idp, identities)
    suspended = [e.data for e in ports.documents.written if e.paths == (readers,)]
    admin_users.unsuspend(ports, identities, ADMIN, CLIENT, reason=None)
    reinstated = [e.data for e in ports.documents.written if e.paths == (readers,)][len(suspended) :]

    assert suspended == [{"participant_uids": [uid(db, "mitras", mitra)]}]
    assert reinstated == [{"participant_uids": ["uid-sari", uid(db, "mitras", mitra)]}]


def test_an_unknown_client_is_not_found(ports: FakePorts, idp: FakeIdentityProvider, identities: IdentityCache) -> None:
    with pytest.raises(NotFound):
        admin_users.suspend(ports, idp, identities, ADMIN, "c0000000-0000-4000-8000-00000000ffff", reason=None)
    assert idp.revoked == []


def test_clients_are_found_by_any_part_of_name_phone_or_email_newest_first(
    ports: FakePorts, db: FakeDatabase, idp: FakeIdentityProvider, identities: IdentityCache
) -> None:
    db.tick(60)
    newer = "c0000000-0000-4000-8000-000000000002"
    add_client(db, newer, firebase_uid="uid-dewi", display_name="Dewi", phone="+6281299990000")
    db.table("clients")[newer]["created_at"] = db.now + timedelta(seconds=1)
    _suspend(ports, idp, identities)

    by_email, _ = admin_users.list_clients(ports, search="NAKAL@", suspended=None, cursor=None, limit=10)
    by_phone, _ = admin_users.list_clients(ports, search="9999", suspended=None, cursor=None, limit=10)
    suspended, _ = admin_users.list_clients(ports, search=None, suspended=True, cursor=None, limit=10)
    first, cursor = admin_users.list_clients(ports, search=None, suspended=None, cursor=None, limit=1)
    second, end = admin_users.list_clients(ports, search=None, suspended=None, cursor=cursor, limit=1)

    assert [c.client_id for c in by_email] == [CLIENT]
    assert [c.client_id for c in by_phone] == [newer]
    assert [c.client_id for c in suspended] == [CLIENT]
    assert [c.client_id for c in first + second] == [newer, CLIENT]
    assert end is None
    assert first[0].alias.startswith("Bestie #")
