"""Chat: sending, receipts, typing, and reading a conversation back.

`send` is the hot path: one statement checks the session, allocates the next `seq`, stores the message and its two
outbox rows (the message document, and one `chat-messages` event that both pushes it to the recipient and, for a
client's message, has it checked for crisis signals); both are then published directly (projector.publish_committed).
"""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from shared.adapters.db import Database, Row
from shared.domain import accounts, chat
from shared.domain.config import AnonymityMode
from shared.domain.roles import Role
from shared.errors import Conflict, Forbidden, InvalidRequest, NotFound, RateLimited
from shared.services import audit, projections, settings_store
from shared.services.outbox import ts
from shared.services.ports import DocOp, Ports
from shared.services.projector import Committed, publish_committed, schedule_retry

# Fast-path rows are left to the sweep only if the fast path has not published them by then.
_SWEEP_GRACE = "15 seconds"
# A deferred receipts row is the sweep's only if its task has not published it by then.
_RECEIPTS_SWEEP_GRACE_S = 10
# One event per message (functions.chat_events.on_chat_message): the recipient's push and, for a client's message,
# the crisis-signal check.
MESSAGE_TOPIC = "chat-messages"

_SEND = f"""
WITH s AS (
    SELECT s.id, s.next_seq, s.client_id, c.firebase_uid AS client_uid, c.anonymous, m.firebase_uid AS mitra_uid
    FROM sessions s JOIN clients c ON c.id = s.client_id JOIN mitras m ON m.id = s.mitra_id
    WHERE s.id = CAST(:sid AS uuid) AND s.status = 'active' AND s.ends_at > now()
      AND CAST(:account AS uuid) = CASE :role WHEN 'client' THEN s.client_id ELSE s.mitra_id END
    FOR UPDATE OF s
), recent AS (
    SELECT count(*) >= (SELECT CAST(value AS integer) FROM app_config WHERE key = 'messages_per_minute') AS limited,
           ceil(extract(epoch FROM min(created_at) + interval '1 minute' - now())) AS wait_s
    FROM chat_messages
    WHERE session_id = CAST(:sid AS uuid) AND sender_id = CAST(:account AS uuid)
      AND created_at > now() - interval '1 minute'
), ins AS (
    INSERT INTO chat_messages (id, session_id, seq, sender_role, sender_id, client_message_id, text)
    SELECT CAST(:mid AS uuid), s.id, s.next_seq + 1, :role, CAST(:account AS uuid), CAST(:cmid AS uuid), :text
    FROM s, recent WHERE NOT recent.limited
    ON CONFLICT (session_id, client_message_id) DO NOTHING
    RETURNING id, seq, created_at, sender_role, session_id
), bump AS (
    UPDATE sessions SET next_seq = ins.seq FROM ins WHERE sessions.id = CAST(:sid AS uuid) RETURNING 1
), doc AS (
    INSERT INTO outbox (kind, destination, payload, next_attempt_at)
    SELECT 'firestore', 'sessions/' || :sid || '/messages/' || ins.id,
           jsonb_build_object('op', 'set', 'data', CAST(:doc AS jsonb)
               || jsonb_build_object('seq', ins.seq, 'created_at', jsonb_build_object('$ts', ins.created_at))),
           now() + interval '{_SWEEP_GRACE}'
    FROM ins RETURNING id
), event AS (
    -- After the commit, off this path: the recipient's push, and for a client's message the crisis-signal check.
    INSERT INTO outbox (kind, destination, payload, next_attempt_at)
    SELECT 'pubsub', '{MESSAGE_TOPIC}', jsonb_build_object('data', jsonb_build_object(
               'message_id', ins.id::text, 'session_id', ins.session_id::text, 'sender_role', ins.sender_role,
               'push', CAST(:push AS jsonb) || jsonb_build_object('recipients', jsonb_build_array(
                   CASE :role WHEN 'client' THEN s.mitra_uid ELSE s.client_uid END),
                 'body', CASE WHEN s.anonymous THEN 'Pesan baru' ELSE left(:text, 80) END)),
             'attributes', '{{}}'::jsonb),
           now() + interval '{_SWEEP_GRACE}'
    FROM ins, s RETURNING id, payload
)
SELECT (SELECT count(*) FROM s) AS open, recent.limited, recent.wait_s, ins.id::text AS message_id, ins.seq,
       ins.created_at, (SELECT id FROM doc) AS doc_outbox,
       (SELECT id FROM event) AS event_outbox, (SELECT payload -> 'data' FROM event) AS event
FROM recent LEFT JOIN ins ON true
"""


