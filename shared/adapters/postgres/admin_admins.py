"""Who may run the control center, in SQL."""

from __future__ import annotations

from shared.adapters.postgres.sql import Sql
from shared.domain.admin import AdminOnFile

_COLUMNS = "id::text AS admin_id, firebase_uid, email, created_at, created_by, on_duty"


class AdminAdminsRepository:
    def __init__(self, sql: Sql) -> None:
        self._sql = sql

    def admins(self) -> list[AdminOnFile]:
        return [AdminOnFile(**row) for row in self._sql.all(f"SELECT {_COLUMNS} FROM admins ORDER BY created_at")]

    def is_client_or_mitra(self, uid: str) -> bool:
        """Whether this sign-in is a client's or a mitra's (`shared.domain.admin.may_grant`)."""
        return bool(
            self._sql.scalar(
                """SELECT EXISTS (SELECT 1 FROM clients WHERE firebase_uid = :uid
                                  UNION ALL SELECT 1 FROM mitras WHERE firebase_uid = :uid)""",
                {"uid": uid},
            )
        )

    def grant(self, uid: str, email: str, *, granted_by: str) -> AdminOnFile:
        """Granting again keeps the admin, with the sign-in's current email."""
        row = self._sql.one(
            f"""INSERT INTO admins (firebase_uid, email, created_by) VALUES (:uid, :email, :by)
                ON CONFLICT (firebase_uid) DO UPDATE SET email = EXCLUDED.email RETURNING {_COLUMNS}""",
            {"uid": uid, "email": email, "by": granted_by},
        )
        assert row is not None
        return AdminOnFile(**row)

    def lock_admin(self, admin_id: str) -> AdminOnFile | None:
        """The admin's row stays locked until the change ends: one change to an admin at a time."""
        row = self._sql.one(f"SELECT {_COLUMNS} FROM admins WHERE id = CAST(:id AS uuid) FOR UPDATE", {"id": admin_id})
        return AdminOnFile(**row) if row else None

    def delete(self, admin_id: str) -> None:
        self._sql.execute("DELETE FROM admins WHERE id = CAST(:id AS uuid)", {"id": admin_id})

    def set_on_duty(self, admin_id: str, on_duty: bool) -> AdminOnFile:
        row = self._sql.one(
            f"UPDATE admins SET on_duty = :on WHERE id = CAST(:id AS uuid) RETURNING {_COLUMNS}",
            {"on": on_duty, "id": admin_id},
        )
        assert row is not None
        return AdminOnFile(**row)
