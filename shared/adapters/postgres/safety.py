"""Crisis signals' SQL: flags on messages (the control center's alerts), the hotline card, the admins on duty."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from shared.adapters.postgres.sql import Sql
from shared.domain.safety import Alert, Category, Flag, FlaggedSession, SentMessage, Signal

_ALERT = """f.id::text AS alert_id, f.session_id::text, f.message_id::text, f.client_id::text, c.alias_number,
            f.category, f.created_at, f.acknowledged_at, f.acknowledged_by, f.note,
            f.report_id::text"""
# Spelled out, so that the open alerts' list uses the index of open alerts (safety_flags_open).
_ACKNOWLEDGED = {None: "true", True: "f.acknowledged_at IS NOT NULL", False: "f.acknowledged_at IS NULL"}


class SafetyRepository:
    def __init__(self, sql: Sql) -> None:
        self._sql = sql

    # -- checking a message ------------------------------------------------------------------------------------------

    def message(self, message_id: str, session_id: str) -> SentMessage | None:
        row = self._sql.one(
            """SELECT sender_role, text FROM chat_messages
               WHERE id = CAST(:mid AS uuid) AND session_id = CAST(:sid AS uuid)""",
            {"mid": message_id, "sid": session_id},
        )
        return SentMessage(**row) if row else None

    def locked_session(self, session_id: str) -> FlaggedSession:
        """The session row stays locked until the change ends: it orders a flag's card with the session's other
        messages (`seq`) and with a concurrent flag's card."""
        row = self._sql.one(
            """SELECT s.client_id::text, c.alias_number FROM sessions s JOIN clients c ON c.id = s.client_id
               WHERE s.id = CAST(:sid AS uuid) FOR UPDATE OF s""",
            {"sid": session_id},
        )
        assert row is not None, "a message's session exists"
        return FlaggedSession(**row)

    def flag_once(self, message_id: str, session_id: str, client_id: str, signal: Signal) -> Flag | None:
        """The message's flag, or None when it was flagged before (a redelivered check): `safety_flags` holds one
        row per message."""
        row = self._sql.one(
            """INSERT INTO safety_flags (message_id, session_id, client_id, category, phrase)
               VALUES (CAST(:mid AS uuid), CAST(:sid AS uuid), CAST(:cid AS uuid), :category, :phrase)
               ON CONFLICT (message_id) DO NOTHING RETURNING id::text AS alert_id, created_at""",
            {
                "mid": message_id,
                "sid": session_id,
                "cid": client_id,
                "category": signal.category.value,
                "phrase": signal.phrase,
            },
        )
        return Flag(**row) if row else None

    def hotline_shown(self, session_id: str) -> bool:
        """Whether a flag of this session has shown the hotline card already (it is shown once per session)."""
        return bool(
            self._sql.scalar(
                """SELECT EXISTS (SELECT 1 FROM safety_flags
                                  WHERE session_id = CAST(:sid AS uuid) AND hotline_message_id IS NOT NULL)""",
                {"sid": session_id},
            )
        )

    def record_hotline(self, alert_id: str, card_message_id: str) -> None:
        self._sql.execute(
            "UPDATE safety_flags SET hotline_message_id = CAST(:card AS uuid) WHERE id = CAST(:alert AS uuid)",
            {"card": card_message_id, "alert": alert_id},
        )

    def admins_on_duty(self) -> list[str]:
        """Their Firebase uids."""
        return [
            row["firebase_uid"] for row in self._sql.all("SELECT firebase_uid FROM admins WHERE on_duty ORDER BY id")
        ]

    def every_admin(self) -> list[str]:
        """Every admin's Firebase uid, on duty or not: whom a crisis nobody is on duty for is escalated to."""
        return [row["firebase_uid"] for row in self._sql.all("SELECT firebase_uid FROM admins ORDER BY id")]

    # -- the control center's alerts ---------------------------------------------------------------------------------

    def alerts(self, *, acknowledged: bool | None, after: tuple[datetime, str] | None, limit: int) -> list[Alert]:
        """Newest first, from after the keyset `after` (created_at, id); all, or only those (not) acknowledged."""
        params: dict[str, Any] = {"at": after[0] if after else None, "id": after[1] if after else None, "limit": limit}
        rows = self._sql.all(
            f"""SELECT {_ALERT} FROM safety_flags f JOIN clients c ON c.id = f.client_id
                WHERE {_ACKNOWLEDGED[acknowledged]}
                  AND (CAST(:at AS timestamptz) IS NULL
                       OR (f.created_at, f.id) < (CAST(:at AS timestamptz), CAST(:id AS uuid)))
                ORDER BY f.created_at DESC, f.id DESC LIMIT :limit""",
            params,
        )
        return [_alert(row) for row in rows]

    def alert(self, alert_id: str) -> Alert | None:
        row = self._sql.one(
            f"SELECT {_ALERT} FROM safety_flags f JOIN clients c ON c.id = f.client_id WHERE f.id = CAST(:id AS uuid)",
            {"id": alert_id},
        )
        return _alert(row) if row else None

    def acknowledge_if_open(self, alert_id: str, admin_uid: str, note: str | None) -> datetime | None:
        """When the alert was acknowledged now; None when it was acknowledged before (the first acknowledgement and
        its note stand) or does not exist."""
        acknowledged = self._sql.scalar(
            """UPDATE safety_flags SET acknowledged_at = now(), acknowledged_by = :uid, note = :note
               WHERE id = CAST(:id AS uuid) AND acknowledged_at IS NULL RETURNING acknowledged_at""",
            {"uid": admin_uid, "note": note, "id": alert_id},
        )
        return acknowledged if isinstance(acknowledged, datetime) else None


def _alert(row: dict[str, Any]) -> Alert:
    return Alert(**{**row, "category": Category(row["category"])})
