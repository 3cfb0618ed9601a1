"""Trust and safety end to end: crisis signals reach the control center, the on-duty admin's phone and the client's
session; a client's data is exported and deleted on request; old message texts are erased; and no log line of the
whole stack carries a message, a phone number or an email."""

from __future__ import annotations

import json
import os
import time
import uuid
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
import requests
from firebase_admin.auth import UserNotFoundError

from emulators.pubsub_wiring import detach, wire_push_subscriptions
from emulators.seed import ADMIN_EMAIL
from emulators.simulator import App, AuthEmulator, Watch
from emulators.stack import PROJECT, LocalStack
from shared.adapters.firebase_auth import FirebaseAuth
from shared.adapters.postgres.database import Database
from tests.support.delivery import push_event, pushes_to, register_device
from tests.support.people import Pair, client_id_of, pair_up, pay_checkout, send_text, uid_of

pytestmark = pytest.mark.needs_gcloud

RISKY = "aku udah ga kuat lagi... pengen mattiii aja"
HOTLINES = "119 ext 8 (SEJIWA), 112, 021-500-454"


def _event(db: Database, message_id: str, text: str) -> dict[str, Any]:
    """The one `chat-messages` event committed with a message, its data as Pub/Sub carried it: once published, the
    outbox row keeps the event without its words (docs/privacy.md), so the text the test sent is put back."""
    with db.transaction() as tx:
        (row,) = tx.all(
            "SELECT payload -> 'data' AS data FROM outbox WHERE destination = 'chat-messages'"
            " AND payload -> 'data' ->> 'message_id' = :m",
            {"m": message_id},
        )
    return {**row["data"], "text": text}


def _firestore_as(app: App, path: str) -> int:
    """Read a document as this app's user, so firestore.rules decide (the Admin path would bypass them)."""
    url = f"http://{os.environ['FIRESTORE_EMULATOR_HOST']}/v1/projects/{PROJECT}/databases/(default)/documents/{path}"
    assert app.session is not None
    return requests.get(url, headers={"Authorization": f"Bearer {app.session.id_token}"}, timeout=10).status_code


def _flags(db: Database, session_id: str) -> list[dict[str, Any]]:
    with db.transaction() as tx:
        return tx.all(
            "SELECT id::text, message_id::text, category, hotline_message_id::text FROM safety_flags"
            " WHERE session_id = CAST(:s AS uuid) ORDER BY created_at",
            {"s": session_id},
        )


def _audited(db: Database, action: str, target: str) -> list[dict[str, Any]]:
    with db.transaction() as tx:
        return tx.all(
            "SELECT actor_uid, old_value, new_value FROM audit_log WHERE action = :a AND target = :t ORDER BY id",
            {"a": action, "t": target},
        )


def _reads(db: Database, admin_uid: str, function: str) -> list[dict[str, Any]]:
    """An admin's reads of a function, one row per hour (functions/_http.py `_audit_read`)."""
    with db.transaction() as tx:
        return tx.all(
            "SELECT reads, queries FROM audit_reads WHERE actor_uid = :uid AND function = :f ORDER BY hour",
            {"uid": admin_uid, "f": function},
        )


def _close(db: Database, session_id: str, days_ago: int = 0) -> None:
    """As the session timer would have left it (arranged, so a test need not wait out a session)."""
    with db.transaction() as tx:
        tx.execute(
            "UPDATE sessions SET status = 'closed', closed_at = now() - make_interval(days => :d)"
            " WHERE id = CAST(:s AS uuid)",
            {"s": session_id, "d": days_ago},
        )


# -- crisis signals --------------------------------------------------------------------------------------------------


