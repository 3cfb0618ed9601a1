"""Who may run the control center: `role: admin` is given only by the seed or by another admin, here."""

from __future__ import annotations

from shared.adapters.postgres.database import Database, Row
from shared.errors import Conflict, NotFound
from shared.services import audit
from shared.services.identity import IdentityCache
from shared.services.ports import IdentityProvider

_COLUMNS = "id::text AS admin_id, email, created_at, created_by, on_duty"


def list_admins(db: Database) -> list[Row]:
    with db.transaction() as tx:
        return tx.all(f"SELECT {_COLUMNS} FROM admins ORDER BY created_at")


def grant(db: Database, idp: IdentityProvider, identities: IdentityCache, actor_uid: str, email: str) -> Row:
    uid = idp.uid_for_email(email.lower())
    if uid is None:
        raise NotFound("no Halo Bestie sign-in uses this email; the person signs up with email and password first")
    with db.transaction() as tx:
        if tx.scalar(
            "SELECT EXISTS (SELECT 1 FROM clients WHERE firebase_uid = :uid UNION ALL "
            "SELECT 1 FROM mitras WHERE firebase_uid = :uid)",
            {"uid": uid},
        ):
            raise Conflict("this sign-in belongs to a client or a mitra", code="role_conflict")
        row = tx.one(
            f"""INSERT INTO admins (firebase_uid, email, created_by) VALUES (:uid, :email, :by)
                ON CONFLICT (firebase_uid) DO UPDATE SET email = EXCLUDED.email RETURNING {_COLUMNS}""",
            {"uid": uid, "email": email.lower(), "by": actor_uid},
        )
        assert row is not None
        audit.record(tx, actor_uid=actor_uid, actor_role="admin", action="admin.grant", target=row["admin_id"],
                     old=None, new={"email": row["email"]})  # fmt: skip
    idp.set_role(uid, "admin")
    identities.forget(uid)
    return row


def revoke(db: Database, idp: IdentityProvider, identities: IdentityCache, actor_uid: str, admin_id: str) -> Row:
    with db.transaction() as tx:
        row = tx.one(
            f"SELECT {_COLUMNS}, firebase_uid FROM admins WHERE id = CAST(:id AS uuid) FOR UPDATE", {"id": admin_id}
        )
        if row is None:
            raise NotFound("no such admin")
        if row["firebase_uid"] == actor_uid:
            raise Conflict("an admin cannot revoke their own role", code="cannot_revoke_self")
        tx.execute("DELETE FROM admins WHERE id = CAST(:id AS uuid)", {"id": admin_id})
        audit.record(tx, actor_uid=actor_uid, actor_role="admin", action="admin.revoke", target=admin_id,
                     old={"email": row["email"]}, new=None)  # fmt: skip
    idp.set_role(row["firebase_uid"], None)
    idp.revoke_sessions(row["firebase_uid"])
    identities.forget(row["firebase_uid"])
    return row


def set_on_duty(db: Database, actor_uid: str, admin_id: str, on_duty: bool) -> Row:
    """Whether this admin is pushed crisis alerts; any admin may set it for any admin (a shift hand-over), audited."""
    with db.transaction() as tx:
        old = tx.scalar("SELECT on_duty FROM admins WHERE id = CAST(:id AS uuid) FOR UPDATE", {"id": admin_id})
        if old is None:
            raise NotFound("no such admin")
        row = tx.one(
            f"UPDATE admins SET on_duty = :on WHERE id = CAST(:id AS uuid) RETURNING {_COLUMNS}",
            {"on": on_duty, "id": admin_id},
        )
        assert row is not None
        if old != on_duty:
            audit.record(tx, actor_uid=actor_uid, actor_role="admin", action="admin.on_duty", target=admin_id,
                         old={"on_duty": old}, new={"on_duty": on_duty})  # fmt: skip
    return row
