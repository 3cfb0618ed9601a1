"""Presence's SQL: a mitra's online/offline, heartbeats, the sweep's guarded change, and the transitions' log."""

from __future__ import annotations

import json
from datetime import datetime

from shared.adapters.postgres.sql import Sql
from shared.domain.config import AppConfig
from shared.domain.presence import BEATS_PER_GRACE, Heard, LoggedChange, MitraPresence, Presence, PresenceReason

# The rule shared.domain.presence.pace in SQL, as a CTE `pace (interval_s, grace_s)`: from the settings as they are
# now (a setting not in app_config has AppConfig's default) and the number online the last sweep left
# (`presence_pace`). tests/integration/test_presence_pace.py holds it to the rule. Takes `_PACE_PARAMS`.
_PACE = """
    settings AS (
        SELECT COALESCE((SELECT (value #>> '{}')::int FROM app_config WHERE key = 'heartbeat_grace_s'),
                        :default_grace_s) AS grace_s,
               COALESCE((SELECT (value #>> '{}')::int FROM app_config WHERE key = 'heartbeats_per_s_max'),
                        :default_rate) AS rate
    ), paced AS (
        SELECT GREATEST(s.grace_s / CAST(:beats AS integer), CEIL(p.online::numeric / s.rate)::int, 1) AS interval_s,
               s.grace_s
        FROM settings s CROSS JOIN presence_pace p
    ), pace AS (
        SELECT interval_s, GREATEST(grace_s, interval_s * CAST(:beats AS integer)) AS grace_s FROM paced
    )
"""
_DEFAULTS = AppConfig.from_rows({})
_PACE_PARAMS = {
    "default_grace_s": _DEFAULTS.heartbeat_grace_s,
    "default_rate": _DEFAULTS.heartbeats_per_s_max,
    "beats": BEATS_PER_GRACE,
}


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
        """Going online counts as being heard from: the lease is the current pace's grace."""
        self._sql.execute(
            f"""WITH {_PACE}
               UPDATE mitras m SET presence = :status, updated_at = now(),
                   last_heartbeat_at = CASE WHEN :status = 'online' THEN now() ELSE m.last_heartbeat_at END,
                   heard_until = CASE WHEN :status = 'online' THEN now() + make_interval(secs => pace.grace_s)
                                      ELSE m.heard_until END
               FROM pace
               WHERE m.id = CAST(:id AS uuid)""",
            {"id": mitra_id, "status": presence, **_PACE_PARAMS},
        )

    def heartbeat_if_online(self, mitra_id: str) -> int | None:
        """Heard from now, if online, with the current pace's lease; the seconds until its next beat, or None for a
        mitra that is not online (its app must go online again). One statement."""
        row = self._sql.one(
            f"""WITH {_PACE}
               UPDATE mitras m SET last_heartbeat_at = now(), heard_until = now() + make_interval(secs => pace.grace_s)
               FROM pace
               WHERE m.id = CAST(:id AS uuid) AND m.presence = 'online'
               RETURNING pace.interval_s""",
            {"id": mitra_id, **_PACE_PARAMS},
        )
        return None if row is None else int(row["interval_s"])

    def online_heartbeats(self) -> tuple[datetime, list[Heard]]:
        """Now, and every online mitra with when it was last heard from and until when that holds."""
        now = self._sql.scalar("SELECT now()")
        rows = self._sql.all(
            """SELECT id::text AS mitra_id, last_heartbeat_at, heard_until FROM mitras WHERE presence = 'online'
               ORDER BY id"""
        )
        return now, [Heard(**row) for row in rows]

    def set_online_count(self, online: int) -> None:
        """How many mitras are online, as the pace of the heartbeats to come reads it (`presence_pace`, one row)."""
        self._sql.execute("UPDATE presence_pace SET online = :online, updated_at = now()", {"online": online})

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
