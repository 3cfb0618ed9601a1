"""The control center's mitras in SQL: the roster, registering, renaming, taking off and putting back on the roster,
and the presence history."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from shared.adapters.postgres.admin_paging import after, contains, where
from shared.adapters.postgres.sql import Sql
from shared.domain.accounts import MitraRelink, RelinkStatus
from shared.domain.admin import MitraOnRoster, OnlineDay, StatusChange

_MITRA = """SELECT m.id::text AS mitra_id, m.firebase_uid, m.display_name, m.phone, m.active, m.presence,
                   m.last_heartbeat_at, m.created_at, m.max_concurrent_clients,
                   (SELECT count(*) FROM sessions s WHERE s.mitra_id = m.id AND s.status IN ('active', 'closing'))
                       AS open_sessions
            FROM mitras m"""

# Each applies when its parameter is given; the keyset continues by name after the previous page's last row.
_FILTERS = {
    "presence": "m.presence = :presence",
    "active": "m.active = :active",
    "pattern": "(m.display_name ILIKE :pattern OR m.phone LIKE :pattern)",
    "after_id": "(m.display_name, m.id) > (:after_sort, CAST(:after_id AS uuid))",
}

# Online intervals are the stretches from a transition to `online` until the next transition (or, still open, until
# now or the end of the range). The last transition before the range says whether the range began online.
_ONLINE_BY_DAY = """
WITH transitions AS (
    (SELECT id, to_status, at FROM mitra_status_logs
     WHERE mitra_id = CAST(:mitra AS uuid) AND at < :starts ORDER BY at DESC, id DESC LIMIT 1)
    UNION ALL
    SELECT id, to_status, at FROM mitra_status_logs
    WHERE mitra_id = CAST(:mitra AS uuid) AND at >= :starts AND at < :ends
), spans AS (
    SELECT to_status, at AS span_start, lead(at) OVER (ORDER BY at, id) AS span_end FROM transitions
), online AS (
    SELECT GREATEST(span_start, :starts) AS span_start, LEAST(COALESCE(span_end, now()), now(), :ends) AS span_end
    FROM spans WHERE to_status = 'online'
), calendar AS (
    SELECT CAST(day AS date) AS day, day AT TIME ZONE :zone AS day_start,
           (day + interval '1 day') AT TIME ZONE :zone AS day_end
    FROM generate_series(CAST(:first AS timestamp), CAST(:last AS timestamp), interval '1 day') AS day
)
SELECT c.day,
       -- LEAST and GREATEST skip NULLs, so a day without an interval is left out of the sum explicitly.
       COALESCE(round(sum(EXTRACT(epoch FROM LEAST(o.span_end, c.day_end) - GREATEST(o.span_start, c.day_start)))
                      FILTER (WHERE o.span_start IS NOT NULL)), 0)::bigint AS online_s
