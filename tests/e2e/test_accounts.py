"""Accounts, end to end: each sign-in method through the Auth emulator, then our functions through the gateway."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

import pytest

from emulators.simulator import App, AuthEmulator
from emulators.stack import LocalStack
from shared.adapters.postgres.database import Database


def _email() -> str:
    return f"{uuid.uuid4().hex[:10]}@example.com"


def _phone() -> str:
    return f"+62812{uuid.uuid4().int % 10**8:08d}"


def test_google_sign_in_registers_a_client_and_the_role_claim_appears_after_refresh(
    stack: LocalStack, auth: AuthEmulator
) -> None:
    email = _email()
    app = App(stack.functions_url, auth.sign_in_with_google(email, "Sari"))

    first = app.post("client_register", {"display_name": "  Sari Dewi "})
    again = app.post("client_register", {"display_name": "Someone Else"})

    assert first.status == 200, first.body
    assert first.body["display_name"] == "Sari Dewi"
    assert first.body["email"] == email
    assert first.body["alias"].startswith("Bestie #")
    assert again.status == 200
    assert again.body == first.body, "re-registering the same uid returns the same profile"
    assert app.session is not None
    assert "role" not in app.session.claims
    assert app.session.refresh().claims["role"] == "client"


def test_phone_otp_and_apple_sign_ins_register_clients(stack: LocalStack, auth: AuthEmulator) -> None:
    phone = _phone()
    by_phone = App(stack.functions_url, auth.sign_in_with_phone(phone)).post(
        "client_register", {"display_name": "Rina"}
    )
    by_apple = App(stack.functions_url, auth.sign_in_with_apple(_email())).post(
        "client_register", {"display_name": "Dimas"}
    )

    assert (by_phone.status, by_phone.body["phone"]) == (200, phone)
    assert by_apple.status == 200
    assert by_phone.body["client_id"] != by_apple.body["client_id"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"display_name": " a "}, "display_name"),
        ({"display_name": "x" * 41}, "display_name"),
        ({"display_name": "Sari\u0000"}, "display_name"),
        ({"display_name": "Sari\u200b"}, "display_name"),
        ({"display_name": 42}, "display_name"),
        ({}, "display_name"),
        ({"display_name": "Sari", "force": "yes"}, "force"),
    ],
)
def test_register_refuses_bad_input_with_the_field(
    stack: LocalStack, auth: AuthEmulator, body: dict[str, object], field: str
) -> None:
    reply = App(stack.functions_url, auth.sign_in_with_google(_email())).post("client_register", body)

    assert (reply.status, reply.error_code) == (400, "invalid_request")
    assert field in [item["field"] for item in reply.body["error"]["fields"]]


def test_a_role_sent_with_a_registration_is_ignored_the_account_is_a_client(
    stack: LocalStack, auth: AuthEmulator
) -> None:
    """Unknown fields are ignored, not refused (docs/contract.md, Compatibility): a body cannot choose its role."""
    app = App(stack.functions_url, auth.sign_in_with_google(_email()))

    reply = app.post("client_register", {"display_name": "Sari", "role": "admin"})

    assert reply.status == 200, reply.body
    assert app.session is not None
    assert app.session.refresh().claims["role"] == "client"
    assert app.get("admin_dashboard").status == 403


def test_a_new_login_for_the_same_phone_is_409_then_force_takes_the_profile_over(
    stack: LocalStack, auth: AuthEmulator
) -> None:
    """A client reinstalls; their old Firebase user is gone, the phone signs in as a new uid."""
    phone = _phone()
    old = auth.sign_in_with_phone(phone)
    original = App(stack.functions_url, old).post("client_register", {"display_name": "Sari"}).body
    auth.admin("delete", {"localId": old.uid})
    new = App(stack.functions_url, auth.sign_in_with_phone(phone))
    assert new.session is not None
    assert new.session.uid != old.uid

    conflict = new.post("client_register", {"display_name": "Sari Baru"})
    taken = new.post("client_register", {"display_name": "Sari Baru", "force": True})

    assert (conflict.status, conflict.error_code) == (409, "account_exists")
    assert taken.status == 200, taken.body
    assert taken.body["client_id"] == original["client_id"], "history stays with the profile"
    assert taken.body["display_name"] == "Sari", "a takeover does not rename"
    assert new.session.refresh().claims["role"] == "client"
    assert new.get("client_profile").body["client_id"] == original["client_id"]


def test_a_takeover_revokes_the_old_login(stack: LocalStack, auth: AuthEmulator) -> None:
    """Another Firebase user proves the email the profile was registered with: the profile moves to it and the
    old login (whose Google account has since changed its address) is cut off."""
    email = _email()
    old = App(stack.functions_url, auth.sign_in_with_google(email, "Sari"))
    original = old.post("client_register", {"display_name": "Sari"}).body
    assert old.session is not None
    old.session.refresh()
    auth.admin("update", {"localId": old.session.uid, "email": _email()})
    new = App(stack.functions_url, auth.sign_in_with_apple(email))
    assert new.session is not None
    assert new.session.uid != old.session.uid
    time.sleep(1.1)  # revocation compares whole seconds: the old token must predate it

    taken = new.post("client_register", {"display_name": "Sari", "force": True})

    assert taken.status == 200, taken.body
    assert taken.body["client_id"] == original["client_id"]
    assert (old.get("client_profile").status, old.get("pricing_quote").status) == (403, 403)
    revoked = old.post("client_register", {"display_name": "Sari"})
    assert (revoked.status, revoked.error_code) == (401, "unauthenticated")
    assert "revoked" in revoked.body["error"]["message"]


def test_force_needs_a_fresh_sign_in(stack: LocalStack, auth: AuthEmulator) -> None:
    phone = _phone()
    old = auth.sign_in_with_phone(phone)
    App(stack.functions_url, old).post("client_register", {"display_name": "Sari"})
    auth.admin("delete", {"localId": old.uid})
    session = auth.sign_in_with_phone(phone)
    stale = App(stack.functions_url, session)
    session.id_token = auth.altered_token(session, auth_time=int(time.time()) - 600)

    reply = stale.post("client_register", {"display_name": "Sari", "force": True})

    assert (reply.status, reply.error_code) == (403, "recent_sign_in_required")


def test_client_profile_reads_and_updates_name_and_anonymity(new_client: Callable[..., App]) -> None:
    app = new_client("Sari")

    read = app.get("client_profile")
    updated = app.post("client_profile", {"anonymous": True, "display_name": "Sari D"})
    empty = app.post("client_profile", {})

    assert (read.status, read.body["anonymous"]) == (200, False)
    assert (updated.body["anonymous"], updated.body["display_name"]) == (True, "Sari D")
    assert app.get("client_profile").body == updated.body
    assert (empty.status, empty.error_code) == (400, "invalid_request")


def test_mitra_login_accepts_a_registered_active_phone(stack: LocalStack, auth: AuthEmulator) -> None:
    session = auth.sign_in_with_phone("+6281100000002")
    reply = App(stack.functions_url, session).post("mitra_login")

    assert reply.status == 200, reply.body
    assert (reply.body["display_name"], reply.body["phone"]) == ("Mitra Budi", "+6281100000002")
    assert session.refresh().claims["role"] == "mitra"


@pytest.mark.parametrize("how", ["unknown phone", "google", "email/password"])
def test_mitra_login_refuses_everyone_else(stack: LocalStack, auth: AuthEmulator, how: str) -> None:
    session = {
        "unknown phone": lambda: auth.sign_in_with_phone(_phone()),
        "google": lambda: auth.sign_in_with_google(_email()),
        "email/password": lambda: auth.sign_up_with_email(_email(), "secret-pass-1"),
    }[how]()

    reply = App(stack.functions_url, session).post("mitra_login")

    assert (reply.status, reply.error_code) == (403, "not_a_mitra")


def test_a_deactivated_mitra_is_refused_and_its_tokens_revoked(
    stack: LocalStack, auth: AuthEmulator, halo_db: Database
) -> None:
    phone = _phone()
    with halo_db.transaction() as tx:
        tx.execute("INSERT INTO mitras (phone, display_name, active) VALUES (:p, 'Mitra Lama', false)", {"p": phone})
    session = auth.sign_in_with_phone(phone)
    app = App(stack.functions_url, session)
    time.sleep(1.1)  # revocation compares whole seconds: the token must predate it

    refused = app.post("mitra_login")
    again = app.post("mitra_login")

    assert (refused.status, refused.error_code) == (403, "not_a_mitra")
    assert (again.status, again.error_code) == (401, "unauthenticated"), "the token was revoked"


def test_admins_come_from_the_seed_and_self_service_sign_ups_get_no_role(stack: LocalStack, auth: AuthEmulator) -> None:
    admin = auth.sign_in_with_email("admin@halo.local", "halo-dev-admin")
    stranger = App(stack.functions_url, auth.sign_up_with_email(_email(), "secret-pass-1"))

    assert admin.claims["role"] == "admin"
    assert stranger.session is not None
    assert "role" not in stranger.session.refresh().claims
    assert stranger.get("pricing_quote").status == 403
    register = stranger.post("client_register", {"display_name": "Sneaky"})
    assert (register.status, register.error_code) == (403, "unsupported_sign_in")


def test_a_suspended_client_is_refused_everywhere(new_client: Callable[..., App], halo_db: Database) -> None:
    app = new_client()
    client_id = app.get("client_profile").body["client_id"]
    with halo_db.transaction() as tx:
        tx.execute("UPDATE clients SET suspended_at = now() WHERE id = CAST(:id AS uuid)", {"id": client_id})
    time.sleep(0.5)  # the gateway's identity cache (0.3 s in tests)

    for reply in (
        app.get("pricing_quote"),
        app.get("client_profile"),
        app.post("client_register", {"display_name": "Sari"}),
    ):
        assert (reply.status, reply.error_code) == (403, "suspended")