def test_a_risky_message_alerts_the_control_center_pushes_the_admin_and_shows_the_hotline(
    stack: LocalStack,
    admin: App,
    paired: Callable[..., Pair],
    halo_db: Database,
    watches: Callable[[Watch], Watch],
    app_config: Callable[..., None],
) -> None:
    app_config(hotline_numbers=HOTLINES)
    pair = paired()
    admin_token = register_device(admin)
    alerts = watches(Watch.collection("admin_alerts"))
    messages = watches(Watch.collection(f"sessions/{pair.session_id}/messages"))
    started = time.monotonic()

    sent = send_text(pair.client, pair.session_id, RISKY)

    alert = next(
        doc
        for doc in alerts.wait_for(
            lambda docs: any(d.get("session_id") == pair.session_id for d in docs.values()), timeout=10
        ).values()
        if doc.get("session_id") == pair.session_id
    )
    assert time.monotonic() - started < 5, "the alert reaches the control center within seconds (~0.2 s here)"
    with halo_db.transaction() as tx:
        alias_number = tx.scalar(
            "SELECT alias_number FROM clients WHERE firebase_uid = :uid", {"uid": uid_of(pair.client)}
        )
    assert alert["client_alias"] == f"Bestie #{alias_number}"
    assert (alert["category"], alert["status"], alert["message_id"]) == (
        "suicidal_ideation",
        "open",
        sent["message_id"],
    )
    assert set(alert) - {"_versions"} == {
        "alert_id",
        "session_id",
        "message_id",
        "client_alias",
        "category",
        "status",
        "created_at",
    }, "the fields' versions (shared/domain/projection.py) besides"
    assert "mati" not in json.dumps(alert, default=str), "never the message's words"
    docs = messages.wait_for(lambda d: len(d) == 2).values()
    card = next(doc for doc in docs if doc["kind"] == "system")
    own = next(doc for doc in docs if doc["kind"] == "text")
    assert (card["sender_role"], card["seq"]) == ("system", 2)
    assert HOTLINES in card["text"]
    assert (own["text"], own["seq"], own["sender_role"]) == (RISKY, 1, "client"), "the message itself is untouched"
    (push,) = pushes_to(stack, admin_token)
    assert push["data"] == {"type": "safety_alert", "alert_id": alert["alert_id"], "session_id": pair.session_id}
    assert "mati" not in json.dumps(push)
    assert _firestore_as(admin, f"admin_alerts/{alert['alert_id']}") == 200
    assert _firestore_as(pair.client, f"admin_alerts/{alert['alert_id']}") == 403
    assert _firestore_as(pair.mitra, f"admin_alerts/{alert['alert_id']}") == 403


def test_a_redelivered_check_raises_nothing_twice_and_other_messages_are_not_flagged(
    stack: LocalStack, admin: App, paired: Callable[..., Pair], halo_db: Database, watches: Callable[[Watch], Watch]
) -> None:
    pair = paired()
    admin_token = register_device(admin)
    mitra_token = register_device(pair.mitra)
    messages = watches(Watch.collection(f"sessions/{pair.session_id}/messages"))
    question = send_text(pair.mitra, pair.session_id, "Apakah kamu pernah kepikiran bunuh diri?")
    ordinary = send_text(pair.client, pair.session_id, "hp aku mati tadi, maaf ya")
    risky = send_text(pair.client, pair.session_id, "iya... kadang aku pengen bundir")
    later = send_text(pair.client, pair.session_id, "I want to kill myself")
    messages.wait_for(lambda d: len(d) == 5)
    pushes_to(stack, admin_token, at_least=2)

    # Redeliver the events exactly as committed: the risky one twice more, and the mitra's question once.
    for _ in range(2):
        again = push_event(
            stack, "on_chat_message", _event(halo_db, risky["message_id"], "iya... kadang aku pengen bundir")
        )
        assert again.status_code in (200, 204), again.text
    again = push_event(
        stack, "on_chat_message", _event(halo_db, question["message_id"], "Apakah kamu pernah kepikiran bunuh diri?")
    )
    assert again.status_code in (200, 204), again.text

    flags = _flags(halo_db, pair.session_id)
    # The two checks may run at once, so either flag may be the one that showed the card.
    assert sorted(flag["message_id"] for flag in flags) == sorted([risky["message_id"], later["message_id"]])
    assert [flag["category"] for flag in flags] == ["suicidal_ideation", "suicidal_ideation"]
    assert sum(flag["hotline_message_id"] is not None for flag in flags) == 1, "one card"
    time.sleep(1)
    assert len(pushes_to(stack, admin_token)) == 2, "one push per alert, redelivery or not"
    to_mitra = [
        p["data"]["message_id"] for p in pushes_to(stack, mitra_token, at_least=3) if p["data"]["type"] == "message"
    ]
    assert sorted(to_mitra) == sorted(m["message_id"] for m in (ordinary, risky, later)), "one push per message"
    docs = messages.latest.values()
    assert Counter((doc["kind"], doc["sender_role"]) for doc in docs) == {
        ("text", "mitra"): 1,
        ("text", "client"): 3,
        ("system", "system"): 1,
    }
    card = next(doc for doc in docs if doc["kind"] == "system")
    assert card["seq"] > risky["seq"], "the card follows the message that raised it"
    history = pair.client.get("chat_history", session_id=pair.session_id).body["messages"]
    texts = {m["message_id"]: m["text"] for m in history}
    assert texts[question["message_id"]] == "Apakah kamu pernah kepikiran bunuh diri?"
    assert texts[ordinary["message_id"]] == "hp aku mati tadi, maaf ya"
    roles = [_event(halo_db, m["message_id"], "")["sender_role"] for m in (question, ordinary, risky)]
    assert roles == ["mitra", "client", "client"], "one event per message; on_chat_message checks the client's only"