FROM calendar c LEFT JOIN online o ON o.span_start < c.day_end AND o.span_end > c.day_start
GROUP BY c.day ORDER BY c.day
"""


class AdminMitrasRepository:
    def __init__(self, sql: Sql) -> None:
        self._sql = sql

    # -- the roster ------------------------------------------------------------------------------------------------

    def roster(
        self,
        *,
        presence: str | None,
        active: bool | None,
        search: str | None,
        after_mitra: tuple[str, str] | None,
        limit: int,
    ) -> list[MitraOnRoster]:
        """By name, then id; `search` matches any part of the name or the phone number."""
        bound: dict[str, Any] = {
            "presence": presence,
            "active": active,
            "pattern": contains(search),
            **after(after_mitra),
        }
        rows = self._sql.all(
            f"{_MITRA} WHERE {where(_FILTERS, bound)} ORDER BY m.display_name, m.id LIMIT :limit",
            {**bound, "limit": limit},
        )
        return [MitraOnRoster(**row) for row in rows]

    def mitra(self, mitra_id: str, *, lock: bool = False) -> MitraOnRoster | None:
        """Locked, the row stays so until the change ends: the mitra's own changes (going online, an accept) wait."""
        row = self._sql.one(
            f"{_MITRA} WHERE m.id = CAST(:id AS uuid)" + (" FOR UPDATE OF m" if lock else ""), {"id": mitra_id}
        )
        return MitraOnRoster(**row) if row else None

    # -- changes ---------------------------------------------------------------------------------------------------

    def phone_of_client(self, phone: str) -> bool:
        return bool(self._sql.scalar("SELECT EXISTS (SELECT 1 FROM clients WHERE phone = :phone)", {"phone": phone}))

    def add_if_phone_free(self, phone: str, display_name: str) -> str | None:
        """The new mitra's id; None when the number is already a mitra's (`shared.domain.admin.may_register_mitra`:
        the unique index on mitras.phone decides, also between two admins registering it at once)."""
        return self._sql.scalar(  # type: ignore[no-any-return]
            """INSERT INTO mitras (phone, display_name) VALUES (:phone, :name)
               ON CONFLICT (phone) DO NOTHING RETURNING id::text""",
            {"phone": phone, "name": display_name},
        )

    def rename(self, mitra_id: str, display_name: str) -> None:
        self._sql.execute(
            "UPDATE mitras SET display_name = :name, updated_at = now() WHERE id = CAST(:id AS uuid)",
            {"name": display_name, "id": mitra_id},
        )

    def set_capacity(self, mitra_id: str, max_clients: int | None) -> None:
        """The mitra's own maximum of concurrent clients (NULL: the global setting); the CHECK holds it to 1..20."""
        self._sql.execute(
            "UPDATE mitras SET max_concurrent_clients = :max, updated_at = now() WHERE id = CAST(:id AS uuid)",
            {"max": max_clients, "id": mitra_id},
        )

    def open_sessions(self, mitra_id: str) -> list[str]:
        """Locked until the change ends, so their documents' versions follow the order of the changes
        (shared/domain/projection.py), and a reroute under way is waited for."""
        rows = self._sql.all(
            """SELECT id::text FROM sessions WHERE mitra_id = CAST(:id AS uuid) AND status IN ('active', 'closing')
               ORDER BY id FOR UPDATE""",
            {"id": mitra_id},
        )
        return [row["id"] for row in rows]

    def take_off_roster(self, mitra_id: str) -> None:
        """Inactive and offline at once: no offer reaches them, and they have no role
        (`shared.domain.accounts.identity_of`)."""
        self._sql.execute(
            "UPDATE mitras SET active = false, presence = 'offline', updated_at = now() WHERE id = CAST(:id AS uuid)",
            {"id": mitra_id},
        )

    def put_back_on_roster(self, mitra_id: str) -> None:
        """Presence stays offline until the mitra goes online."""
        self._sql.execute(
            "UPDATE mitras SET active = true, updated_at = now() WHERE id = CAST(:id AS uuid)", {"id": mitra_id}
        )

    # -- presence history ------------------------------------------------------------------------------------------

    def status_changes(self, mitra_id: str, *, starts: datetime, ends: datetime) -> list[StatusChange]:
        rows = self._sql.all(
            """SELECT at, from_status, to_status, reason FROM mitra_status_logs
               WHERE mitra_id = CAST(:mitra AS uuid) AND at >= :starts AND at < :ends ORDER BY at, id""",
            {"mitra": mitra_id, "starts": starts, "ends": ends},
        )
        return [StatusChange(**row) for row in rows]

    def online_by_day(
        self, mitra_id: str, *, first: date, last: date, starts: datetime, ends: datetime, zone: str
    ) -> list[OnlineDay]:
        """The time online on each day from `first` to `last` in `zone` ([starts, ends) in absolute time)."""
        rows = self._sql.all(
            _ONLINE_BY_DAY,
            {"mitra": mitra_id, "first": first, "last": last, "starts": starts, "ends": ends, "zone": zone},
        )
        return [OnlineDay(**row) for row in rows]

    # -- relinks -----------------------------------------------------------------------------------------------------

    def relinks(self, *, status: str | None, after: tuple[datetime, str] | None, limit: int) -> list[MitraRelink]:
        """Newest first, keyset on (requested_at, id); all, or those of one status."""
        rows = self._sql.all(
            f"""{_RELINK}
                WHERE (CAST(:status AS text) IS NULL OR r.status = :status)
                  AND (CAST(:at AS timestamptz) IS NULL OR (r.requested_at, r.id) < (:at, CAST(:id AS uuid)))
                ORDER BY r.requested_at DESC, r.id DESC LIMIT :limit""",
            {"status": status, "at": after[0] if after else None, "id": after[1] if after else None, "limit": limit},
        )
        return [_relink(row) for row in rows]

    def relink(self, relink_id: str, *, lock: bool = False) -> MitraRelink | None:
        """Locked, two admins deciding the same request decide one after the other."""
        row = self._sql.one(
            f"{_RELINK} WHERE r.id = CAST(:id AS uuid)" + (" FOR UPDATE OF r" if lock else ""), {"id": relink_id}
        )
        return _relink(row) if row else None

    def decide_relink(self, relink_id: str, *, status: RelinkStatus, admin_uid: str, note: str | None) -> None:
        """Only a pending request is decided (`mitra_relinks`' CHECK ties decided_at to the status)."""
        self._sql.execute(
            """UPDATE mitra_relinks SET status = :status, decided_at = now(), decided_by = :admin, note = :note
               WHERE id = CAST(:id AS uuid) AND status = 'pending'""",
            {"status": status.value, "admin": admin_uid, "note": note, "id": relink_id},
        )


_RELINK = """SELECT r.id::text AS relink_id, r.mitra_id::text AS mitra_id, m.display_name AS mitra_name, m.phone,
                    r.firebase_uid, r.previous_uid, r.status, r.requested_at, r.decided_at, r.decided_by, r.note
             FROM mitra_relinks r JOIN mitras m ON m.id = r.mitra_id"""


def _relink(row: dict[str, Any]) -> MitraRelink:
    return MitraRelink(**{**row, "status": RelinkStatus(row["status"])})
