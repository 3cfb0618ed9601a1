"""Crisis signals: each client message is checked after it is committed, off the send path (Pub/Sub
`chat-messages`, `on_chat_message`). A hit is a `safety_flags` row, an alert the control center listens to, a push
to the admins on duty, and the hotline card in the client's session. The message itself is never blocked or changed.
"""

from __future__ import annotations

import logging

from shared.adapters.postgres.database import Tx
from shared.domain import accounts, safety
from shared.logging import event
from shared.services import chat, projections, settings_store
from shared.services.outbox import ts
from shared.services.ports import Ports
from shared.services.projector import project_after_commit

log = logging.getLogger(__name__)


def check_message(ports: Ports, *, message_id: str, session_id: str) -> str:
    """Idempotent: a redelivered check finds the flag and raises nothing twice. Returns the outcome word."""
    message = ports.db.read_one(
        """SELECT text, sender_role FROM chat_messages
           WHERE id = CAST(:mid AS uuid) AND session_id = CAST(:sid AS uuid)""",
        {"mid": message_id, "sid": session_id},
    )
    if message is None or message["sender_role"] != "client" or message["text"] is None:
        return "not_checked"
    signal = safety.detect(message["text"])
    if signal is None:
        return "clear"
    with ports.db.transaction() as tx:
        outcome = _raise_flag(tx, message_id, session_id, signal)
    project_after_commit(ports, tx.outbox_ids)
    return outcome


def _raise_flag(tx: Tx, message_id: str, session_id: str, signal: safety.Signal) -> str:
    # The session row lock orders this with the session's other messages (seq) and with a concurrent flag.
    session = tx.one(
        """SELECT s.id, s.client_id::text, c.alias_number FROM sessions s JOIN clients c ON c.id = s.client_id
           WHERE s.id = CAST(:sid AS uuid) FOR UPDATE OF s""",
        {"sid": session_id},
    )
    assert session is not None, "a message's session exists"
    flag = tx.one(
        """INSERT INTO safety_flags (message_id, session_id, client_id, category, phrase)
           VALUES (CAST(:mid AS uuid), CAST(:sid AS uuid), CAST(:cid AS uuid), :category, :phrase)
           ON CONFLICT (message_id) DO NOTHING RETURNING id::text AS alert_id, created_at""",
        {"mid": message_id, "sid": session_id, "cid": session["client_id"], "category": signal.category,
         "phrase": signal.phrase},
    )  # fmt: skip
    if flag is None:
        return "already_flagged"
    _show_hotline(tx, session_id, flag["alert_id"])
    alias = accounts.alias(session["alias_number"])
    projections.admin_alert(
        tx, flag["alert_id"],
        {"session_id": session_id, "message_id": message_id, "client_alias": alias, "category": signal.category,
         "status": "open", "created_at": ts(flag["created_at"])},
        op="set",
    )  # fmt: skip
    on_duty = [row["firebase_uid"] for row in tx.all("SELECT firebase_uid FROM admins WHERE on_duty ORDER BY id")]
    projections.notify(
        tx, dedup_key=f"safety:{flag['alert_id']}", recipients=on_duty,
        data={"type": "safety_alert", "alert_id": flag["alert_id"], "session_id": session_id},
        title="Sinyal krisis", body=f"{alias} mungkin butuh bantuan segera. Buka pusat kendali.",
    )  # fmt: skip
    level = logging.WARNING if not on_duty else logging.INFO
    event(log, "safety signal raised", level, alert=flag["alert_id"], category=signal.category, admins=len(on_duty))
    return "flagged"


def _show_hotline(tx: Tx, session_id: str, alert_id: str) -> None:
    """Once per session: repeating the same card after every message would drown the conversation."""
    if tx.scalar(
        "SELECT EXISTS (SELECT 1 FROM safety_flags WHERE session_id = CAST(:sid AS uuid) AND hotline_message_id "
        "IS NOT NULL)",
        {"sid": session_id},
    ):
        return
    hotlines = settings_store.load_config(tx).hotline_numbers
    card = chat.append_message(tx, session_id=session_id, kind="system", sender_role="system", sender_id=None,
                               sender_uid=None, text=safety.hotline_card(hotlines))  # fmt: skip
    tx.execute(
        "UPDATE safety_flags SET hotline_message_id = CAST(:card AS uuid) WHERE id = CAST(:alert AS uuid)",
        {"card": card["message_id"], "alert": alert_id},
    )