def test_only_admins_on_duty_are_pushed_and_with_nobody_on_duty_every_admin_is_escalated_to(
    stack: LocalStack,
    auth: AuthEmulator,
    admin: App,
    paired: Callable[..., Pair],
    halo_db: Database,
    watches: Callable[[Watch], Watch],
) -> None:
    pair = paired()
    email = f"jaga-{uuid.uuid4().hex[:8]}@halo.local"
    other = App(stack.functions_url, auth.sign_up_with_email(email, "secret-pass-1"))
    assert other.session is not None
    auth.admin("update", {"localId": other.session.uid, "emailVerified": True})
    granted = admin.post("admin_admins", {"action": "grant", "email": email})
    assert granted.status == 200, granted.body
    other_id = granted.body["admins"][0]["admin_id"]
    other.session.refresh()
    admin_token, other_token = register_device(admin), register_device(other)
    me = next(a for a in admin.get("admin_admins").body["admins"] if a["email"] == ADMIN_EMAIL)
    alerts = watches(Watch.collection("admin_alerts"))

    def duty(admin_id: str, on: bool) -> None:
        reply = admin.post("admin_admins", {"action": "set_on_duty", "admin_id": admin_id, "on_duty": on})
        assert reply.status == 200 and reply.body["admins"][0]["on_duty"] is on, reply.body

    def alert_for(message_id: str) -> str:
        docs = alerts.wait_for(lambda docs: any(d.get("message_id") == message_id for d in docs.values()))
        return next(str(d["alert_id"]) for d in docs.values() if d.get("message_id") == message_id)

    try:
        duty(other_id, False)
        first = alert_for(send_text(pair.client, pair.session_id, "i want to end my life")["message_id"])
        (pushed,) = pushes_to(stack, admin_token)
        assert pushed["data"] == {"type": "safety_alert", "alert_id": first, "session_id": pair.session_id}
        assert pushes_to(stack, other_token, timeout=0) == [], "off duty, while another admin is on duty"

        duty(me["admin_id"], False)
        second = alert_for(send_text(pair.client, pair.session_id, "aku pengen bunuh diri aja")["message_id"])
        for token, count in ((admin_token, 2), (other_token, 1)):
            escalated = pushes_to(stack, token, at_least=count)[-1]
            assert escalated["data"] == {
                "type": "safety_alert",
                "alert_id": second,
                "session_id": pair.session_id,
                "escalated": "true",
            }
            assert escalated["notification"]["body"].startswith("Tidak ada admin yang bertugas")
    finally:
        duty(me["admin_id"], True)
        assert admin.post("admin_admins", {"action": "revoke", "admin_id": other_id}).status == 200

    deadline = time.monotonic() + 10
    while True:
        lines = [
            json.loads(line)
            for line in (stack.log_dir / "gateway.log").read_text(errors="replace").splitlines()
            if "crisis signal escalated" in line and line.startswith("{")
        ]
        paged = [line for line in lines if line.get("alert") == second]
        if paged or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert [(line["severity"], line["admins_pushed"]) for line in paged] == [("ERROR", 2)], "the page's log line"
    assert not any(line.get("alert") == first for line in lines), "an admin was on duty for the first"
    with halo_db.transaction() as tx:
        changes = tx.all(
            "SELECT actor_uid, old_value, new_value FROM audit_log WHERE action = 'admin.on_duty' AND target = :t"
            " ORDER BY id DESC LIMIT 2",
            {"t": me["admin_id"]},
        )
    assert [(c["old_value"], c["new_value"]) for c in changes] == [
        ({"on_duty": False}, {"on_duty": True}),
        ({"on_duty": True}, {"on_duty": False}),
    ]
    assert {c["actor_uid"] for c in changes} == {uid_of(admin)}


