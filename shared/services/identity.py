"""Who a verified Firebase user is to us."""

from __future__ import annotations

from shared.adapters.db import Database
from shared.domain.roles import Role


def resolve_role(db: Database, uid: str, claimed: str | None) -> Role | None:
    """The custom claim when present; otherwise PostgreSQL, so a fresh sign-up works before its token refresh."""
    if claimed is not None and claimed in Role._value2member_map_:
        return Role(claimed)
    with db.transaction() as tx:
        found = tx.scalar(
            """SELECT role FROM (
                   SELECT 'admin' AS role, 1 AS rank FROM admins WHERE firebase_uid = :uid
                   UNION ALL SELECT 'mitra', 2 FROM mitras WHERE firebase_uid = :uid AND active
                   UNION ALL SELECT 'client', 3 FROM clients WHERE firebase_uid = :uid
               ) AS known ORDER BY rank LIMIT 1""",
            {"uid": uid},
        )
    return Role(found) if found else None
