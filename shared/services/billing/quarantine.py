"""The control center's queue of quarantined Xendit callbacks: money we could not match as ordered or refunded. An
admin settles each outside (the client, Xendit's dashboard) and records here what was done (audited)."""

from __future__ import annotations

from datetime import datetime

from shared.errors import NotFound
from shared.services.admin_paging import page, read_cursor
from shared.services.billing import Row
from shared.services.ports import Ports


def list_quarantined(
    ports: Ports, *, reviewed: bool | None, cursor: str | None, limit: int
) -> tuple[list[Row], str | None]:
    """Newest first, keyset on (received_at, id)."""
    after = read_cursor(cursor, datetime.fromisoformat, int)
    with ports.uow(one_statement=True) as uow:
        rows = uow.billing.quarantined(
            reviewed=reviewed, after=(after[0], after[1]) if after else None, limit=limit + 1
        )
    return page(rows, limit, "received_at", "event_id")


def review(ports: Ports, admin_uid: str, event_id: int, note: str) -> Row:
    """Reviewing twice keeps the first review (and its note)."""
    with ports.uow() as uow:
        if uow.billing.review_if_unreviewed(event_id, admin_uid=admin_uid, note=note):
            uow.audit.record(
                actor_uid=admin_uid,
                actor_role="admin",
                action="payment_event.review",
                target=str(event_id),
                old={"reviewed": False},
                new={"reviewed": True, "note": note},
            )
        reviewed = uow.billing.quarantined_event(event_id)
        if reviewed is None:
            raise NotFound("no such quarantined payment event")
        uow.commit()
    return reviewed