def test_admins_list_and_acknowledge_alerts_audited_and_projected(
    admin: App, paired: Callable[..., Pair], halo_db: Database, watches: Callable[[Watch], Watch]
) -> None:
    pair = paired()
    alerts = watches(Watch.collection("admin_alerts"))
    send_text(pair.client, pair.session_id, "self-harm is all I think about")
    alerts.wait_for(lambda docs: any(d.get("session_id") == pair.session_id for d in docs.values()))
    (flag,) = _flags(halo_db, pair.session_id)

    open_alerts = admin.get("admin_alerts", status="unacknowledged", limit=200)
    acknowledged = admin.post(
        "admin_alerts", {"action": "acknowledge", "alert_id": flag["id"], "note": "Mitra informed, client safe"}
    )
    again = admin.post("admin_alerts", {"action": "acknowledge", "alert_id": flag["id"], "note": "second"})

    assert open_alerts.status == 200, open_alerts.body
    listed = next(a for a in open_alerts.body["alerts"] if a["alert_id"] == flag["id"])
    assert (listed["category"], listed["session_id"], listed["acknowledged_at"]) == (
        "self_harm",
        pair.session_id,
        None,
    )
    assert acknowledged.status == 200, acknowledged.body
    done = acknowledged.body["alerts"][0]
    assert (done["acknowledged_by"], done["note"]) == (uid_of(admin), "Mitra informed, client safe")
    assert again.body["alerts"][0] == done, "the first acknowledgement stands"
    doc = alerts.wait_for(lambda docs: docs.get(f"admin_alerts/{flag['id']}", {}).get("status") == "acknowledged")[
        f"admin_alerts/{flag['id']}"
    ]
    assert doc["acknowledged_by"] == uid_of(admin)
    assert "note" not in doc
    assert flag["id"] not in [a["alert_id"] for a in admin.get("admin_alerts", status="unacknowledged").body["alerts"]]
    assert flag["id"] in [a["alert_id"] for a in admin.get("admin_alerts", status="acknowledged").body["alerts"]]
    audit = _audited(halo_db, "alert.acknowledge", flag["id"])
    assert [(a["actor_uid"], a["new_value"]) for a in audit] == [
        (uid_of(admin), {"acknowledged": True, "note": "Mitra informed, client safe"})
    ]
    assert _reads(halo_db, uid_of(admin), "admin_alerts"), "the read is counted (audit_reads)"
    missing = admin.post("admin_alerts", {"action": "acknowledge", "alert_id": str(uuid.uuid4())})
    assert (missing.status, missing.error_code) == (404, "not_found")
    assert admin.get("admin_alerts", status="maybe").status == 400


def test_the_hotline_numbers_are_an_audited_setting_with_validation(
    admin: App, app_config: Callable[..., None]
) -> None:
    app_config(hotline_numbers="119 ext 8 (SEJIWA), 112")

    changed = admin.post("admin_config", {"settings": {"hotline_numbers": "119 ext 8, 112, 021-500-454"}})
    no_number = admin.post("admin_config", {"settings": {"hotline_numbers": "call someone"}})
    short_retention = admin.post("admin_config", {"settings": {"retention_days": 29}})

    assert changed.status == 200, changed.body
    assert changed.body["settings"]["hotline_numbers"] == "119 ext 8, 112, 021-500-454"
    assert changed.body["settings"]["retention_days"] == 365
    assert (no_number.status, no_number.body["error"]["fields"][0]["field"]) == (400, "settings.hotline_numbers")
    assert (short_retention.status, short_retention.body["error"]["fields"][0]["field"]) == (
        400,
        "settings.retention_days",
    )