@dataclass(frozen=True)
class Sent:
    message_id: str
    seq: int
    created_at: datetime


def send(
    ports: Ports, *, role: Role, account_id: str, uid: str, session_id: str, client_message_id: str, text: str
) -> Sent:
    """Idempotent on `client_message_id`: a retry returns the first message and writes nothing."""
    message_id = str(uuid.uuid4())
    doc = {"message_id": message_id, "session_id": session_id, "kind": "text", "sender_role": role,
           "sender_uid": uid, "client_message_id": client_message_id, "text": text, "status": "sent"}  # fmt: skip
    push = {"dedup_key": f"message:{message_id}", "title": "Halo Bestie",
            "data": {"type": "message", "session_id": session_id, "message_id": message_id}}  # fmt: skip
    row = ports.db.read_one(
        _SEND,
        {"sid": session_id, "role": role, "account": account_id, "mid": message_id, "cmid": client_message_id,
         "text": text, "doc": json.dumps(doc), "push": json.dumps(push)},
    )  # fmt: skip
    assert row is not None
    if row["message_id"] is None:
        return _already_sent(ports.db, session_id, client_message_id, open_session=bool(row["open"]),
                             retry_after_s=int(row["wait_s"] or 1) if row["limited"] else None)  # fmt: skip
    doc_data = {**doc, "seq": row["seq"], "created_at": ts(row["created_at"])}
    committed = [
        Committed(row["doc_outbox"], doc=DocOp(f"sessions/{session_id}/messages/{message_id}", "set", doc_data)),
        Committed(row["event_outbox"], topic=MESSAGE_TOPIC, message=row["event"]),
    ]
    publish_committed(ports, committed)
    return Sent(message_id=message_id, seq=row["seq"], created_at=row["created_at"])


def _already_sent(
    db: Database, session_id: str, client_message_id: str, *, open_session: bool, retry_after_s: int | None
) -> Sent:
    """Why nothing was inserted: a retry of a message already sent, the session not open, or too fast."""
    existing = db.read_one(
        """SELECT id::text AS message_id, seq, created_at FROM chat_messages
           WHERE session_id = CAST(:sid AS uuid) AND client_message_id = CAST(:cmid AS uuid)""",
        {"sid": session_id, "cmid": client_message_id},
    )
    if existing is not None:
        return Sent(**existing)
    if not open_session:
        raise Conflict("this session is not open for messages", code="session_not_active")
    if retry_after_s is not None:
        raise RateLimited("too many messages in the last minute", retry_after_s=max(1, retry_after_s))
    raise AssertionError("a message that conflicted on insert must exist")


