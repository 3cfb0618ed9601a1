"""Presence's SQL: a mitra's online/offline, heartbeats, the sweep's guarded change, and the transitions' log."""

from __future__ import annotations

import json
from datetime import datetime

from shared.adapters.postgres.sql import Sql
from shared.domain.presence import Heard, LoggedChange, MitraPresence, Presence, PresenceReason


class PresenceRepository:
    def __init__(self, sql: Sql) -> None:
        self._sql = sql

    def lock_active_mitra(self, mitra_id: str) -> MitraPresence | None:
        """An active mitra's presence, its row locked until the change ends (its accepts wait), with its latest
        logged transition."""
        row = self._sql.one(
            """SELECT m.presence, m.firebase_uid, last.to_status, last.reason, last.at, now() AS now
               FROM mitras m LEFT JOIN LATERAL (
                   SELECT to_status, reason, at FROM mitra_status_logs
                   WHERE mitra_id = m.id ORDER BY at DESC, id DESC LIMIT 1) AS last ON true
               WHERE m.id = CAST(:id AS uuid) AND m.active
               FOR UPDATE OF m""",
            {"id": mitra_id},
        )
        if row is None:
            return None
        last = None
        if row["to_status"] is not None:
            last = LoggedChange(Presence(row["to_status"]), PresenceReason(row["reason"]), row["at"])
        return MitraPresence(Presence(row["presence"]), row["firebase_uid"], last, row["now"])

    def set_presence(self, mitra_id: str, presence: Presence) -> None:
        """Going online counts as being heard from."""
        self._sql.execute(
            """UPDATE mitras SET presence = :status, updated_at = now(),
                   last_heartbeat_at = CASE WHEN :status = 'online' THEN now() ELSE last_heartbeat_at END
               WHERE id = CAST(:id AS uuid)""",
            {"id": mitra_id, "status": presence},
        )

    def heartbeat_if_online(self, mitra_id: str) -> bool:
        """Heard from now, if online; False for a mitra that is not (its app must go online again)."""
        row = self._sql.one(
            """UPDATE mitras SET last_heartbeat_at = now() WHERE id = CAST(:id AS uuid) AND presence = 'online'
               RETURNING presence""",
            {"id": mitra_id},
        )
        return row is not None

    def online_heartbeats(self) -> tuple[datetime, list[Heard]]:
        """Now, and every online mitra with when it was last heard from."""
        now = self._sql.scalar("SELECT now()")
        rows = self._sql.all(
            "SELECT id::text AS mitra_id, last_heartbeat_at FROM mitras WHERE presence = 'online' ORDER BY id"
        )
        return now, [Heard(**row) for row in rows]

    def take_offline_unless_heard_since(self, silent: list[Heard]) -> list[str]:
        """The sweep's verdict (`shared.domain.presence.silent`) applied to each mitra still online and not heard
        from since it was reached (a heartbeat, or going online again, moves `last_heartbeat_at`); their ids."""
        if not silent:
            return []
        rows = self._sql.all(
            """UPDATE mitras m SET presence = 'offline', updated_at = now()
               FROM jsonb_to_recordset(CAST(:silent AS jsonb)) AS s (mitra_id uuid, heard timestamptz)
               WHERE m.id = s.mitra_id AND m.presence = 'online'
                 AND m.last_heartbeat_at IS NOT DISTINCT FROM s.heard
               RETURNING m.id::text""",
            {"silent": json.dumps([_heard(mitra) for mitra in silent])},
        )
        return [row["id"] for row in rows]

    def log_transitions(self, mitra_ids: list[str], from_status: str, to_status: str, reason: str) -> None:
        """One `mitra_status_logs` row per mitra."""
        self._sql.execute(
            """INSERT INTO mitra_status_logs (mitra_id, from_status, to_status, reason)
               SELECT id, :from_status, :to_status, :reason FROM unnest(CAST(:ids AS uuid[])) AS id""",
            {"ids": mitra_ids, "from_status": from_status, "to_status": to_status, "reason": reason},
        )


def _heard(mitra: Heard) -> dict[str, str | None]:
    heard = mitra.last_heartbeat_at
    return {"mitra_id": mitra.mitra_id, "heard": heard.isoformat() if heard is not None else None}
