"""The audit log's reader in SQL: the changes (audit_log) and the hourly counts of admins' reads (audit_reads) as one
list, newest first, filtered and paged by keyset."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from shared.adapters.postgres.admin_paging import after, where
from shared.adapters.postgres.sql import Sql
from shared.domain.admin import AuditEntry

# Both tables as one list. An entry's id sorts ties on `at` the same way in both halves: `log-` then `reads-`, each
# with its row id zero-padded.
_ENTRIES = """
    SELECT 'log-' || lpad(id::text, 19, '0') AS entry_id, at, at AS last_at, actor_uid, actor_role, action, target,
           old_value AS old, new_value AS new, 1 AS reads
    FROM audit_log
    UNION ALL
    SELECT 'reads-' || lpad(id::text, 19, '0'), first_at, last_at, actor_uid, actor_role, function || '.read',
           function, NULL, queries, reads
    FROM audit_reads"""

# Each applies when its parameter is given; the keyset continues newest first after the previous page's last entry.
_FILTERS = {
    "actor_uid": "e.actor_uid = :actor_uid",
    "action": "e.action = :action",
    "target": "e.target = :target",
    "starts": "e.at >= :starts",
    "ends": "e.at < :ends",
    "after_id": "(e.at, e.entry_id) < (CAST(:after_sort AS timestamptz), :after_id)",
}


class AdminAuditRepository:
    def __init__(self, sql: Sql) -> None:
        self._sql = sql

    def entries(
        self,
        *,
        actor_uid: str | None,
        action: str | None,
        target: str | None,
        starts: datetime | None,
        ends: datetime | None,
        after_entry: tuple[datetime, str] | None,
        limit: int,
    ) -> list[AuditEntry]:
        """Newest first; those at a time in [starts, ends) (a read's hour is at its first read)."""
        bound: dict[str, Any] = {
            "actor_uid": actor_uid,
            "action": action,
            "target": target,
            "starts": starts,
            "ends": ends,
            **after(after_entry),
        }
        rows = self._sql.all(
            f"""SELECT e.* FROM ({_ENTRIES}) AS e WHERE {where(_FILTERS, bound)}
                ORDER BY e.at DESC, e.entry_id DESC LIMIT :limit""",
            {**bound, "limit": limit},
        )
        return [AuditEntry(**row) for row in rows]