def receipts(
    ports: Ports, *, role: Role, account_id: str, session_id: str, up_to_message_id: str, receipt: chat.Receipt
) -> dict[str, int]:
    """Delivered/read up to a message of the other side: monotonic watermarks. They reach Firestore with this side's
    next session-document write (typing, usually right after reading) or, failing that, RECEIPTS_COALESCE later
    from one pending outbox row per side that each call brings up to date: at most one write however often apps
    call this."""
    side = "client" if role is Role.CLIENT else "mitra"
    scheduled: int | None = None
    with ports.db.transaction() as tx:
        session = _participant_session(tx, session_id, role, account_id, lock=True)
        seq = tx.scalar(
            "SELECT seq FROM chat_messages WHERE id = CAST(:mid AS uuid) AND session_id = CAST(:sid AS uuid)",
            {"mid": up_to_message_id, "sid": session_id},
        )
        if seq is None:
            raise InvalidRequest(
                "no such message in this session", fields=[{"field": "up_to_message_id", "problem": "unknown"}]
            )
        delivered, read = chat.watermarks(receipt, seq, session[f"{side}_delivered_seq"], session[f"{side}_read_seq"])
        if (delivered, read) != (session[f"{side}_delivered_seq"], session[f"{side}_read_seq"]):
            payload = json.dumps(_receipts_payload(side, delivered, read))
            pending = session[f"{side}_receipts_outbox_id"]
            if pending is not None:  # still unpublished? then it says the new watermarks instead
                pending = tx.scalar(
                    """UPDATE outbox SET payload = CAST(:payload AS jsonb)
                       WHERE id = :id AND published_at IS NULL RETURNING id""",
                    {"payload": payload, "id": pending},
                )
            if pending is None:
                pending = scheduled = tx.scalar(
                    """INSERT INTO outbox (kind, destination, payload, next_attempt_at)
                       VALUES ('firestore', :path, CAST(:payload AS jsonb), now() + make_interval(secs => :wait))
                       RETURNING id""",
                    {"path": projections.session_path(session_id), "payload": payload,
                     "wait": chat.RECEIPTS_COALESCE.total_seconds() + _RECEIPTS_SWEEP_GRACE_S},
                )  # fmt: skip
            tx.execute(
                f"""UPDATE sessions SET {side}_delivered_seq = :d, {side}_read_seq = :r,
                        {side}_receipts_outbox_id = :pending
                    WHERE id = CAST(:sid AS uuid)""",
                {"d": delivered, "r": read, "pending": pending, "sid": session_id},
            )
    if scheduled is not None:
        schedule_retry(ports, [scheduled], at=datetime.now(UTC) + chat.RECEIPTS_COALESCE)
    return {"delivered_seq": delivered, "read_seq": read}


def _receipts_payload(side: str, delivered: int, read: int) -> dict[str, Any]:
    """The outbox payload of one side's receipts (compared whole when a typing write has carried them)."""
    return {"op": "merge", "data": {"receipts": {side: {"delivered_seq": delivered, "read_seq": read}}}}


def typing(ports: Ports, *, role: Role, account_id: str, session_id: str, is_typing: bool) -> bool:
    """Returns whether this call was written to Firestore. Typing is ephemeral, so it skips the outbox.

    `typing: true` writes a lease (`since`, `typing_until` = since + TYPING_TTL) only when there is none or it is
    older than TYPING_RENEW_AFTER. `typing: false` clears a live lease, unless a message from this side has come
    since it was written: the apps hid the flag when that message arrived. Pending receipts of this side ride
    along with the write."""
    side = "client" if role is Role.CLIENT else "mitra"
    column = f"{side}_typing_at"
    row = ports.db.read_one(
        f"""UPDATE sessions SET {column} = CASE WHEN :typing THEN now() ELSE NULL END
            WHERE id = CAST(:sid AS uuid) AND status = 'active'
              AND CAST(:account AS uuid) = {side}_id
              AND CASE WHEN :typing THEN {column} IS NULL OR {column} <= now() - make_interval(secs => :renew)
                       ELSE {column} > now() - make_interval(secs => :ttl)
                            AND NOT EXISTS (SELECT 1 FROM chat_messages m
                                            WHERE m.session_id = sessions.id AND m.sender_id = CAST(:account AS uuid)
                                              AND m.created_at >= sessions.{column}) END
            RETURNING now() AS at, {side}_delivered_seq AS delivered_seq, {side}_read_seq AS read_seq,
                      (SELECT o.id FROM outbox o
                       WHERE o.id = {side}_receipts_outbox_id AND o.published_at IS NULL) AS receipts_outbox""",
        {"typing": is_typing, "sid": session_id, "account": account_id,
         "renew": chat.TYPING_RENEW_AFTER.total_seconds(), "ttl": chat.TYPING_TTL.total_seconds()},
    )  # fmt: skip
    if row is None:
        _participant_session_check(ports.db, session_id, role, account_id)
        return False
    lease = {"since": ts(row["at"]), "typing_until": ts(row["at"] + chat.TYPING_TTL)} if is_typing else {}
    data: dict[str, Any] = {"typing": {side: lease or {"typing_until": None}}}
    receipts = _receipts_payload(side, row["delivered_seq"], row["read_seq"])
    if row["receipts_outbox"] is not None:
        data.update(receipts["data"])
    ports.documents.apply([DocOp(projections.session_path(session_id), "merge", data)])
    if row["receipts_outbox"] is not None:  # carried: its row is done, unless newer receipts have replaced it since
        ports.db.read_one(
            """UPDATE outbox SET published_at = now()
               WHERE id = :id AND published_at IS NULL AND payload = CAST(:payload AS jsonb) RETURNING id""",
            {"id": row["receipts_outbox"], "payload": json.dumps(receipts)},
        )
    return True


