"""Who may run the control center, in memory: the promises of shared/adapters/postgres/admin_admins.py."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from shared.domain.admin import AdminOnFile

if TYPE_CHECKING:
    from tests.support.fakes import FakeDatabase

Row = dict[str, Any]


class FakeAdminAdminsRepository:
    def __init__(self, db: FakeDatabase) -> None:
        self._db = db

    def _admins(self) -> dict[Any, Row]:
        return self._db.table("admins")

    def _on_file(self, row: Row) -> AdminOnFile:
        return AdminOnFile(
            admin_id=row["id"],
            firebase_uid=row["firebase_uid"],
            email=row["email"],
            created_at=row.get("created_at", self._db.now),
            created_by=row.get("created_by"),
            on_duty=row["on_duty"],
        )

    def admins(self) -> list[AdminOnFile]:
        return [self._on_file(row) for row in self._admins().values()]

    def is_client_or_mitra(self, uid: str) -> bool:
        return any(
            row["firebase_uid"] == uid for table in ("clients", "mitras") for row in self._db.table(table).values()
        )

    def grant(self, uid: str, email: str, *, granted_by: str) -> AdminOnFile:
        existing = next((row for row in self._admins().values() if row["firebase_uid"] == uid), None)
        if existing is not None:
            existing["email"] = email
            return self._on_file(existing)
        admin_id = str(uuid.uuid4())
        self._admins()[admin_id] = {
            "id": admin_id,
            "firebase_uid": uid,
            "email": email,
            "created_at": self._db.now,
            "created_by": granted_by,
            "on_duty": True,
        }
        return self._on_file(self._admins()[admin_id])

    def lock_admin(self, admin_id: str) -> AdminOnFile | None:
        row = self._admins().get(admin_id)
        return self._on_file(row) if row else None

    def delete(self, admin_id: str) -> None:
        del self._admins()[admin_id]

    def set_on_duty(self, admin_id: str, on_duty: bool) -> AdminOnFile:
        self._admins()[admin_id]["on_duty"] = on_duty
        return self._on_file(self._admins()[admin_id])
