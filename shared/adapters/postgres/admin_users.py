"""The control center's clients in SQL: finding them, and suspending or reinstating one."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from shared.adapters.postgres.admin_paging import after, contains, where
from shared.adapters.postgres.sql import Sql
from shared.domain.admin import ClientOnFile

_CLIENT = """SELECT c.id::text AS client_id, c.firebase_uid, c.display_name, c.alias_number, c.anonymous, c.phone,
                    c.email, c.suspended_at, c.created_at
             FROM clients c"""

# Each applies when its parameter is given; the keyset continues newest first after the previous page's last row.
_FILTERS = {
    "pattern": "(c.display_name ILIKE :pattern OR c.phone ILIKE :pattern OR c.email ILIKE :pattern)",
    "suspended": "(c.suspended_at IS NOT NULL) = :suspended",
    "after_id": "(c.created_at, c.id) < (CAST(:after_sort AS timestamptz), CAST(:after_id AS uuid))",
}


class AdminUsersRepository:
    def __init__(self, sql: Sql) -> None:
        self._sql = sql

    def clients(
        self, *, search: str | None, suspended: bool | None, after_client: tuple[datetime, str] | None, limit: int
    ) -> list[ClientOnFile]:
        """Newest first; `search` matches any part of the name, phone number or email."""
        bound: dict[str, Any] = {"pattern": contains(search), "suspended": suspended, **after(after_client)}
        rows = self._sql.all(
            f"""{_CLIENT} WHERE {where(_FILTERS, bound)}
                ORDER BY c.created_at DESC, c.id DESC LIMIT :limit""",
            {**bound, "limit": limit},
        )
        return [ClientOnFile(**row) for row in rows]

    def client(self, client_id: str, *, lock: bool = False) -> ClientOnFile | None:
        """Locked, the row stays so until the change ends: one admin's change to a client at a time."""
        row = self._sql.one(
            f"{_CLIENT} WHERE c.id = CAST(:id AS uuid)" + (" FOR UPDATE" if lock else ""), {"id": client_id}
        )
        return ClientOnFile(**row) if row else None

    def set_suspended(self, client_id: str, suspended: bool) -> None:
        self._sql.execute(
            """UPDATE clients SET suspended_at = CASE WHEN :suspended THEN now() END, updated_at = now()
               WHERE id = CAST(:id AS uuid)""",
            {"suspended": suspended, "id": client_id},
        )

    def searching_requests(self, client_id: str) -> list[str]:
        rows = self._sql.all(
            "SELECT id::text FROM pairing_requests WHERE client_id = CAST(:id AS uuid) AND status = 'searching'",
            {"id": client_id},
        )
        return [row["id"] for row in rows]
