"""Privacy end to end (docs/privacy.md): what is erased is gone from every PostgreSQL table and every Firestore
document of the session, after a client's deletion and after retention; a client exports and deletes their own data
(the Firebase user goes too, so the same email starts afresh); and an admin reads a session's words only through
`admin_session_transcript`, with a reason, audited."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from firebase_admin.auth import UserNotFoundError

from emulators.simulator import App, AuthEmulator, Watch
from emulators.stack import PROJECT, LocalStack
from shared.adapters.firebase_auth import FirebaseAuth
from shared.adapters.postgres.database import Database
from tests.support.delivery import push_event
from tests.support.people import Pair, client_id_of, pair_up, pay_checkout, send_text, uid_of

pytestmark = pytest.mark.needs_gcloud

# Matches the crisis list ("pengen mati"), so the message raises a flag whose phrase and note must go too.
RISKY = "aku pengen mati aja"


def _close(db: Database, session_id: str, days_ago: int = 0) -> None:
    """As the goodbye timer would have left it (arranged, so a test need not wait out the window)."""
    with db.transaction() as tx:
        tx.execute(
            "UPDATE sessions SET status = 'closed', closed_at = now() - make_interval(days => :d)"
            " WHERE id = CAST(:s AS uuid)",
            {"s": session_id, "d": days_ago},
        )


def _audited(db: Database, action: str, target: str) -> list[dict[str, Any]]:
    with db.transaction() as tx:
        return tx.all(
            "SELECT actor_uid, actor_role, new_value FROM audit_log WHERE action = :a AND target = :t ORDER BY id",
            {"a": action, "t": target},
        )


# -- the scans -------------------------------------------------------------------------------------------------------


def _tables_holding(db: Database, needle: str) -> list[str]:
    """Every `table.column` of every table whose text, JSON or array value holds `needle` (case-insensitive)."""
    with db.transaction() as tx:
        columns = tx.all(
            """SELECT c.table_name, c.column_name FROM information_schema.columns c
               JOIN information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name
               WHERE c.table_schema = 'public' AND t.table_type = 'BASE TABLE'
                 AND c.data_type IN ('text', 'character varying', 'character', 'json', 'jsonb', 'ARRAY')
               ORDER BY c.table_name, c.column_name"""
        )
        assert {"outbox", "chat_messages", "safety_flags", "audit_log"} <= {c["table_name"] for c in columns}
        return [
            f"{c['table_name']}.{c['column_name']}"
            for c in columns
            if tx.scalar(
                f'SELECT count(*) FROM "{c["table_name"]}" WHERE CAST("{c["column_name"]}" AS text) ILIKE :p',
                {"p": f"%{needle}%"},
            )
        ]


def _published_rows_about(db: Database, keys: tuple[str, ...], *, up_to: int | None = None) -> tuple[int, int]:
    """(the newest outbox row's id, how many published rows up to `up_to` name any of `keys`)."""
    with db.transaction() as tx:
        newest = int(tx.scalar("SELECT max(id) FROM outbox"))
        count = int(
            tx.scalar(
                """SELECT count(*) FROM outbox WHERE published_at IS NOT NULL AND id <= :up_to
                     AND destination || ' ' || payload::text LIKE ANY(CAST(:patterns AS text[]))""",
                {"up_to": newest if up_to is None else up_to, "patterns": [f"%{key}%" for key in keys]},
            )
        )
    return newest, count


def _session_documents(session_id: str) -> list[dict[str, Any]]:
    """The session's Firestore documents as the Admin SDK reads them: the session, its messages, its alerts."""
    from google.cloud import firestore

    client = firestore.Client(project=PROJECT)
    found = [client.document(f"sessions/{session_id}").get()]
    found += list(client.collection(f"sessions/{session_id}/messages").stream())
    found += list(client.collection("admin_alerts").where(filter=_field("session_id", session_id)).stream())
    return [{"path": doc.reference.path, **(doc.to_dict() or {})} for doc in found if doc.exists]


def _field(name: str, value: str) -> Any:
    from google.cloud.firestore_v1.base_query import FieldFilter

    return FieldFilter(name, "==", value)


def _documents_holding(session_id: str, needle: str) -> list[str]:
    return [
        doc["path"] for doc in _session_documents(session_id) if needle.lower() in json.dumps(doc, default=str).lower()
    ]


def _wait_until(predicate: Callable[[], bool], what: str, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def _a_conversation_with_every_kind_of_copy(
    pair: Pair, admin: App, db: Database, watches: Callable[[Watch], Watch], marker: str
) -> None:
    """Words carrying `marker` everywhere they can land: both sides' messages (their documents, their outbox rows,
    the mitra's push preview), a crisis signal (its flag's matched phrase, the admin's note on the alert and its
    audit row), both goodbye notes; and one message document still pending in the outbox, as a delivery that keeps
    failing leaves it. The session is then closed."""
    alerts = watches(Watch.collection("admin_alerts"))
    messages = watches(Watch.collection(f"sessions/{pair.session_id}/messages"))
    send_text(pair.client, pair.session_id, f"rahasia {marker} jangan bilang siapa-siapa")
    send_text(pair.mitra, pair.session_id, f"aku dengar kamu {marker}")
    risky = send_text(pair.client, pair.session_id, f"{RISKY} {marker}")
    alert = alerts.wait_for(lambda docs: any(d.get("message_id") == risky["message_id"] for d in docs.values()))
    alert_id = next(d["alert_id"] for d in alert.values() if d.get("message_id") == risky["message_id"])
    acknowledged = admin.post("admin_alerts", {"action": "acknowledge", "alert_id": alert_id, "note": f"{marker}"})
    assert acknowledged.status == 200, acknowledged.body
    assert pair.client.post("session_end", {"session_id": pair.session_id}).status == 200
    for app, goodbye in ((pair.client, f"makasih {marker}"), (pair.mitra, f"jaga diri {marker}")):
        said = app.post("session_goodbye", {"session_id": pair.session_id, "text": goodbye})
        assert said.status == 200, said.body
    # Every message's document has arrived: 3 messages, the hotline card, the closing notice(s) and 2 goodbyes.
    messages.wait_for(lambda d: sum(marker in str(doc.get("text")) for doc in d.values()) == 5)
    with db.transaction() as tx:
        tx.execute(
            """INSERT INTO outbox (kind, destination, payload, attempts, last_error, next_attempt_at)
               SELECT o.kind, o.destination, jsonb_set(o.payload, '{data,text}', to_jsonb(m.text)), 7,
                      'firestore: ServiceUnavailable', now() + interval '1 hour'
               FROM outbox o JOIN chat_messages m ON m.id = CAST(:m AS uuid) WHERE o.destination = :d""",
            {"d": f"sessions/{pair.session_id}/messages/{risky['message_id']}", "m": risky["message_id"]},
        )
        flagged = tx.one(
            "SELECT phrase, note FROM safety_flags WHERE message_id = CAST(:m AS uuid)", {"m": risky["message_id"]}
        )
        pending_words = tx.scalar(
            "SELECT count(*) FROM outbox WHERE published_at IS NULL AND payload::text LIKE :p", {"p": f"%{marker}%"}
        )
    assert flagged is not None and flagged["phrase"] and flagged["note"] == marker
    assert pending_words == 1, "the failing delivery holds the words, as nothing else in the outbox does"
    _close(db, pair.session_id)
    _words_written_about_the_session(pair, admin, marker)


def _words_written_about_the_session(pair: Pair, admin: App, marker: str) -> None:
    """After the session (issue 25): the mitra's private note, a report by each side and the admin's note deciding
    one, and the client's feedback comment, each carrying `marker`."""
    session = pair.session_id
    note = pair.mitra.post("mitra_notes", {"action": "create", "session_id": session, "text": f"catatan {marker}"})
    assert note.status == 200, note.body
    for app in (pair.client, pair.mitra):
        filed = app.post("session_report", {"session_id": session, "category": "other", "text": f"lapor {marker}"})
        assert filed.status == 200, filed.body
    decided = admin.post("admin_reports", {"action": "dismiss", "report_id": filed.body["report_id"], "note": marker})
    assert decided.status == 200, decided.body
    rated = pair.client.post(
        "session_feedback", {"action": "create", "session_id": session, "rating": 4, "comment": f"makasih {marker}"}
    )
    assert rated.status == 200, rated.body


# -- erasure that erases ---------------------------------------------------------------------------------------------


def test_a_client_deleting_their_account_leaves_their_words_in_no_table_and_no_document(
    stack: LocalStack,
    admin: App,
    new_client: Callable[..., App],
    new_mitra: Callable[..., App],
    halo_db: Database,
    watches: Callable[[Watch], Watch],
    quiet_world: None,
) -> None:
    marker = f"sentinel{uuid.uuid4().hex[:12]}"
    client = new_client(f"Klien {marker}")
    pair = pair_up(client, new_mitra(), {"free_trial": True})
    _a_conversation_with_every_kind_of_copy(pair, admin, halo_db, watches, marker)
    before = _tables_holding(halo_db, marker)
    assert {
        "chat_messages.text",
        "outbox.payload",
        "safety_flags.note",
        "audit_log.new_value",
        "mitra_notes.text",
        "reports.text",
        "reports.decision_note",
        "session_feedback.comment",
    } <= set(before), "the scan finds the words where they are"
    assert _documents_holding(pair.session_id, marker), "and in Firestore"
    with halo_db.transaction() as tx:
        published_words = tx.scalar(
            "SELECT count(*) FROM outbox WHERE published_at IS NOT NULL AND payload::text LIKE :p",
            {"p": f"%{marker}%"},
        )
    assert published_words == 0, "a published outbox row keeps no words"
    client_id = client_id_of(halo_db, client)
    about_them = (pair.session_id, uid_of(client))
    last_row, published_about_them = _published_rows_about(halo_db, about_them)
    assert published_about_them > 0

    deleted = client.post("client_account_delete", {"confirm": True})

    assert deleted.status == 200, deleted.body
    assert deleted.body["profile"]["display_name"] == "Deleted"
    assert all(m["text"] is None for m in deleted.body["messages"])
    assert _tables_holding(halo_db, marker) == [], "no table holds the words, nor the client's name"
    _wait_until(lambda: _documents_holding(pair.session_id, marker) == [], "the documents to lose the words")
    with halo_db.transaction() as tx:
        flags = tx.all(
            "SELECT phrase, note FROM safety_flags WHERE session_id = CAST(:s AS uuid)", {"s": pair.session_id}
        )
        pending = tx.one(
            "SELECT payload -> 'data' AS data FROM outbox WHERE published_at IS NULL AND attempts = 7"
            " AND destination LIKE :d",
            {"d": f"sessions/{pair.session_id}/messages/%"},
        )
    assert flags == [{"phrase": None, "note": None}]
    assert pending is not None and pending["data"]["erased"] is True and "text" not in pending["data"], (
        "a pending delivery of the message can no longer bring its text back"
    )
    (audit,) = _audited(halo_db, "client.delete", client_id)
    assert (audit["actor_uid"], audit["actor_role"]) == (uid_of(client), "client")
    assert _published_rows_about(halo_db, about_them, up_to=last_row)[1] == 0, (
        "the published outbox rows about the client went at once, not after a week"
    )


def test_retention_leaves_the_words_of_a_long_closed_session_in_no_table_and_no_document(
    stack: LocalStack,
    admin: App,
    paired: Callable[..., Pair],
    halo_db: Database,
    watches: Callable[[Watch], Watch],
) -> None:
    marker = f"sentinel{uuid.uuid4().hex[:12]}"
    pair = paired("Lama", "Mitra Lama")
    _a_conversation_with_every_kind_of_copy(pair, admin, halo_db, watches, marker)
    assert _documents_holding(pair.session_id, marker)
    assert {"mitra_notes.text", "reports.text", "reports.decision_note", "session_feedback.comment"} <= set(
        _tables_holding(halo_db, marker)
    )
    _close(halo_db, pair.session_id, days_ago=400)

    swept = push_event(stack, "retention_sweep", {})

    assert swept.status_code in (200, 204), swept.text
    assert _tables_holding(halo_db, marker) == []
    _wait_until(lambda: _documents_holding(pair.session_id, marker) == [], "the documents to lose the words")
    with halo_db.transaction() as tx:
        flags = tx.all(
            "SELECT phrase, note FROM safety_flags WHERE session_id = CAST(:s AS uuid)", {"s": pair.session_id}
        )
    assert flags == [{"phrase": None, "note": None}]
    assert pair.client.get("client_profile").status == 200, "retention erases words, not the account"


def test_the_retention_sweep_purges_published_outbox_rows_after_a_week_and_keeps_pending_ones(
    stack: LocalStack, halo_db: Database
) -> None:
    with halo_db.transaction() as tx:
        ids = [
            tx.scalar(
                """INSERT INTO outbox (kind, destination, payload, created_at, published_at, next_attempt_at)
                   VALUES ('firestore', :d, '{"op": "merge", "data": {}}', now() - make_interval(days => :age),
                           CASE WHEN :published THEN now() - make_interval(days => :age) END,
                           now() + interval '1 hour')
                   RETURNING id""",
                {"d": f"test/{uuid.uuid4()}", "age": age, "published": published},
            )
            for age, published in ((8, True), (6, True), (8, False))
        ]

    swept = push_event(stack, "retention_sweep", {})

    assert swept.status_code in (200, 204), swept.text
    with halo_db.transaction() as tx:
        left = [row["id"] for row in tx.all("SELECT id FROM outbox WHERE id = ANY(:ids) ORDER BY id", {"ids": ids})]
        tx.execute("DELETE FROM outbox WHERE id = ANY(:ids)", {"ids": ids})
    assert left == ids[1:], "a week-old published row goes; a newer one and a pending one stay"


# -- a client's own rights -------------------------------------------------------------------------------------------


def test_a_client_exports_their_own_data_as_an_admin_would_and_the_export_is_audited(
    stack: LocalStack,
    admin: App,
    new_client: Callable[..., App],
    new_mitra: Callable[..., App],
    halo_db: Database,
    quiet_world: None,
) -> None:
    client = new_client("Ekspor Sendiri")
    transaction_id = pay_checkout(client, halo_db, stack.ports.xendit, {"tier_id": "sesi-30", "purpose": "session"})
    pair = pair_up(client, new_mitra(), {"free_trial": True})
    send_text(client, pair.session_id, "halo, aku mau cerita")
    send_text(pair.mitra, pair.session_id, "tentu, aku dengarkan")
    client_id = client_id_of(halo_db, client)

    mine = client.get("client_data_export")
    theirs = admin.get("admin_client_data", client_id=client_id, reason="salinan untuk klien")

    assert mine.status == 200, mine.body
    assert theirs.status == 200, theirs.body
    for part in ("profile", "sessions", "messages", "transactions"):
        assert mine.body[part] == theirs.body[part], part
    assert [m["text"] for m in mine.body["messages"]] == ["halo, aku mau cerita", "tentu, aku dengarkan"]
    assert [t["transaction_id"] for t in mine.body["transactions"]] == [transaction_id]
    exports = _audited(halo_db, "client.export", client_id)
    assert [(a["actor_uid"], a["actor_role"], a["new_value"]) for a in exports] == [
        (uid_of(client), "client", {"messages": 2}),
        (uid_of(admin), "admin", {"messages": 2, "reason": "salinan untuk klien"}),
    ]
    assert pair.mitra.get("client_data_export").status == 403, "a mitra has no client data to export"
    assert admin.get("client_data_export").status == 403


def test_the_export_holds_what_the_client_wrote_after_a_session_their_settings_and_their_balance_only(
    admin: App, timed_session: Callable[[int], Pair], halo_db: Database
) -> None:
    pair = timed_session(600)
    session = pair.session_id
    note = pair.mitra.post("mitra_notes", {"action": "create", "session_id": session, "text": "catatan-mitra-rahasia"})
    about_them = {"session_id": session, "category": "abusive_language", "text": "laporan-mitra-tentang-klien"}
    by_mitra = pair.mitra.post("session_report", about_them)
    by_client = pair.client.post(
        "session_report", {"session_id": session, "category": "other", "text": "laporan-klien-sendiri"}
    )
    assert (note.status, by_mitra.status, by_client.status) == (200, 200, 200), (note.body, by_client.body)
    decided = admin.post(
        "admin_reports", {"action": "resolve", "report_id": by_client.body["report_id"], "note": "catatan-admin"}
    )
    ended = admin.post(
        "admin_session_end", {"session_id": session, "reason": "uji", "goodbye": False, "credit_unused": True}
    )
    assert (decided.status, ended.status) == (200, 200), (decided.body, ended.body)
    credited = ended.body["credited_amount"]
    rated = pair.client.post(
        "session_feedback", {"action": "create", "session_id": session, "rating": 4, "comment": "terima kasih"}
    )
    blocked = pair.client.post("blocks", {"action": "block", "session_id": session})
    blocked_back = pair.mitra.post("blocks", {"action": "block", "session_id": session})
    settings = pair.client.post("client_profile", {"locale": "en", "push_previews": True})
    spent = pair.client.post("billing_checkout", {"tier_id": "sesi-30", "purpose": "session"})
    assert [r.status for r in (rated, blocked, blocked_back, settings, spent)] == [200] * 5, spent.body
    assert spent.body["credit_back_used"] == credited > 0

    mine = pair.client.get("client_data_export")
    theirs = admin.get("admin_client_data", client_id=client_id_of(halo_db, pair.client), reason="salinan klien")

    assert mine.status == 200, mine.body
    assert theirs.status == 200, theirs.body
    for part in ("profile", "sessions", "feedback", "reports", "blocks", "credit_backs", "credit_back_uses"):
        assert mine.body[part] == theirs.body[part], part
    assert (mine.body["profile"]["locale"], mine.body["profile"]["push_previews"]) == ("en", True)
    (feedback,) = mine.body["feedback"]
    assert (feedback["session_id"], feedback["rating"], feedback["comment"]) == (session, 4, "terima kasih")
    (report,) = mine.body["reports"]
    assert (report["report_id"], report["category"], report["text"], report["status"]) == (
        by_client.body["report_id"],
        "other",
        "laporan-klien-sendiri",
        "resolved",
    )
    (block,) = mine.body["blocks"]
    assert (block["block_id"], block["session_id"]) == (blocked.body["blocks"][0]["block_id"], session)
    (credit_back,) = mine.body["credit_backs"]
    assert (credit_back["session_id"], credit_back["amount"], credit_back["currency"]) == (session, credited, "IDR")
    (use,) = mine.body["credit_back_uses"]
    assert (use["transaction_id"], use["kind"], use["amount"]) == (spent.body["transaction_id"], "use", credited)
    whole = json.dumps(mine.body)
    for left_out in ("catatan-mitra-rahasia", "laporan-mitra-tentang-klien", "catatan-admin", uid_of(admin)):
        assert left_out not in whole, f"{left_out} is not the client's to read (docs/privacy.md)"


def test_a_client_deletes_their_account_only_when_nothing_is_open_and_the_same_email_starts_afresh(
    stack: LocalStack,
    auth: AuthEmulator,
    new_mitra: Callable[..., App],
    halo_db: Database,
    watches: Callable[[Watch], Watch],
    quiet_world: None,
) -> None:
    email = f"hapus.{uuid.uuid4().hex[:10]}@example.com"
    client = App(stack.functions_url, auth.sign_in_with_google(email, "Hapus Sendiri"))
    assert client.post("client_register", {"display_name": "Hapus Sendiri"}).status == 200
    assert client.session is not None
    client.session.refresh()
    old_uid = uid_of(client)
    client_id = client_id_of(halo_db, client)
    pair = pair_up(client, new_mitra(), {"free_trial": True})
    send_text(client, pair.session_id, "cerita yang mau kuhapus")
    firebase = FirebaseAuth(PROJECT)
    assert firebase.tokens_valid_after(old_uid) >= 0, "the Firebase user exists"

    busy = client.post("client_account_delete", {"confirm": True})
    unconfirmed = client.post("client_account_delete", {})
    _close(halo_db, pair.session_id)
    deleted = client.post("client_account_delete", {"confirm": True})

    assert (busy.status, busy.error_code) == (409, "client_busy")
    assert unconfirmed.status == 400 and unconfirmed.body["error"]["fields"][0]["field"] == "confirm"
    assert deleted.status == 200, deleted.body
    assert (deleted.body["profile"]["phone"], deleted.body["profile"]["email"]) == (None, None)
    with pytest.raises(UserNotFoundError):
        firebase.tokens_valid_after(old_uid)  # the Firebase user is deleted, not only signed out
    assert client.get("client_profile").status in (401, 403), "the old sign-in no longer serves"
    assert client.get("client_data_export").status == 401

    again = App(stack.functions_url, auth.sign_in_with_google(email, "Hapus Sendiri"))
    registered = again.post("client_register", {"display_name": "Baru Lagi"})

    assert uid_of(again) != old_uid, "the same email is a new Firebase user"
    assert registered.status == 200, registered.body
    assert again.session is not None
    again.session.refresh()
    fresh = again.get("client_data_export")
    assert fresh.status == 200, fresh.body
    assert fresh.body["profile"]["client_id"] != client_id and fresh.body["sessions"] == []
    assert fresh.body["profile"]["email"] == email


# -- admins read words only through admin functions ------------------------------------------------------------------


def test_an_admin_reads_a_transcript_only_through_the_control_center_with_a_reason_that_is_audited(
    admin: App, paired: Callable[..., Pair], halo_db: Database
) -> None:
    pair = paired()
    send_text(pair.client, pair.session_id, "halo kak")
    send_text(pair.mitra, pair.session_id, "halo, aku di sini")

    app_transcript = admin.get("session_transcript", session_id=pair.session_id)
    app_history = admin.get("chat_history", session_id=pair.session_id)
    no_reason = admin.get("admin_session_transcript", session_id=pair.session_id)
    blank = admin.get("admin_session_transcript", session_id=pair.session_id, reason="   ")
    too_long = admin.get("admin_session_transcript", session_id=pair.session_id, reason="x" * 501)
    not_found = admin.get("admin_session_transcript", session_id=str(uuid.uuid4()), reason="laporan #7")
    by_client = pair.client.get("admin_session_transcript", session_id=pair.session_id, reason="laporan #7")
    read = admin.get("admin_session_transcript", session_id=pair.session_id, reason="laporan keluhan #7")

    assert (app_transcript.status, app_history.status) == (403, 403)
    for refused in (no_reason, blank, too_long):
        assert refused.status == 400 and [f["field"] for f in refused.body["error"]["fields"]] == ["reason"]
    assert (not_found.status, by_client.status) == (404, 403)
    assert read.status == 200, read.body
    assert [m["text"] for m in read.body["messages"]] == ["halo kak", "halo, aku di sini"]
    assert read.body["session"]["session_id"] == pair.session_id
    (audit,) = _audited(halo_db, "session.transcript_read", pair.session_id)
    assert (audit["actor_uid"], audit["actor_role"], audit["new_value"]) == (
        uid_of(admin),
        "admin",
        {"reason": "laporan keluhan #7", "messages": 2},
    )
    assert pair.client.get("session_transcript", session_id=pair.session_id).status == 200
    assert pair.mitra.get("chat_history", session_id=pair.session_id).status == 200


def test_an_admin_export_of_a_clients_words_needs_a_reason(
    admin: App, new_client: Callable[..., App], halo_db: Database
) -> None:
    client = new_client("Tanpa Alasan")
    client_id = client_id_of(halo_db, client)

    missing = admin.get("admin_client_data", client_id=client_id)
    too_long = admin.get("admin_client_data", client_id=client_id, reason="x" * 501)

    for refused in (missing, too_long):
        assert refused.status == 400 and [f["field"] for f in refused.body["error"]["fields"]] == ["reason"]
    assert _audited(halo_db, "client.export", client_id) == []
