"""The control center's clients: finding them, and suspending or reinstating one."""

from __future__ import annotations

from shared.adapters.postgres.database import Database, Row, Tx
from shared.adapters.postgres.uow import joined
from shared.domain import accounts
from shared.domain.pairing import RequestStatus
from shared.errors import NotFound
from shared.services import audit
from shared.services.admin_paging import contains, older_than_cursor, page
from shared.services.identity import IdentityCache
from shared.services.pairing import end_search
from shared.services.ports import IdentityProvider, Ports
from shared.services.projector import project_after_commit

_COLUMNS = """c.id::text AS client_id, c.firebase_uid, c.display_name, c.alias_number, c.anonymous, c.phone, c.email,
    c.suspended_at, c.created_at"""


def list_clients(
    db: Database, *, search: str | None, suspended: bool | None, cursor: str | None, limit: int
) -> tuple[list[Row], str | None]:
    """Newest first; `search` matches any part of the name, phone number or email."""
    where, keyset = older_than_cursor(cursor, "c.created_at", "c.id")
    if search:
        where.append("(c.display_name ILIKE :pattern OR c.phone ILIKE :pattern OR c.email ILIKE :pattern)")
    if suspended is not None:
        where.append(f"c.suspended_at IS {'NOT ' if suspended else ''}NULL")
    with db.transaction() as tx:
        rows = tx.all(
            f"""SELECT {_COLUMNS} FROM clients c WHERE {" AND ".join(where or ["true"])}
                ORDER BY c.created_at DESC, c.id DESC LIMIT :limit""",
            {**keyset, "pattern": contains(search or ""), "limit": limit + 1},
        )
    shown, next_cursor = page(rows, limit, "created_at", "client_id")
    return [_shaped(row) for row in shown], next_cursor


def suspend(
    ports: Ports,
    idp: IdentityProvider,
    identities: IdentityCache,
    admin_uid: str,
    client_id: str,
    *,
    reason: str | None,
) -> Row:
    """Refused everywhere at once (identity is read from PostgreSQL), tokens revoked, and a searching request
    cancelled as if the client had cancelled it. A running session is left to its timer."""
    with ports.db.transaction() as tx:
        before = _one(tx, client_id, lock=True)
        if before["suspended_at"] is None:
            tx.execute(
                "UPDATE clients SET suspended_at = now(), updated_at = now() WHERE id = CAST(:id AS uuid)",
                {"id": client_id},
            )
            with joined(tx) as uow:
                for request_id in _searching_requests(tx, client_id):
                    end_search(uow, request_id, RequestStatus.CANCELLED)
            _audit(tx, admin_uid, "client.suspend", before, reason)
        after = _one(tx, client_id)
    project_after_commit(ports, tx.outbox_ids)
    idp.revoke_sessions(before["firebase_uid"])
    identities.forget(before["firebase_uid"])
    return _shaped(after)


def unsuspend(db: Database, identities: IdentityCache, admin_uid: str, client_id: str, reason: str | None) -> Row:
    with db.transaction() as tx:
        before = _one(tx, client_id, lock=True)
        if before["suspended_at"] is not None:
            tx.execute(
                "UPDATE clients SET suspended_at = NULL, updated_at = now() WHERE id = CAST(:id AS uuid)",
                {"id": client_id},
            )
            _audit(tx, admin_uid, "client.unsuspend", before, reason)
        after = _one(tx, client_id)
    identities.forget(before["firebase_uid"])
    return _shaped(after)


def _one(tx: Tx, client_id: str, *, lock: bool = False) -> Row:
    row = tx.one(
        f"SELECT {_COLUMNS} FROM clients c WHERE c.id = CAST(:id AS uuid)" + (" FOR UPDATE" if lock else ""),
        {"id": client_id},
    )
    if row is None:
        raise NotFound("no such client")
    return row


def _searching_requests(tx: Tx, client_id: str) -> list[str]:
    rows = tx.all(
        "SELECT id::text FROM pairing_requests WHERE client_id = CAST(:id AS uuid) AND status = 'searching'",
        {"id": client_id},
    )
    return [row["id"] for row in rows]


def _audit(tx: Tx, admin_uid: str, action: str, before: Row, reason: str | None) -> None:
    suspended = action == "client.suspend"
    audit.record(tx, actor_uid=admin_uid, actor_role="admin", action=action, target=before["client_id"],
                 old={"suspended": not suspended}, new={"suspended": suspended, "reason": reason})  # fmt: skip


def _shaped(row: Row) -> Row:
    return {**row, "alias": accounts.alias(row["alias_number"])}
