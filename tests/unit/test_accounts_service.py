"""Accounts as stories on the in-memory unit of work (tests/support/fakes.py): registering clients, taking a profile
over, mitras signing in, and who a uid is. The same rules on PostgreSQL and the Auth emulator are proven by
tests/e2e/test_accounts.py."""

from __future__ import annotations

import time

import pytest

from shared.adapters.identity_cache import IdentityCache
from shared.domain.chat import Participant
from shared.domain.roles import Role
from shared.errors import Conflict, Forbidden, NotFound
from shared.services import accounts, admin_mitras, chat, identity
from tests.support.fake_accounts import FakeIdentityProvider, FakeSignIn, add_admin, add_client, add_mitra
from tests.support.fake_chat import add_session
from tests.support.fakes import FakeDatabase, FakePorts, fake_ports

PHONE = "+6281234567890"


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


def _register(
    ports: FakePorts, idp: FakeIdentityProvider, identities: IdentityCache, sign_in: FakeSignIn, *, force: bool = False
) -> accounts.Client:
    return accounts.register_client(ports, idp, identities, sign_in, "Sari", force=force)


def test_a_google_sign_in_registers_once_and_gets_the_client_role(
    ports: FakePorts, idp: FakeIdentityProvider, identities: IdentityCache, db: FakeDatabase
) -> None:
    sign_in = FakeSignIn("uid-1", "google.com", email="sari@example.com")
    identity.resolve(ports, identities, "uid-1")  # the call's authentication remembered nobody

    first = _register(ports, idp, identities, sign_in)
    again = accounts.register_client(ports, idp, identities, sign_in, "Someone Else", force=False)

    assert again == first and first.display_name == "Sari" and first.email == "sari@example.com"
    assert first.alias == f"Bestie #{first.alias_number}" and 1000 <= first.alias_number < 10_000
    assert len(db.table("clients")) == 1
    assert idp.roles == {"uid-1": "client"}
    assert identity.resolve(ports, identities, "uid-1").role is Role.CLIENT, "this instance forgot its old answer"


def test_only_google_apple_and_phone_sign_ins_register(
    ports: FakePorts, idp: FakeIdentityProvider, identities: IdentityCache, db: FakeDatabase
) -> None:
    with pytest.raises(Forbidden) as refused:
        _register(ports, idp, identities, FakeSignIn("uid-1", "password", email="x@example.com"))
    assert refused.value.code == "unsupported_sign_in"
    assert db.table("clients") == {} and idp.roles == {}


def test_a_mitra_s_or_an_admin_s_sign_in_does_not_register_as_a_client(
    ports: FakePorts, idp: FakeIdentityProvider, identities: IdentityCache, db: FakeDatabase
) -> None:
    add_mitra(db, "m1", phone=PHONE, firebase_uid="uid-mitra", active=False)
    add_admin(db, "a1", firebase_uid="uid-admin")

    for uid in ("uid-mitra", "uid-admin"):
        with pytest.raises(Conflict) as refused:
            _register(ports, idp, identities, FakeSignIn(uid, "phone", phone_number=PHONE))
        assert refused.value.code == "role_conflict"
    assert db.table("clients") == {}


def test_a_second_sign_in_for_the_same_phone_takes_the_profile_over_only_with_force_and_fresh(
    ports: FakePorts, idp: FakeIdentityProvider, identities: IdentityCache, db: FakeDatabase
) -> None:
    original = _register(ports, idp, identities, FakeSignIn("uid-old", "phone", phone_number=PHONE))
    fresh = FakeSignIn("uid-new", "phone", phone_number=PHONE, auth_time=int(time.time()))
    stale = FakeSignIn("uid-new", "phone", phone_number=PHONE, auth_time=int(time.time()) - 600)

    with pytest.raises(Conflict) as exists:
        _register(ports, idp, identities, fresh)
    with pytest.raises(Forbidden) as not_fresh:
        _register(ports, idp, identities, stale, force=True)
    taken = _register(ports, idp, identities, fresh, force=True)

    assert (exists.value.code, not_fresh.value.code) == ("account_exists", "recent_sign_in_required")
    assert taken.client_id == original.client_id and taken.firebase_uid == "uid-new"
    assert idp.roles == {"uid-old": None, "uid-new": "client"} and idp.revoked == ["uid-old"]
    assert [(a["action"], a["old"], a["new"]) for a in db.audit] == [
        ("client.takeover", {"firebase_uid": "uid-old"}, {"firebase_uid": "uid-new"})
    ]


