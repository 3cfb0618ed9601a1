"""The control center's queue of quarantined Xendit callbacks: money we could not match as ordered or refunded. An
admin settles each outside (the client, Xendit's dashboard) and records here what was done (audited)."""

from __future__ import annotations

from shared.adapters.postgres.database import Database, Row, Tx
from shared.errors import NotFound
from shared.services import audit
from shared.services.admin_paging import older_than_cursor, page

_COLUMNS = """id AS event_id, received_at, kind, reason, transaction_id::text, external_id, xendit_invoice_id,
    xendit_refund_id, provider_status, amount::float8 AS amount, paid_amount::float8 AS paid_amount, currency,
    reviewed_at, reviewed_by, review_note"""


def list_quarantined(
    db: Database, *, reviewed: bool | None, cursor: str | None, limit: int
) -> tuple[list[Row], str | None]:
    """Newest first, keyset on (received_at, id)."""
    where, keyset = older_than_cursor(cursor, "received_at", "id", int)
    where.append("outcome = 'quarantined'")
    if reviewed is not None:
        where.append(f"reviewed_at IS {'NOT ' if reviewed else ''}NULL")
    with db.transaction() as tx:
        rows = tx.all(
            f"""SELECT {_COLUMNS} FROM payment_events WHERE {" AND ".join(where)}
                ORDER BY received_at DESC, id DESC LIMIT :limit""",
            {**keyset, "limit": limit + 1},
        )
    return page(rows, limit, "received_at", "event_id")


def review(db: Database, admin_uid: str, event_id: int, note: str) -> Row:
    """Reviewing twice keeps the first review (and its note)."""
    with db.transaction() as tx:
        changed = tx.scalar(
            """UPDATE payment_events SET reviewed_at = now(), reviewed_by = :uid, review_note = :note
               WHERE id = :id AND outcome = 'quarantined' AND reviewed_at IS NULL RETURNING id""",
            {"uid": admin_uid, "note": note, "id": event_id},
        )
        if changed is not None:
            audit.record(tx, actor_uid=admin_uid, actor_role="admin", action="payment_event.review",
                         target=str(event_id), old={"reviewed": False},
                         new={"reviewed": True, "note": note})  # fmt: skip
        return _one(tx, event_id)


def _one(tx: Tx, event_id: int) -> Row:
    row = tx.one(f"SELECT {_COLUMNS} FROM payment_events WHERE id = :id AND outcome = 'quarantined'", {"id": event_id})
    if row is None:
        raise NotFound("no such quarantined payment event")
    return row
