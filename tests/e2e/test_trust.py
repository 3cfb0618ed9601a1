"""What leaves the building, and who a phone number lets in, end to end: pushes show no words unless the client opted
in and never a client's real name where anonymity applies; a crisis signal nobody is on duty for is escalated; a
mitra's phone on a new Firebase account waits for an admin; a client's takeover does not open the past."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
import requests

from emulators.simulator import App, AuthEmulator
from emulators.stack import PROJECT, LocalStack
from shared.adapters.postgres.database import Database
from tests.support.delivery import pushes_to, register_device
from tests.support.people import Pair, pair_up, uid_of

pytestmark = pytest.mark.needs_gcloud


def _send(app: App, session_id: str, text: str) -> str:
    reply = app.post("chat_send", {"session_id": session_id, "client_message_id": str(uuid.uuid4()), "text": text})
    assert reply.status == 200, reply.body
    return str(reply.body["message_id"])


def _message_push(stack: LocalStack, token: str, message_id: str, *, timeout: float = 15) -> dict[str, Any]:
    """The one push this device received for this message, waited for."""
    deadline = time.monotonic() + timeout
    while True:
        found = [p for p in pushes_to(stack, token, timeout=0) if p["data"].get("message_id") == message_id]
        if found or time.monotonic() > deadline:
            (push,) = found
            return push
        time.sleep(0.1)


# -- pushes ----------------------------------------------------------------------------------------------------------


def test_pushes_show_no_words_by_default_and_the_client_s_own_only_when_they_opt_in(
    stack: LocalStack, paired: Callable[..., Pair]
) -> None:
    pair = paired()
    client_token, mitra_token = register_device(pair.client), register_device(pair.mitra)
    assert pair.client.get("client_profile").body["push_previews"] is False, "off by default"

    to_mitra = _send(pair.client, pair.session_id, "aku capek banget sama semuanya")
    to_client = _send(pair.mitra, pair.session_id, "aku dengar kamu, ceritakan pelan-pelan")
    for token, message_id in ((mitra_token, to_mitra), (client_token, to_client)):
        push = _message_push(stack, token, message_id)
        assert push["notification"] == {"title": "Halo Bestie", "body": "Pesan baru"}
        assert "capek" not in str(push) and "dengar" not in str(push)

    opted = pair.client.post("client_profile", {"push_previews": True})
    assert opted.status == 200 and opted.body["push_previews"] is True, opted.body
    assert pair.client.get("client_profile").body["push_previews"] is True
    shown = _send(pair.mitra, pair.session_id, "kamu sudah makan hari ini?")
    hidden = _send(pair.client, pair.session_id, "belum, ga nafsu")

    assert _message_push(stack, client_token, shown)["notification"]["body"] == ("kamu sudah makan hari ini?")
    push = _message_push(stack, mitra_token, hidden)
    assert push["notification"]["body"] == "Pesan baru", "a mitra's lock screen never shows a client's words"

    off = pair.client.post("client_profile", {"push_previews": False})
    assert off.status == 200 and off.body["push_previews"] is False
    again = _send(pair.mitra, pair.session_id, "oke, nanti makan ya")
    assert _message_push(stack, client_token, again)["notification"]["body"] == "Pesan baru"

    bad = pair.client.post("client_profile", {"push_previews": "yes please"})
    assert bad.status == 400 and "push_previews" in str(bad.body), bad.body


def test_a_mitra_s_offer_push_never_shows_an_anonymous_client_s_real_name(
    stack: LocalStack, new_client: Callable[..., App], new_mitra: Callable[..., App], quiet_world: None
) -> None:
    mitra = new_mitra()
    token = register_device(mitra)
    client = new_client("Ratna Kusumawardani")
    hidden = client.post("client_profile", {"anonymous": True})
    assert hidden.status == 200, hidden.body
    alias = hidden.body["alias"]

    request = client.post("pairing_request", {"free_trial": True})
    assert request.status == 200 and request.body["status"] == "searching", request.body

    (push,) = [p for p in pushes_to(stack, token) if p["data"]["type"] == "pairing_offer"]
    assert alias in push["notification"]["body"]
    assert "Ratna" not in str(push) and "Kusumawardani" not in str(push)
    assert client.post("pairing_cancel", {"request_id": request.body["request_id"]}).status == 200


# -- a mitra's phone on another Firebase account ---------------------------------------------------------------------


def _mitra_row(db: Database, phone: str) -> dict[str, Any]:
    with db.transaction() as tx:
        (row,) = tx.all("SELECT id::text AS mitra_id, firebase_uid FROM mitras WHERE phone = :p", {"p": phone})
        return dict(row)


def _phone_of(db: Database, app: App) -> str:
    with db.transaction() as tx:
        return str(tx.scalar("SELECT phone FROM mitras WHERE firebase_uid = :uid", {"uid": uid_of(app)}))


def _phone_moves_to_a_new_account(stack: LocalStack, auth: AuthEmulator, old: App, phone: str) -> App:
    """The number leaves the mitra's Firebase user (a new SIM, a number the carrier gave to someone else) and signs in
    as a new Firebase user."""
    elsewhere = f"+6289{uuid.uuid4().int % 10**9:09d}"
    auth.admin("update", {"localId": uid_of(old), "phoneNumber": elsewhere})
    fresh = App(stack.functions_url, auth.sign_in_with_phone(phone))
    assert uid_of(fresh) != uid_of(old), "the emulator made a new Firebase user for the number"
    return fresh


def _pending_relink(admin: App, uid: str) -> dict[str, Any]:
    listed = admin.get("admin_mitra_relinks", status="pending")
    assert listed.status == 200, listed.body
    (relink,) = [r for r in listed.body["relinks"] if r["firebase_uid"] == uid]
    return dict(relink)


def _firestore_as(app: App, path: str) -> int:
    """Read a document as this app's user, so firestore.rules decide."""
    url = f"http://{os.environ['FIRESTORE_EMULATOR_HOST']}/v1/projects/{PROJECT}/databases/(default)/documents/{path}"
    assert app.session is not None
    return requests.get(url, headers={"Authorization": f"Bearer {app.session.id_token}"}, timeout=10).status_code


