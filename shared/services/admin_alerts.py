"""The control center's crisis alerts: listing them and acknowledging one (audited, projected to its document)."""

from __future__ import annotations

from shared.adapters.postgres.database import Database, Row, Tx
from shared.domain import accounts
from shared.errors import NotFound
from shared.services import audit, projections
from shared.services.admin_paging import older_than_cursor, page
from shared.services.outbox import ts
from shared.services.ports import Ports
from shared.services.projector import project_after_commit

_COLUMNS = """f.id::text AS alert_id, f.session_id::text, f.message_id::text, f.client_id::text, c.alias_number,
    f.category, f.created_at, f.acknowledged_at, f.acknowledged_by, f.note"""


def list_alerts(
    db: Database, *, acknowledged: bool | None, cursor: str | None, limit: int
) -> tuple[list[Row], str | None]:
    """Newest first, keyset on (created_at, id)."""
    where, keyset = older_than_cursor(cursor, "f.created_at", "f.id")
    if acknowledged is not None:
        where.append(f"f.acknowledged_at IS {'NOT ' if acknowledged else ''}NULL")
    with db.transaction() as tx:
        rows = tx.all(
            f"""SELECT {_COLUMNS} FROM safety_flags f JOIN clients c ON c.id = f.client_id
                WHERE {" AND ".join(where or ["true"])} ORDER BY f.created_at DESC, f.id DESC LIMIT :limit""",
            {**keyset, "limit": limit + 1},
        )
    shown, next_cursor = page(rows, limit, "created_at", "alert_id")
    return [_shaped(row) for row in shown], next_cursor


def acknowledge(ports: Ports, admin_uid: str, alert_id: str, note: str | None) -> Row:
    """Acknowledging twice keeps the first acknowledgement (and its note)."""
    with ports.db.transaction() as tx:
        changed = tx.one(
            """UPDATE safety_flags SET acknowledged_at = now(), acknowledged_by = :uid, note = :note
               WHERE id = CAST(:id AS uuid) AND acknowledged_at IS NULL RETURNING acknowledged_at""",
            {"uid": admin_uid, "note": note, "id": alert_id},
        )
        if changed is not None:
            audit.record(tx, actor_uid=admin_uid, actor_role="admin", action="alert.acknowledge", target=alert_id,
                         old={"acknowledged": False}, new={"acknowledged": True, "note": note})  # fmt: skip
            # The note stays in PostgreSQL: it may say more about the client than the alert document should.
            projections.admin_alert(tx, alert_id, {"status": "acknowledged", "acknowledged_by": admin_uid,
                                                   "acknowledged_at": ts(changed["acknowledged_at"])})  # fmt: skip
        alert = _one(tx, alert_id)
    project_after_commit(ports, tx.outbox_ids)
    return alert


def _one(tx: Tx, alert_id: str) -> Row:
    row = tx.one(
        f"SELECT {_COLUMNS} FROM safety_flags f JOIN clients c ON c.id = f.client_id WHERE f.id = CAST(:id AS uuid)",
        {"id": alert_id},
    )
    if row is None:
        raise NotFound("no such alert")
    return _shaped(row)


def _shaped(row: Row) -> Row:
    return {**row, "client_alias": accounts.alias(row["alias_number"])}
