"""Chat's SQL: messages, receipts' watermarks, typing leases, and reading a conversation back."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from shared.adapters.postgres.database import Row
from shared.adapters.postgres.outbox import traced
from shared.adapters.postgres.sql import Sql
from shared.domain.chat import (
    Appended,
    NewMessage,
    Recipient,
    Refused,
    SendRefusal,
    Sent,
    Side,
    TypingWritten,
    Watermarks,
    stamped,
)
from shared.domain.events import Committed, DocumentWrite, TopicMessage, encode

# The rows a send records are the fast path's to deliver; the sweep takes them only if it has not within this.
SWEEP_GRACE_S = 15

# The rule `shared.domain.chat.may_send`, decided and applied in one statement (one round trip per message): the
# session row is locked (so `seq` is allocated in order and the rate count sees every earlier message), the message
# inserted unless the sender is not a participant of an active session before its end or has sent the most a minute
# allows, and the two outbox rows of the send recorded with it: the message's document, stamped (as
# `shared.domain.chat.stamped` does) with the `seq` and `created_at` given here, and the `chat-messages` event.
# `client_message_id` is unique per session: a retry inserts nothing and finds the first message.
_APPEND = f"""
WITH s AS (
    SELECT s.id, s.next_seq FROM sessions s
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
    RETURNING seq, created_at
), bump AS (
    UPDATE sessions SET next_seq = ins.seq FROM ins WHERE sessions.id = CAST(:sid AS uuid) RETURNING 1
), document AS (
    INSERT INTO outbox (kind, destination, payload, next_attempt_at)
    SELECT :document_kind, :document_destination,
           jsonb_set(jsonb_set(CAST(:document_payload AS jsonb), '{{data,seq}}', to_jsonb(ins.seq)),
                     '{{data,created_at}}', jsonb_build_object('$ts', ins.created_at)),
           now() + interval '{SWEEP_GRACE_S} seconds'
    FROM ins RETURNING id
), posted AS (
    INSERT INTO outbox (kind, destination, payload, next_attempt_at)
    SELECT :posted_kind, :posted_destination, CAST(:posted_payload AS jsonb),
           now() + interval '{SWEEP_GRACE_S} seconds'
    FROM ins RETURNING id
)
SELECT (SELECT count(*) FROM s) AS open, recent.limited, recent.wait_s, ins.seq, ins.created_at,
       (SELECT id FROM document) AS document_outbox, (SELECT id FROM posted) AS posted_outbox