def test_a_mitra_s_phone_on_a_new_account_waits_and_a_refusal_keeps_it_out(
    stack: LocalStack, auth: AuthEmulator, admin: App, new_mitra: Callable[..., App], halo_db: Database
) -> None:
    mitra = new_mitra()
    phone = _phone_of(halo_db, mitra)
    stranger = _phone_moves_to_a_new_account(stack, auth, mitra, phone)

    asked = stranger.post("mitra_login")
    asked_again = stranger.post("mitra_login")

    assert (asked.status, asked.error_code) == (409, "relink_pending"), asked.body
    assert (asked_again.status, asked_again.error_code) == (409, "relink_pending")
    assert _mitra_row(halo_db, phone)["firebase_uid"] == uid_of(mitra), "the profile stays with the linked account"
    assert stranger.session is not None and stranger.session.refresh().claims.get("role") is None
    assert stranger.get("sessions_list").status == 403
    relink = _pending_relink(admin, uid_of(stranger))
    assert (relink["previous_uid"], relink["phone"], relink["status"]) == (uid_of(mitra), phone, "pending")
    assert stranger.get("admin_mitra_relinks").status == 403, "the control center's only"

    refused = admin.post(
        "admin_mitra_relinks", {"action": "refuse", "relink_id": relink["relink_id"], "note": "bukan mitra kita"}
    )
    assert refused.status == 200 and refused.body["relinks"][0]["status"] == "refused", refused.body
    twice = admin.post("admin_mitra_relinks", {"action": "approve", "relink_id": relink["relink_id"]})
    assert (twice.status, twice.error_code) == (409, "relink_decided")
    bad = admin.post("admin_mitra_relinks", {"action": "maybe", "relink_id": relink["relink_id"]})
    assert bad.status == 400 and "action" in str(bad.body)

    out = stranger.post("mitra_login")
    assert (out.status, out.error_code) == (403, "relink_refused")
    assert _mitra_row(halo_db, phone)["firebase_uid"] == uid_of(mitra)
    assert mitra.get("sessions_list").status == 200, "the mitra's own account is untouched"
    with halo_db.transaction() as tx:
        audited = tx.all(
            "SELECT action, actor_uid FROM audit_log WHERE target = :m AND action LIKE 'mitra.relink%' ORDER BY id",
            {"m": relink["mitra_id"]},
        )
    assert [(a["action"], a["actor_uid"]) for a in audited] == [
        ("mitra.relink_requested", uid_of(stranger)),
        ("mitra.relink_refuse", uid_of(admin)),
    ]


def test_an_approved_relink_moves_the_mitra_and_its_open_session_to_the_new_account(
    stack: LocalStack, auth: AuthEmulator, admin: App, paired: Callable[..., Pair], halo_db: Database
) -> None:
    pair = paired()
    phone = _phone_of(halo_db, pair.mitra)
    old_uid = uid_of(pair.mitra)
    assert _firestore_as(pair.mitra, f"sessions/{pair.session_id}") == 200
    fresh = _phone_moves_to_a_new_account(stack, auth, pair.mitra, phone)
    assert (fresh.post("mitra_login").status, _firestore_as(fresh, f"sessions/{pair.session_id}")) == (409, 403)
    relink = _pending_relink(admin, uid_of(fresh))

    approved = admin.post(
        "admin_mitra_relinks", {"action": "approve", "relink_id": relink["relink_id"], "note": "ganti HP"}
    )

    assert approved.status == 200, approved.body
    assert (approved.body["relinks"][0]["status"], approved.body["relinks"][0]["decided_by"]) == (
        "approved",
        uid_of(admin),
    )
    assert _mitra_row(halo_db, phone)["firebase_uid"] == uid_of(fresh)
    login = fresh.post("mitra_login")
    assert login.status == 200, login.body
    assert fresh.session is not None and fresh.session.refresh().claims["role"] == "mitra"
    assert fresh.get("sessions_list").status == 200
    deadline = time.monotonic() + 10
    while _firestore_as(fresh, f"sessions/{pair.session_id}") != 200 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _firestore_as(fresh, f"sessions/{pair.session_id}") == 200, "the open session is the new account's"
    assert pair.mitra.get("sessions_list").status in (401, 403), "the previous account is signed out"
    assert _firestore_as(pair.mitra, f"sessions/{pair.session_id}") == 403
    assert _send(fresh, pair.session_id, "aku masih di sini, HP-ku baru") != ""
    with halo_db.transaction() as tx:
        audited = tx.all(
            "SELECT old_value, new_value FROM audit_log WHERE target = :m AND action = 'mitra.relink_approve'",
            {"m": relink["mitra_id"]},
        )
    assert [(a["old_value"]["firebase_uid"], a["new_value"]["firebase_uid"]) for a in audited] == [
        (old_uid, uid_of(fresh))
    ]