def publish_after(ports: Ports, ids: list[int]) -> None:
    from shared.services.projector import project_after_commit

    project_after_commit(ports, ids)


def _participant_session(tx: Any, session_id: str, role: Role, account_id: str, *, lock: bool = False) -> Row:
    side = "client_id" if role is Role.CLIENT else "mitra_id"
    session = tx.one(
        f"SELECT * FROM sessions WHERE id = CAST(:sid AS uuid) AND {side} = CAST(:account AS uuid)"
        + (" FOR UPDATE" if lock else ""),
        {"sid": session_id, "account": account_id},
    )
    if session is None:
        raise NotFound("no such session")
    return dict(session)


def _participant_session_check(db: Database, session_id: str, role: Role, account_id: str) -> None:
    side = "client_id" if role is Role.CLIENT else "mitra_id"
    if (
        db.read_one(
            f"SELECT 1 AS ok FROM sessions WHERE id = CAST(:sid AS uuid) AND {side} = CAST(:account AS uuid)",
            {"sid": session_id, "account": account_id},
        )
        is None
    ):
        raise NotFound("no such session")


# -- reading back ------------------------------------------------------------------------------------------------


def history(
    db: Database, *, role: Role | None, account_id: str | None, session_id: str, before_seq: int | None, limit: int
) -> tuple[list[Row], int | None]:
    """Keyset pagination on `seq` (stable under concurrent inserts): newest page first, each page oldest→newest."""
    _readable(db, role, account_id, session_id)
    with db.transaction() as tx:
        rows = tx.all(
            """SELECT id::text AS message_id, seq, kind, sender_role, text, created_at FROM chat_messages
               WHERE session_id = CAST(:sid AS uuid) AND (CAST(:before AS bigint) IS NULL OR seq < :before)
               ORDER BY seq DESC LIMIT :limit""",
            {"sid": session_id, "before": before_seq, "limit": limit + 1},
        )
    more = len(rows) > limit
    page = list(reversed(rows[:limit]))
    return page, (page[0]["seq"] if more and page else None)


def transcript(db: Database, *, role: Role, account_id: str | None, uid: str, session_id: str) -> tuple[Row, list[Row]]:
    """The whole conversation; an admin's read is audited."""
    session = _readable(db, role, account_id, session_id)
    with db.transaction() as tx:
        messages = tx.all(
            """SELECT id::text AS message_id, seq, kind, sender_role, text, created_at FROM chat_messages
               WHERE session_id = CAST(:sid AS uuid) ORDER BY seq""",
            {"sid": session_id},
        )
        if role is Role.ADMIN:
            audit.record(tx, actor_uid=uid, actor_role="admin", action="session.transcript_read", target=session_id,
                         old=None, new={"messages": len(messages)})  # fmt: skip
    return session, messages


def _readable(db: Database, role: Role | None, account_id: str | None, session_id: str) -> Row:
    """Participants read their own sessions (a rerouted mitra no longer is one); admins read every session."""
    with db.transaction() as tx:
        config = settings_store.load_config(tx)
        session = tx.one(
            """SELECT s.id::text AS session_id, s.status, s.kind, s.started_at, s.ends_at, s.client_id::text,
                      s.mitra_id::text, c.display_name AS client_display_name, c.anonymous, c.alias_number,
                      m.display_name AS mitra_name
               FROM sessions s JOIN clients c ON c.id = s.client_id JOIN mitras m ON m.id = s.mitra_id
               WHERE s.id = CAST(:sid AS uuid)""",
            {"sid": session_id},
        )
    allowed = session is not None and (
        role is Role.ADMIN
        or (role is Role.CLIENT and session["client_id"] == account_id)
        or (role is Role.MITRA and session["mitra_id"] == account_id)
    )
    if not allowed:
        raise NotFound("no such session")
    assert session is not None
    session["client_name"] = _client_name(session, role, config.anonymity_mode)
    return session