def test_a_suspended_client_is_refused_and_nothing_changes(
    ports: FakePorts, idp: FakeIdentityProvider, identities: IdentityCache, db: FakeDatabase
) -> None:
    add_client(db, "c1", firebase_uid="uid-old", phone=PHONE, suspended_at=db.now)
    fresh = FakeSignIn("uid-new", "phone", phone_number=PHONE, auth_time=int(time.time()))

    with pytest.raises(Forbidden) as refused:
        _register(ports, idp, identities, fresh, force=True)

    assert refused.value.code == "suspended"
    assert db.table("clients")["c1"]["firebase_uid"] == "uid-old", "the takeover rolled back"
    assert db.audit == [] and idp.roles == {}


def test_a_client_reads_and_changes_their_profile(ports: FakePorts, db: FakeDatabase) -> None:
    add_client(db, "c1", firebase_uid="uid-1", display_name="Sari")

    changed = accounts.update_client(ports, "c1", display_name=None, anonymous=True)

    assert (changed.display_name, changed.anonymous) == ("Sari", True)
    assert accounts.get_client(ports, "c1") == changed
    with pytest.raises(NotFound):
        accounts.get_client(ports, "c2")


def test_a_client_chooses_the_language_of_what_the_backend_writes_to_them(ports: FakePorts, db: FakeDatabase) -> None:
    add_client(db, "c1", firebase_uid="uid-1", display_name="Sari")
    assert accounts.get_client(ports, "c1").locale == "id", "Indonesian until chosen"

    changed = accounts.update_client(ports, "c1", display_name=None, anonymous=None, locale="en")

    assert changed.locale == "en" and changed.display_name == "Sari"
    assert accounts.update_client(ports, "c1", display_name="Sari W", anonymous=None).locale == "en", "kept"


def test_a_mitra_chooses_a_language_at_sign_in_and_keeps_it(
    ports: FakePorts, idp: FakeIdentityProvider, identities: IdentityCache, db: FakeDatabase
) -> None:
    add_mitra(db, "m1", phone=PHONE)
    sign_in = FakeSignIn("uid-m", "phone", phone_number=PHONE)
    assert accounts.mitra_login(ports, idp, identities, sign_in).locale == "id"

    assert accounts.mitra_login(ports, idp, identities, sign_in, locale="en").locale == "en"
    assert accounts.mitra_login(ports, idp, identities, sign_in).locale == "en", "a sign-in naming none keeps it"
    assert db.table("mitras")["m1"]["locale"] == "en"


def test_a_mitra_s_first_sign_in_links_and_another_account_on_the_phone_waits_for_an_admin(
    ports: FakePorts, idp: FakeIdentityProvider, identities: IdentityCache, db: FakeDatabase
) -> None:
    add_mitra(db, "m1", phone=PHONE)
    add_admin(db, "a1", firebase_uid="uid-admin")
    mitra = accounts.mitra_login(ports, idp, identities, FakeSignIn("uid-m", "phone", phone_number=PHONE))
    assert (mitra.mitra_id, mitra.display_name, mitra.phone) == ("m1", "Mitra Anisa", PHONE)
    assert db.table("mitras")["m1"]["firebase_uid"] == "uid-m" and idp.roles == {"uid-m": "mitra"}

    new_phone = FakeSignIn("uid-new", "phone", phone_number=PHONE)
    for _ in range(2):
        with pytest.raises(Conflict) as pending:
            accounts.mitra_login(ports, idp, identities, new_phone)
        assert pending.value.code == "relink_pending"
    assert db.table("mitras")["m1"]["firebase_uid"] == "uid-m", "the profile stays with the linked account"
    assert "uid-new" not in idp.roles and idp.revoked == []
    (asked,) = admin_mitras.list_relinks(ports, status="pending", cursor=None, limit=10)[0]
    assert (asked.mitra_id, asked.firebase_uid, asked.previous_uid) == ("m1", "uid-new", "uid-m")

    approved = admin_mitras.decide_relink(
        ports, idp, identities, "uid-admin", asked.relink_id, approve=True, note="ganti HP, dicek lewat video call"
    )
    assert (approved.status, approved.decided_by) == ("approved", "uid-admin")
    with pytest.raises(Conflict) as again:
        admin_mitras.decide_relink(ports, idp, identities, "uid-admin", asked.relink_id, approve=False, note=None)
    assert again.value.code == "relink_decided"
    assert db.table("mitras")["m1"]["firebase_uid"] == "uid-new"
    assert idp.revoked == ["uid-m"] and idp.roles["uid-m"] is None, "the previous account is signed out"
    assert accounts.mitra_login(ports, idp, identities, new_phone).mitra_id == "m1"
    assert idp.roles["uid-new"] == "mitra"
    assert identity.resolve(ports, identities, "uid-new").account_id == "m1"
    assert [a["action"] for a in db.audit] == ["mitra.relink_requested", "mitra.relink_approve"]