# -- a client's forced takeover ----------------------------------------------------------------------------------------


def test_a_takeover_keeps_credits_and_trial_but_not_the_past_until_the_previous_login_confirms(
    stack: LocalStack,
    auth: AuthEmulator,
    new_mitra: Callable[..., App],
    halo_db: Database,
    quiet_world: None,
) -> None:
    email = f"sari-{uuid.uuid4().hex[:8]}@example.com"
    old = App(stack.functions_url, auth.sign_in_with_google(email, "Sari"))
    original = old.post("client_register", {"display_name": "Sari"})
    assert original.status == 200, original.body
    assert old.session is not None
    old.session.refresh()
    (google_sub,) = old.session.claims["firebase"]["identities"]["google.com"]
    pair = pair_up(old, new_mitra(), {"free_trial": True})
    _send(old, pair.session_id, "cerita lama yang cuma buatku")
    with halo_db.transaction() as tx:
        tx.execute(
            "UPDATE sessions SET status = 'closed', closed_at = now() WHERE id = CAST(:s AS uuid)",
            {"s": pair.session_id},
        )
    before = old.get("pricing_quote").body
    # The Google account changes its address; another login proves the profile's email (Apple) and takes it over.
    moved_to = f"sari-baru-{uuid.uuid4().hex[:8]}@example.com"
    auth.admin("update", {"localId": uid_of(old), "email": moved_to})
    new = App(stack.functions_url, auth.sign_in_with_apple(email))
    time.sleep(1.1)  # revocation compares whole seconds
    taken = new.post("client_register", {"display_name": "Sari", "force": True})
    assert taken.status == 200 and taken.body["client_id"] == original.body["client_id"], taken.body
    assert new.session is not None
    new.session.refresh()

    assert taken.body["history_from"] is not None and new.get("client_profile").body["history_from"] is not None
    after = new.get("pricing_quote").body
    assert (after["free_trial"], after["credits"]) == (before["free_trial"], before["credits"]), "kept with the profile"
    assert new.get("sessions_list").body["sessions"] == []
    assert new.get("chat_history", session_id=pair.session_id).status == 404
    assert new.get("session_transcript", session_id=pair.session_id).status == 404
    exported = new.get("client_data_export")
    assert exported.status == 200 and (exported.body["sessions"], exported.body["messages"]) == ([], [])
    assert "cerita lama" not in str(exported.body)
    assert _firestore_as(new, f"sessions/{pair.session_id}") == 403
    itself = new.post("client_history_confirm")
    assert (itself.status, itself.error_code) == (404, "no_takeover"), "the new login cannot vouch for itself"

    previous = App(stack.functions_url, auth.sign_in_with_google(moved_to, "Sari", sub=google_sub))
    assert uid_of(previous) == uid_of(old), "the previous login, by its Google account"
    confirmed = previous.post("client_history_confirm")

    assert confirmed.status == 200 and confirmed.body["client_id"] == original.body["client_id"], confirmed.body
    assert new.get("client_profile").body["history_from"] is None
    assert [s["session_id"] for s in new.get("sessions_list").body["sessions"]] == [pair.session_id]
    transcript = new.get("session_transcript", session_id=pair.session_id)
    assert transcript.status == 200
    assert "cerita lama yang cuma buatku" in [m["text"] for m in transcript.body["messages"]]
    again = previous.post("client_history_confirm")
    assert (again.status, again.error_code) == (404, "no_takeover")
    with halo_db.transaction() as tx:
        audited = tx.all(
            "SELECT action, actor_uid FROM audit_log WHERE target = :c AND action LIKE 'client.%' ORDER BY id",
            {"c": original.body["client_id"]},
        )
    assert [(a["action"], a["actor_uid"]) for a in audited if a["action"] != "client.export"] == [
        ("client.takeover", uid_of(new)),
        ("client.history_confirmed", uid_of(old)),
    ]