# -- a client's data: export and deletion ----------------------------------------------------------------------------


def test_a_clients_data_is_exported_as_json_and_the_export_is_audited(
    stack: LocalStack,
    admin: App,
    new_client: Callable[..., App],
    new_mitra: Callable[..., App],
    halo_db: Database,
    quiet_world: None,
) -> None:
    client = new_client("Ekspor")
    transaction_id = pay_checkout(client, halo_db, stack.ports.xendit, {"tier_id": "sesi-30", "purpose": "session"})
    pair = pair_up(client, new_mitra(), {"free_trial": True})
    send_text(pair.client, pair.session_id, "halo, aku mau cerita")
    send_text(pair.mitra, pair.session_id, "tentu, aku dengarkan")
    client_id = client_id_of(halo_db, client)

    exported = admin.get("admin_client_data", client_id=client_id, reason="permintaan klien")

    assert exported.status == 200, exported.body
    body = exported.body
    assert (body["profile"]["client_id"], body["profile"]["display_name"]) == (client_id, "Ekspor")
    assert body["profile"]["email"].endswith("@example.com")
    assert [s["session_id"] for s in body["sessions"]] == [pair.session_id]
    assert [(m["sender_role"], m["text"]) for m in body["messages"]] == [
        ("client", "halo, aku mau cerita"),
        ("mitra", "tentu, aku dengarkan"),
    ]
    assert [(t["transaction_id"], t["status"], t["amount"]) for t in body["transactions"]] == [
        (transaction_id, "paid", 35000)
    ]
    audit = _audited(halo_db, "client.export", client_id)[-1]
    assert (audit["actor_uid"], audit["new_value"]) == (uid_of(admin), {"messages": 2, "reason": "permintaan klien"})
    asked = [query for row in _reads(halo_db, uid_of(admin), "admin_client_data") for query in row["queries"]]
    assert {"client_id": client_id, "reason": "permintaan klien"} in asked
    assert admin.get("admin_client_data", client_id=str(uuid.uuid4()), reason="permintaan klien").status == 404
    assert admin.get("admin_client_data", client_id="nope", reason="permintaan klien").status == 400
    assert client.get("admin_client_data", client_id=client_id, reason="permintaan klien").status == 403


