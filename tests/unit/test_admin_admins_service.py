"""Who may run the control center, as stories on the in-memory unit of work (tests/support/fakes.py): granting the
role to an email sign-in, revoking another admin's, and who is on duty. The same with Firebase Auth:
tests/e2e/test_admin.py."""

from __future__ import annotations

import uuid

import pytest

from shared.adapters.identity_cache import IdentityCache
from shared.domain.roles import Role
from shared.errors import Conflict, NotFound
from shared.services import admin_admins, identity
from tests.support.fake_accounts import FakeIdentityProvider, add_admin, add_client
from tests.support.fakes import FakeDatabase, FakePorts, fake_ports

ME = "uid-admin"
MY_ID = "a0000000-0000-4000-8000-000000000001"


@pytest.fixture
def db() -> FakeDatabase:
    database = FakeDatabase()
    add_admin(database, MY_ID, firebase_uid=ME)
    return database


@pytest.fixture
def ports(db: FakeDatabase) -> FakePorts:
    return fake_ports(db)


@pytest.fixture
def idp() -> FakeIdentityProvider:
    return FakeIdentityProvider(emails={"ops@halo.local": "uid-ops", "sari@example.com": "uid-sari"})


@pytest.fixture
def identities() -> IdentityCache:
    return IdentityCache(ttl_s=60)


def test_an_admin_makes_another_and_revokes_them(
    ports: FakePorts, db: FakeDatabase, idp: FakeIdentityProvider, identities: IdentityCache
) -> None:
    assert identity.resolve(ports, identities, "uid-ops").role is None

    granted = admin_admins.grant(ports, idp, identities, ME, "Ops@Halo.local")

    assert (granted.email, granted.on_duty, idp.roles["uid-ops"]) == ("ops@halo.local", True, "admin")
    assert identity.resolve(ports, identities, "uid-ops").role is Role.ADMIN, "the instance forgot its old answer"
    assert "ops@halo.local" in [a.email for a in admin_admins.list_admins(ports)]

    admin_admins.revoke(ports, idp, identities, ME, granted.admin_id)

    assert (idp.roles["uid-ops"], idp.revoked) == (None, ["uid-ops"])
    assert identity.resolve(ports, identities, "uid-ops").role is None
    assert [row["action"] for row in db.audit] == ["admin.grant", "admin.revoke"]


def test_a_client_or_unknown_sign_in_is_not_made_an_admin(
    ports: FakePorts, db: FakeDatabase, idp: FakeIdentityProvider, identities: IdentityCache
) -> None:
    add_client(db, "c1", firebase_uid="uid-sari")

    with pytest.raises(Conflict) as refused:
        admin_admins.grant(ports, idp, identities, ME, "sari@example.com")
    with pytest.raises(NotFound):
        admin_admins.grant(ports, idp, identities, ME, "nobody@example.com")

    assert refused.value.code == "role_conflict"
    assert idp.roles == {} and db.audit == []


def test_an_admin_cannot_revoke_their_own_role(
    ports: FakePorts, db: FakeDatabase, idp: FakeIdentityProvider, identities: IdentityCache
) -> None:
    with pytest.raises(Conflict) as refused:
        admin_admins.revoke(ports, idp, identities, ME, MY_ID)
    with pytest.raises(NotFound):
        admin_admins.revoke(ports, idp, identities, ME, str(uuid.uuid4()))

    assert refused.value.code == "cannot_revoke_self"
    assert MY_ID in db.table("admins") and idp.revoked == []


def test_going_off_duty_is_audited_once(ports: FakePorts, db: FakeDatabase) -> None:
    off = admin_admins.set_on_duty(ports, ME, MY_ID, False)
    admin_admins.set_on_duty(ports, ME, MY_ID, False)

    assert off.on_duty is False
    assert [(row["old"], row["new"]) for row in db.audit] == [({"on_duty": True}, {"on_duty": False})]