def _client_name(session: Row, role: Role | None, mode: AnonymityMode) -> str:
    if role is Role.CLIENT:
        return str(session["client_display_name"])
    return accounts.name_for_mitra(display_name=session["client_display_name"], anonymous=session["anonymous"],
                                   alias_number=session["alias_number"], mode=mode)  # fmt: skip


def list_sessions(
    db: Database, *, role: Role, account_id: str, cursor: str | None, limit: int
) -> tuple[list[Row], str | None]:
    """Newest first, keyset on (started_at, id)."""
    side = "client_id" if role is Role.CLIENT else "mitra_id"
    after = _decode_cursor(cursor)
    with db.transaction() as tx:
        config = settings_store.load_config(tx)
        rows = tx.all(
            f"""SELECT s.id::text AS session_id, s.status, s.kind, s.started_at, s.ends_at,
                       c.display_name AS client_display_name, c.anonymous, c.alias_number, m.display_name AS mitra_name
                FROM sessions s JOIN clients c ON c.id = s.client_id JOIN mitras m ON m.id = s.mitra_id
                WHERE s.{side} = CAST(:account AS uuid)
                  AND (CAST(:at AS timestamptz) IS NULL
                       OR (s.started_at, s.id) < (CAST(:at AS timestamptz), CAST(:id AS uuid)))
                ORDER BY s.started_at DESC, s.id DESC LIMIT :limit""",
            {"account": account_id, "at": after[0] if after else None, "id": after[1] if after else None,
             "limit": limit + 1},
        )  # fmt: skip
    more = len(rows) > limit
    page = rows[:limit]
    for row in page:
        row["client_name"] = _client_name(row, role, config.anonymity_mode)
    next_cursor = _encode_cursor(page[-1]["started_at"], page[-1]["session_id"]) if more and page else None
    return page, next_cursor


def _encode_cursor(at: datetime, session_id: str) -> str:
    return base64.urlsafe_b64encode(f"{at.isoformat()}|{session_id}".encode()).decode()


def _decode_cursor(cursor: str | None) -> tuple[datetime, str] | None:
    if not cursor:
        return None
    try:
        at, session_id = base64.urlsafe_b64decode(cursor.encode()).decode().split("|")
        return datetime.fromisoformat(at), str(uuid.UUID(session_id))
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidRequest(
            "the cursor is not one we issued", fields=[{"field": "cursor", "problem": "invalid"}]
        ) from exc


def ensure_role(role: Role | None) -> Role:
    if role not in (Role.CLIENT, Role.MITRA):
        raise Forbidden("only the session's participants may do this")
    return role


def append_message(
    tx: Any, *, session_id: str, kind: str, sender_role: str, sender_id: str | None, sender_uid: str | None, text: str
) -> dict[str, Any]:
    """A system or goodbye message inside a larger transaction (the session row is locked by the caller)."""
    message_id = str(uuid.uuid4())
    row = tx.one(
        """WITH bump AS (UPDATE sessions SET next_seq = next_seq + 1 WHERE id = CAST(:sid AS uuid) RETURNING next_seq)
           INSERT INTO chat_messages (id, session_id, seq, kind, sender_role, sender_id, text)
           SELECT CAST(:mid AS uuid), CAST(:sid AS uuid), bump.next_seq, :kind, :role, CAST(:sender AS uuid), :text
           FROM bump RETURNING seq, created_at""",
        {"sid": session_id, "mid": message_id, "kind": kind, "role": sender_role, "sender": sender_id, "text": text},
    )
    projections.session_message(
        tx, session_id, message_id,
        {"message_id": message_id, "session_id": session_id, "kind": kind, "sender_role": sender_role,
         "sender_uid": sender_uid, "text": text, "status": "sent", "seq": row["seq"],
         "created_at": ts(row["created_at"])},
    )  # fmt: skip
    return {"message_id": message_id, "seq": row["seq"], "created_at": row["created_at"]}