def test_deleting_a_client_anonymises_them_erases_texts_and_keeps_the_ledger(
    stack: LocalStack,
    admin: App,
    new_client: Callable[..., App],
    new_mitra: Callable[..., App],
    halo_db: Database,
    watches: Callable[[Watch], Watch],
    quiet_world: None,
) -> None:
    client = new_client("Hapus Saya")
    transaction_id = pay_checkout(client, halo_db, stack.ports.xendit, {"tier_id": "sesi-30", "purpose": "session"})
    mitra = new_mitra()
    pair = pair_up(client, mitra, {"free_trial": True})
    messages = watches(Watch.collection(f"sessions/{pair.session_id}/messages"))
    session_doc = watches(Watch.document(f"sessions/{pair.session_id}"))
    send_text(client, pair.session_id, "ini rahasia aku")
    send_text(mitra, pair.session_id, "aman bersamaku")
    register_device(client)
    messages.wait_for(lambda d: len(d) == 2)
    client_id = client_id_of(halo_db, client)
    client_uid = uid_of(client)
    with halo_db.transaction() as tx:
        ledger_before = tx.all(
            "SELECT * FROM ledger_entries WHERE transaction_id = CAST(:t AS uuid) ORDER BY id", {"t": transaction_id}
        )

    firebase = FirebaseAuth(PROJECT)
    valid_after = firebase.tokens_valid_after(client_uid)

    busy = admin.post("admin_client_data", {"action": "delete", "client_id": client_id})
    _close(halo_db, pair.session_id)
    deleted = admin.post("admin_client_data", {"action": "delete", "client_id": client_id})
    again = admin.post("admin_client_data", {"action": "delete", "client_id": client_id})

    assert (busy.status, busy.error_code) == (409, "client_busy")
    assert deleted.status == 200, deleted.body
    profile = deleted.body["profile"]
    assert (profile["display_name"], profile["phone"], profile["email"]) == ("Deleted", None, None)
    assert profile["deleted_at"] is not None
    assert [m["text"] for m in deleted.body["messages"]] == [None, None]
    assert [t["transaction_id"] for t in deleted.body["transactions"]] == [transaction_id], "the ledger stays"
    assert again.status == 200 and again.body["profile"] == profile, "deleting again changes nothing"
    with halo_db.transaction() as tx:
        row = tx.one("SELECT firebase_uid, phone, email FROM clients WHERE id = CAST(:c AS uuid)", {"c": client_id})
        texts = tx.all("SELECT text FROM chat_messages WHERE session_id = CAST(:s AS uuid)", {"s": pair.session_id})
        devices = tx.scalar("SELECT count(*) FROM devices WHERE firebase_uid = :uid", {"uid": client_uid})
        ledger_after = tx.all(
            "SELECT * FROM ledger_entries WHERE transaction_id = CAST(:t AS uuid) ORDER BY id", {"t": transaction_id}
        )
    assert row == {"firebase_uid": None, "phone": None, "email": None}
    assert texts == [{"text": None}, {"text": None}]
    assert devices == 0
    assert ledger_after == ledger_before and ledger_before, "the financial ledger is kept as it was"
    erased = messages.wait_for(lambda d: len(d) == 2 and all("text" not in doc for doc in d.values()))
    assert all(doc["erased"] is True for doc in erased.values())
    shown = session_doc.wait_for(lambda d: any("client_uid" not in doc for doc in d.values()))
    assert next(iter(shown.values()))["participant_uids"] == [uid_of(mitra)]
    assert _firestore_as(mitra, f"sessions/{pair.session_id}") == 200, "the mitra keeps the (erased) history"
    assert client.get("client_profile").status in (401, 403), "the old sign-in no longer serves"
    assert valid_after >= 0, "the Firebase user existed"
    with pytest.raises(UserNotFoundError):
        firebase.tokens_valid_after(client_uid)  # the Firebase user is deleted, not only signed out
    (audit,) = _audited(halo_db, "client.delete", client_id)
    assert (audit["actor_uid"], audit["new_value"]) == (uid_of(admin), {"deleted": True, "messages_erased": 2})
    transcript = mitra.get("session_transcript", session_id=pair.session_id)
    assert [m["text"] for m in transcript.body["messages"]] == [None, None]


# -- retention -------------------------------------------------------------------------------------------------------


def test_retention_erases_texts_of_long_closed_sessions_only_and_is_idempotent(
    stack: LocalStack, paired: Callable[..., Pair], halo_db: Database, watches: Callable[[Watch], Watch]
) -> None:
    old, recent = paired("Lama", "Mitra Lama"), paired("Baru", "Mitra Baru")
    for pair in (old, recent):
        send_text(pair.client, pair.session_id, "cerita lama")
        send_text(pair.mitra, pair.session_id, "terima kasih sudah cerita")
    old_docs = watches(Watch.collection(f"sessions/{old.session_id}/messages"))
    recent_docs = watches(Watch.collection(f"sessions/{recent.session_id}/messages"))
    old_docs.wait_for(lambda d: len(d) == 2)
    recent_docs.wait_for(lambda d: len(d) == 2)
    _close(halo_db, old.session_id, days_ago=400)
    _close(halo_db, recent.session_id, days_ago=300)

    first = push_event(stack, "retention_sweep", {})
    second = push_event(stack, "retention_sweep", {})

    assert first.status_code in (200, 204) and second.status_code in (200, 204), first.text
    with halo_db.transaction() as tx:
        texts = {
            pair.session_id: [
                row["text"]
                for row in tx.all(
                    "SELECT text FROM chat_messages WHERE session_id = CAST(:s AS uuid) ORDER BY seq",
                    {"s": pair.session_id},
                )
            ]
            for pair in (old, recent)
        }
        erased_at = tx.scalar("SELECT texts_erased_at FROM sessions WHERE id = CAST(:s AS uuid)", {"s": old.session_id})
        projections = tx.scalar(
            "SELECT count(*) FROM outbox WHERE destination LIKE :p AND payload->'data' ? 'erased'",
            {"p": f"sessions/{old.session_id}/messages/%"},
        )
    assert texts[old.session_id] == [None, None]
    assert texts[recent.session_id] == ["cerita lama", "terima kasih sudah cerita"], "within retention: kept"
    assert erased_at is not None
    assert projections == 2, "each text is erased once, however often the sweep runs"
    old_docs.wait_for(lambda d: len(d) == 2 and all("text" not in doc and doc["erased"] for doc in d.values()))
    assert all(doc["text"] for doc in recent_docs.latest.values())