def test_a_refused_relink_keeps_that_account_out(
    ports: FakePorts, idp: FakeIdentityProvider, identities: IdentityCache, db: FakeDatabase
) -> None:
    add_mitra(db, "m1", phone=PHONE, firebase_uid="uid-m")
    stranger = FakeSignIn("uid-recycled", "phone", phone_number=PHONE)
    with pytest.raises(Conflict):
        accounts.mitra_login(ports, idp, identities, stranger)
    (asked,), _ = admin_mitras.list_relinks(ports, status=None, cursor=None, limit=10)

    refused = admin_mitras.decide_relink(ports, idp, identities, "uid-admin", asked.relink_id, approve=False, note=None)

    assert refused.status == "refused"
    with pytest.raises(Forbidden) as out:
        accounts.mitra_login(ports, idp, identities, stranger)
    assert out.value.code == "relink_refused"
    assert db.table("mitras")["m1"]["firebase_uid"] == "uid-m" and idp.revoked == [] and idp.roles == {}
    assert admin_mitras.list_relinks(ports, status="pending", cursor=None, limit=10) == ([], None)


def test_mitra_sign_in_refuses_everyone_else_and_cuts_off_a_deactivated_mitra(
    ports: FakePorts, idp: FakeIdentityProvider, identities: IdentityCache, db: FakeDatabase
) -> None:
    add_mitra(db, "m1", phone=PHONE, active=False)
    add_client(db, "c1", firebase_uid="uid-client")
    add_mitra(db, "m2", phone="+6281100000002")

    refusals = []
    for sign_in in (
        FakeSignIn("uid-g", "google.com", email="g@example.com"),
        FakeSignIn("uid-x", "phone", phone_number="+6289999999999"),
        FakeSignIn("uid-m1", "phone", phone_number=PHONE),
    ):
        with pytest.raises(Forbidden) as refused:
            accounts.mitra_login(ports, idp, identities, sign_in)
        refusals.append(refused.value.code)
    with pytest.raises(Conflict) as client:
        accounts.mitra_login(ports, idp, identities, FakeSignIn("uid-client", "phone", phone_number="+6281100000002"))

    assert refusals == ["not_a_mitra"] * 3 and client.value.code == "role_conflict"
    assert idp.revoked == ["uid-m1"] and idp.roles == {"uid-m1": None}, "a deactivated mitra keeps no session"
    assert db.table("mitras")["m2"]["firebase_uid"] is None


def test_who_a_uid_is_admin_first_a_deactivated_mitra_nobody(ports: FakePorts, db: FakeDatabase) -> None:
    add_admin(db, "a1", firebase_uid="uid-a")
    add_mitra(db, "m1", phone=PHONE, firebase_uid="uid-a")
    add_mitra(db, "m2", phone="+6281100000002", firebase_uid="uid-gone", active=False)
    add_client(db, "c1", firebase_uid="uid-c", suspended_at=db.now)
    cache = IdentityCache(ttl_s=0)

    assert identity.resolve(ports, cache, "uid-a").role is Role.ADMIN
    assert identity.resolve(ports, cache, "uid-gone").role is None
    suspended = identity.resolve(ports, cache, "uid-c")
    assert (suspended.role, suspended.account_id, suspended.suspended) == (Role.CLIENT, "c1", True)
    assert identity.resolve(ports, cache, "uid-nobody").account_id is None