FROM recent LEFT JOIN ins ON true
"""

_MESSAGE_COLUMNS = "id::text AS message_id, seq, kind, sender_role, text, created_at"
_SESSION_VIEW = """s.id::text AS session_id, s.status, s.kind, s.started_at, s.ends_at,
                   c.display_name AS client_display_name, c.anonymous, c.alias_number, m.display_name AS mitra_name,
                   s.mitra_id::text AS mitra_id"""

# The rule `shared.domain.accounts.client_sees_session`: since a takeover, the client's login lists only the sessions
# started after it (until the previous login confirms).
_CLIENT_SEES_SESSION = "(c.history_from IS NULL OR s.started_at >= c.history_from)"


class ChatRepository:
    def __init__(self, sql: Sql) -> None:
        self._sql = sql

    def append_if_sender_may_send(
        self, message: NewMessage, *, sender_id: str, document: DocumentWrite, posted: TopicMessage
    ) -> Appended | Refused:
        """The message stored and its two events recorded with it (see _APPEND), or why not. A retry of a message
        already stored stores nothing and is refused too (for its session having ended since, or as
        ALREADY_STORED): look for it (`stored`) before believing a refusal."""
        posted = traced(posted)  # on_chat_message (the push, the crisis check) logs under the sender's trace
        document_row, posted_row = encode(document), encode(posted)
        row = self._sql.one(
            _APPEND,
            {
                "sid": message.session_id,
                "role": message.sender_role,
                "account": sender_id,
                "mid": message.message_id,
                "cmid": message.client_message_id,
                "text": message.text,
                "document_kind": document_row.kind,
                "document_destination": document_row.destination,
                "document_payload": json.dumps(document_row.payload),
                "posted_kind": posted_row.kind,
                "posted_destination": posted_row.destination,
                "posted_payload": json.dumps(posted_row.payload),
            },
        )
        assert row is not None
        if row["seq"] is not None:
            return Appended(
                seq=row["seq"],
                created_at=row["created_at"],
                committed=[
                    Committed(row["document_outbox"], stamped(document, seq=row["seq"], created_at=row["created_at"])),
                    Committed(row["posted_outbox"], posted),
                ],
            )
        if not row["open"]:
            return Refused(SendRefusal.SESSION_NOT_ACTIVE)
        if row["limited"]:
            return Refused(SendRefusal.RATE_LIMITED, retry_after_s=max(1, int(row["wait_s"] or 1)))
        return Refused(SendRefusal.ALREADY_STORED)

    def stored(self, session_id: str, client_message_id: str) -> Sent | None:
        """The message a sender's `client_message_id` already stored, if any."""
        row = self._sql.one(
            """SELECT id::text AS message_id, seq, created_at FROM chat_messages
               WHERE session_id = CAST(:sid AS uuid) AND client_message_id = CAST(:cmid AS uuid)""",
            {"sid": session_id, "cmid": client_message_id},
        )
        return Sent(**row) if row else None

    def append(self, message: NewMessage, *, sender_id: str | None) -> tuple[int, datetime]:
        """A system or goodbye message inside a larger change whose caller holds the session's row lock: its `seq`
        and `created_at`."""
        row = self._sql.one(
            """WITH bump AS (
                   UPDATE sessions SET next_seq = next_seq + 1 WHERE id = CAST(:sid AS uuid) RETURNING next_seq)
               INSERT INTO chat_messages (id, session_id, seq, kind, sender_role, sender_id, text)
               SELECT CAST(:mid AS uuid), CAST(:sid AS uuid), bump.next_seq, :kind, :role, CAST(:sender AS uuid), :text
               FROM bump RETURNING seq, created_at""",
            {
                "sid": message.session_id,
                "mid": message.message_id,
                "kind": message.kind,
                "role": message.sender_role,
                "sender": sender_id,
                "text": message.text,
            },
        )
        assert row is not None, "the caller holds the session's row"
        return row["seq"], row["created_at"]

    def recipient(self, session_id: str, message_id: str) -> Recipient | None:
        """The other participant of a message's session, as the session stands now (a reroute moves it)."""
        row = self._sql.one(
            """SELECT CASE m.sender_role WHEN 'client' THEN mi.firebase_uid ELSE c.firebase_uid END AS uid,
                      m.text, CASE m.sender_role WHEN 'client' THEN 'mitra' ELSE 'client' END AS side,
                      c.push_previews AS client_push_previews
               FROM chat_messages m JOIN sessions s ON s.id = m.session_id
                    JOIN clients c ON c.id = s.client_id JOIN mitras mi ON mi.id = s.mitra_id
               WHERE m.id = CAST(:mid AS uuid) AND m.session_id = CAST(:sid AS uuid)""",
            {"mid": message_id, "sid": session_id},
        )
        return Recipient(**row) if row is not None and row["uid"] is not None else None

    # -- receipts ----------------------------------------------------------------------------------------------------

    def locked_watermarks(self, session_id: str, side: Side, account_id: str) -> Watermarks | None:
        """This participant's watermarks, the session row locked until the change ends; None if not theirs."""
        row = self._sql.one(
            f"""SELECT {side}_delivered_seq AS delivered, {side}_read_seq AS read,
                       {side}_receipts_outbox_id AS pending_outbox_id
                FROM sessions WHERE id = CAST(:sid AS uuid) AND {side}_id = CAST(:account AS uuid) FOR UPDATE""",
            {"sid": session_id, "account": account_id},
        )
        return Watermarks(**row) if row else None

    def message_seq(self, session_id: str, message_id: str) -> int | None:
        seq = self._sql.scalar(
            "SELECT seq FROM chat_messages WHERE id = CAST(:mid AS uuid) AND session_id = CAST(:sid AS uuid)",
            {"mid": message_id, "sid": session_id},
        )
        return int(seq) if seq is not None else None

    def save_watermarks(self, session_id: str, side: Side, marks: Watermarks) -> None:
        self._sql.execute(
            f"""UPDATE sessions SET {side}_delivered_seq = :d, {side}_read_seq = :r,
                    {side}_receipts_outbox_id = :pending
                WHERE id = CAST(:sid AS uuid)""",
            {"d": marks.delivered, "r": marks.read, "pending": marks.pending_outbox_id, "sid": session_id},
        )

    # -- typing ------------------------------------------------------------------------------------------------------

    def typing(
        self, session_id: str, side: Side, account_id: str, *, typing: bool, renew_s: float, ttl_s: float
    ) -> TypingWritten | None:
        """The rules `shared.domain.chat.typing_renewable` (typing) and `typing_clearable` (not typing), applied in
        one guarded UPDATE of an active session's lease; None when there was nothing to write."""
        column = f"{side}_typing_at"
        row = self._sql.one(
            f"""UPDATE sessions SET {column} = CASE WHEN :typing THEN now() ELSE NULL END
                WHERE id = CAST(:sid AS uuid) AND status = 'active'
                  AND CAST(:account AS uuid) = {side}_id
                  AND CASE WHEN :typing THEN {column} IS NULL OR {column} <= now() - make_interval(secs => :renew)
                           ELSE {column} > now() - make_interval(secs => :ttl)
                                AND NOT EXISTS (SELECT 1 FROM chat_messages m
                                                WHERE m.session_id = sessions.id
                                                  AND m.sender_id = CAST(:account AS uuid)
                                                  AND m.created_at >= sessions.{column}) END
                RETURNING now() AS at, {side}_delivered_seq AS delivered, {side}_read_seq AS read,
                          (SELECT o.id FROM outbox o
                           WHERE o.id = {side}_receipts_outbox_id AND o.published_at IS NULL)
                              AS pending_receipts_outbox_id""",
            {"typing": typing, "sid": session_id, "account": account_id, "renew": renew_s, "ttl": ttl_s},
        )
        return TypingWritten(**row) if row else None

    def is_participant(self, session_id: str, side: Side, account_id: str) -> bool:
        return (
            self._sql.one(
                f"SELECT 1 AS ok FROM sessions WHERE id = CAST(:sid AS uuid) AND {side}_id = CAST(:account AS uuid)",
                {"sid": session_id, "account": account_id},
            )
            is not None
        )

    # -- reading back ------------------------------------------------------------------------------------------------

    def session_view(self, session_id: str) -> Row | None:
        """A session as its readers see it, with both participants' ids to decide who may."""
        return self._sql.one(
            f"""SELECT {_SESSION_VIEW}, s.client_id::text, c.history_from AS client_history_from
                FROM sessions s JOIN clients c ON c.id = s.client_id JOIN mitras m ON m.id = s.mitra_id
                WHERE s.id = CAST(:sid AS uuid)""",
            {"sid": session_id},
        )

    def history(self, session_id: str, *, before_seq: int | None, limit: int) -> list[Row]:
        """Up to `limit` messages older than `before_seq`, newest first."""
        return self._sql.all(
            f"""SELECT {_MESSAGE_COLUMNS} FROM chat_messages
                WHERE session_id = CAST(:sid AS uuid) AND (CAST(:before AS bigint) IS NULL OR seq < :before)
                ORDER BY seq DESC LIMIT :limit""",
            {"sid": session_id, "before": before_seq, "limit": limit},
        )

    def messages(self, session_id: str) -> list[Row]:
        """Every message of a session, in order."""
        return self._sql.all(
            f"SELECT {_MESSAGE_COLUMNS} FROM chat_messages WHERE session_id = CAST(:sid AS uuid) ORDER BY seq",
            {"sid": session_id},
        )

    def sessions_of(self, side: Side, account_id: str, *, after: tuple[datetime, str] | None, limit: int) -> list[Row]:
        """A participant's sessions, newest first, from after the keyset `after` (started_at, id)."""
        params: dict[str, Any] = {
            "account": account_id,
            "at": after[0] if after else None,
            "id": after[1] if after else None,
            "limit": limit,
        }
        return self._sql.all(
            f"""SELECT {_SESSION_VIEW}
                FROM sessions s JOIN clients c ON c.id = s.client_id JOIN mitras m ON m.id = s.mitra_id
                WHERE s.{side}_id = CAST(:account AS uuid) AND {_CLIENT_SEES_SESSION if side == "client" else "true"}
                  AND (CAST(:at AS timestamptz) IS NULL
                       OR (s.started_at, s.id) < (CAST(:at AS timestamptz), CAST(:id AS uuid)))
                ORDER BY s.started_at DESC, s.id DESC LIMIT :limit""",
            params,
        )