# -- privacy: the logs ---------------------------------------------------------------------------------------------


def test_no_log_line_of_the_stack_carries_a_message_phone_number_or_email(
    stack: LocalStack,
    auth: AuthEmulator,
    admin: App,
    new_mitra: Callable[..., App],
    halo_db: Database,
    watches: Callable[[Watch], Watch],
    quiet_world: None,
) -> None:
    marker = uuid.uuid4().hex[:10]
    digits = f"{uuid.uuid4().int % 10**8:08d}"
    said = {
        "message": f"rahasia {marker} jangan bilang siapa-siapa",
        "phone in a message": f"+62 857 {digits[:4]} {digits[4:]}",
        "phone in a message, packed": f"0857{digits}",
        "email in a message": f"curhat.{marker}@mail.example.org",
        "mitra's reply": f"aku dengar kamu {marker[::-1]}",
        "risky message": f"pengen mati aja {marker}",
        "admin note": f"catatan {marker}",
        "client's goodbye": f"makasih {marker} sampai jumpa",
        "mitra's goodbye": f"jaga diri {marker[:5]}-{marker[5:]}",
    }
    account = {
        "client email": f"klien.{marker}@example.com",
        "client name": f"Klien {marker}",
        "new mitra phone": f"+62858{digits}",
    }
    sentinels = {**said, **account}
    client = App(stack.functions_url, auth.sign_in_with_google(sentinels["client email"], sentinels["client name"]))
    assert client.post("client_register", {"display_name": sentinels["client name"]}).status == 200
    assert client.session is not None
    client.session.refresh()
    pay_checkout(client, halo_db, stack.ports.xendit, {"tier_id": "sesi-30", "purpose": "session"})
    client.get("pricing_quote")
    pair = pair_up(client, new_mitra(), {"free_trial": True})
    with halo_db.transaction() as tx:
        account["mitra phone"] = tx.scalar(
            "SELECT phone FROM mitras WHERE firebase_uid = :u", {"u": uid_of(pair.mitra)}
        )
    alerts = watches(Watch.collection("admin_alerts"))
    send_text(client, pair.session_id, sentinels["message"])
    send_text(
        client,
        pair.session_id,
        f"nomorku {sentinels['phone in a message']} atau {sentinels['phone in a message, packed']}",
    )
    send_text(client, pair.session_id, f"emailku {sentinels['email in a message']}")
    send_text(pair.mitra, pair.session_id, sentinels["mitra's reply"])
    send_text(client, pair.session_id, sentinels["risky message"])
    alert = alerts.wait_for(lambda docs: any(d.get("session_id") == pair.session_id for d in docs.values()))
    alert_id = next(d["alert_id"] for d in alert.values() if d.get("session_id") == pair.session_id)
    last = send_text(pair.mitra, pair.session_id, "aku di sini")
    client.post(
        "chat_receipts", {"session_id": pair.session_id, "up_to_message_id": last["message_id"], "status": "read"}
    )
    client.post("chat_typing", {"session_id": pair.session_id, "typing": True})
    client.get("chat_history", session_id=pair.session_id)
    client.get("sessions_list")
    pair.mitra.get("session_transcript", session_id=pair.session_id)
    admin.get("admin_session_transcript", session_id=pair.session_id, reason="cek laporan")
    admin.get("admin_users", q=sentinels["client email"])
    for _ in range(2):
        admin.post("admin_mitras", {"action": "create", "phone": account["new mitra phone"], "display_name": "Mitra"})
    admin.post("admin_alerts", {"action": "acknowledge", "alert_id": alert_id, "note": sentinels["admin note"]})
    client_id = client_id_of(halo_db, client)
    admin.get("admin_client_data", client_id=client_id, reason="permintaan klien")
    client.post(
        "chat_send", {"session_id": pair.session_id, "client_message_id": "not-a-uuid", "text": sentinels["message"]}
    )
    assert client.post("session_end", {"session_id": pair.session_id}).status == 200
    for app, goodbye in ((client, "client's goodbye"), (pair.mitra, "mitra's goodbye")):
        assert app.post("session_goodbye", {"session_id": pair.session_id, "text": sentinels[goodbye]}).status == 200
    _close(halo_db, pair.session_id)
    assert admin.post("admin_client_data", {"action": "delete", "client_id": client_id}).status == 200
    time.sleep(1.5)  # what the functions and emulators are still writing lands in their logs

    # The Auth emulator prints each phone sign-in's one-time code next to the number (its stand-in for an SMS); in
    # production that part is Google's Firebase Auth, so account identifiers are looked for everywhere else.
    leaks = [
        f"{path.name}:{number}: {label}"
        for path in sorted(stack.log_dir.glob("*.log"))
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), start=1)
        for label, sentinel in (said if path.stem == "auth" else {**said, **account}).items()
        if sentinel.lower() in line.lower()
    ]
    auth_log = (stack.log_dir / "auth.log").read_text(errors="replace")
    assert account["mitra phone"] in auth_log, "the scan reads the parts' real logs (this line is the emulator's SMS)"
    scanned = {path.stem for path in stack.log_dir.glob("*.log")}
    assert scanned >= {"gateway", "postgres", "firestore", "pubsub", "auth", "tasks", "xendit", "fcm"}
    assert leaks == []