def test_an_identity_is_remembered_for_its_time_to_live_and_forgotten_on_change(
    ports: FakePorts, db: FakeDatabase
) -> None:
    now = [0.0]
    cache = IdentityCache(ttl_s=5, clock=lambda: now[0])
    add_client(db, "c1", firebase_uid="uid-c")
    assert identity.resolve(ports, cache, "uid-c").suspended is False

    db.table("clients")["c1"]["suspended_at"] = db.now
    assert identity.resolve(ports, cache, "uid-c").suspended is False, "remembered"
    now[0] = 5.0
    assert identity.resolve(ports, cache, "uid-c").suspended is True, "looked up again once stale"

    db.table("clients")["c1"]["suspended_at"] = None
    cache.forget("uid-c")
    assert identity.resolve(ports, cache, "uid-c").suspended is False


def test_a_takeover_keeps_the_profile_but_not_its_past_until_the_previous_login_confirms(
    ports: FakePorts, idp: FakeIdentityProvider, identities: IdentityCache, db: FakeDatabase
) -> None:
    email = "sari@example.com"
    original = _register(ports, idp, identities, FakeSignIn("uid-old", "google.com", email=email))
    session_id = "5e551011-0000-4000-8000-0000000000aa"
    add_session(
        db,
        session_id,
        client=dict(db.table("clients")[original.client_id]),
        mitra={"id": "m1", "firebase_uid": "uid-mitra", "display_name": "Mitra Anisa", "active": True},
    )
    db.tick(60)
    now = int(time.time())
    taken = _register(
        ports, idp, identities, FakeSignIn("uid-new", "apple.com", email=email, auth_time=now), force=True
    )
    new_login = Participant(Role.CLIENT, original.client_id, "uid-new")
    reader = chat.Reader(Role.CLIENT, original.client_id, "uid-new")

    assert taken.client_id == original.client_id and taken.history_from == db.now
    assert chat.list_sessions(ports, new_login, cursor=None, limit=10) == ([], None)
    with pytest.raises(NotFound):
        chat.transcript(ports, reader, session_id=session_id)
    mitra = chat.Reader(Role.MITRA, "m1", "uid-mitra")
    assert chat.transcript(ports, mitra, session_id=session_id)[0]["session_id"] == session_id, "the mitra's is theirs"

    refusals = []
    for sign_in in (
        FakeSignIn("uid-new", "google.com", email=email, auth_time=now),
        FakeSignIn("uid-old", "apple.com", email=email, auth_time=now),
        FakeSignIn("uid-old", "google.com", auth_time=now - 600),
    ):
        with pytest.raises((Forbidden, NotFound)) as refused:
            accounts.confirm_history(ports, identities, sign_in)
        refusals.append(refused.value.code)
    assert refusals == ["no_takeover", "another_sign_in_method_required", "recent_sign_in_required"]
    assert chat.list_sessions(ports, new_login, cursor=None, limit=10) == ([], None)

    confirmed = accounts.confirm_history(ports, identities, FakeSignIn("uid-old", "google.com", auth_time=now))

    assert confirmed.client_id == original.client_id
    assert [s["session_id"] for s in chat.list_sessions(ports, new_login, cursor=None, limit=10)[0]] == [session_id]
    assert chat.transcript(ports, reader, session_id=session_id)[0]["session_id"] == session_id
    assert accounts.get_client(ports, original.client_id).history_from is None
    with pytest.raises(NotFound) as again:
        accounts.confirm_history(ports, identities, FakeSignIn("uid-old", "google.com", auth_time=now))
    assert again.value.code == "no_takeover"
    assert [a["action"] for a in db.audit][-2:] == ["client.takeover", "client.history_confirmed"]
