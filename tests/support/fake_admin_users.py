"""The control center's clients in memory: the promises of shared/adapters/postgres/admin_users.py."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from shared.domain.admin import ClientOnFile

if TYPE_CHECKING:
    from tests.support.fakes import FakeDatabase

Row = dict[str, Any]


class FakeAdminUsersRepository:
    def __init__(self, db: FakeDatabase) -> None:
        self._db = db

    def clients(
        self, *, search: str | None, suspended: bool | None, after_client: tuple[datetime, str] | None, limit: int
    ) -> list[ClientOnFile]:
        """`search` as ILIKE '%text%' takes it: any part, any case, wildcards literal."""
        needle = search.lower() if search is not None else None
        found = [
            c
            for c in self._db.table("clients").values()
            if (needle is None or any(needle in (c.get(f) or "").lower() for f in ("display_name", "phone", "email")))
            and (suspended is None or (c.get("suspended_at") is not None) == suspended)
            and (after_client is None or (c["created_at"], c["id"]) < after_client)
        ]
        found.sort(key=lambda c: (c["created_at"], c["id"]), reverse=True)
        return [_on_file(c) for c in found[:limit]]

    def client(self, client_id: str, *, lock: bool = False) -> ClientOnFile | None:
        row = self._db.table("clients").get(client_id)
        return _on_file(row) if row else None

    def set_suspended(self, client_id: str, suspended: bool) -> None:
        self._db.table("clients")[client_id]["suspended_at"] = self._db.now if suspended else None

    def searching_requests(self, client_id: str) -> list[str]:
        return [
            r["id"]
            for r in self._db.table("pairing_requests").values()
            if r["client_id"] == client_id and r["status"] == "searching"
        ]


def _on_file(row: Row) -> ClientOnFile:
    return ClientOnFile(
        client_id=row["id"],
        firebase_uid=row["firebase_uid"],
        display_name=row["display_name"],
        alias_number=row["alias_number"],
        anonymous=row["anonymous"],
        phone=row.get("phone"),
        email=row.get("email"),
        suspended_at=row.get("suspended_at"),
        created_at=row["created_at"],
    )