def test_a_push_outage_does_not_hold_the_crisis_check_back(
    stack: LocalStack, paired: Callable[..., Pair], halo_db: Database
) -> None:
    pair = paired()
    host = os.environ["PUBSUB_EMULATOR_HOST"]
    # Only the deliveries below reach the function: with the subscription gone, the message's own event is not kept.
    detach(PROJECT, host, "on_chat_message")
    try:
        risky = send_text(pair.client, pair.session_id, "aku pengen mati aja")
        # The event as committed; the recipient (the mitra) has a device of its own for this test.
        event = _event(halo_db, risky["message_id"], "aku pengen mati aja")
        token = f"fcm-outage-{uuid.uuid4().hex}"
        registered = pair.mitra.post("devices_register", {"token": token, "platform": "android"})
        assert registered.status == 200, registered.body
        # FCM answers 503 to every attempt the sender makes to push this message to that device. Bound to the message:
        # a push of the pairing (the offer) that lands late on the new device must not use the outage up.
        outage = {"status": 503, "count": 3, "token": token, "data": {"message_id": risky["message_id"]}}
        requests.post(f"http://127.0.0.1:{stack.ports.fcm}/_sink/failures", json=outage, timeout=10).raise_for_status()

        first = push_event(stack, "on_chat_message", event)
        assert first.status_code >= 500, "the failed push has Pub/Sub deliver the event again"
        assert [flag["message_id"] for flag in _flags(halo_db, pair.session_id)] == [risky["message_id"]]
        assert _message_pushes(stack, token) == []

        second = push_event(stack, "on_chat_message", event)
        assert second.status_code in (200, 204), second.text
        assert _message_pushes(stack, token) == [risky["message_id"]]
        assert len(_flags(halo_db, pair.session_id)) == 1, "the check that had succeeded does nothing again"
    finally:
        wire_push_subscriptions(PROJECT, host, stack.relay_url)


def _message_pushes(stack: LocalStack, token: str) -> list[str]:
    sink = f"http://127.0.0.1:{stack.ports.fcm}/_sink/messages"
    found = requests.get(sink, params={"token": token}, timeout=10).json()["messages"]
    return [m["message"]["data"]["message_id"] for m in found if m["message"]["data"].get("type") == "message"]
