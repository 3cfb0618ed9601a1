"""The control center's audit log reader: who did what, when, to what; and how often each admin read each function.
Reading it is itself audited (functions/_http.py `_audit_read` counts every admin read)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Protocol

from shared.domain import days
from shared.domain.admin import AuditEntry
from shared.errors import InvalidRequest
from shared.services.admin_paging import keyset, page
from shared.services.ports import Ports


class AdminAuditRepository(Protocol):
    """What the audit log reader needs from storage (shared/adapters/postgres/admin_audit.py)."""

    def entries(
        self,
        *,
        actor_uid: str | None,
        action: str | None,
        target: str | None,
        starts: datetime | None,
        ends: datetime | None,
        after_entry: tuple[datetime, str] | None,
        limit: int,
    ) -> list[AuditEntry]: ...


def list_entries(
    ports: Ports,
    *,
    actor_uid: str | None,
    action: str | None,
    target: str | None,
    first: date | None,
    last: date | None,
    cursor: str | None,
    limit: int,
) -> tuple[list[AuditEntry], str | None]:
    """Newest first; `first`/`last` are Jakarta days (both included). A change is one entry; an admin's reads of one
    function in one hour are one entry counting them (`reads`), its action `<function>.read`."""
    if first and last and last < first:
        raise InvalidRequest("the range ends before it starts", fields=[{"field": "to_date", "problem": "too early"}])
    with ports.uow(one_statement=True) as uow:
        entries = uow.admin_audit.entries(
            actor_uid=actor_uid,
            action=action,
            target=target,
            starts=days.starts(first) if first else None,
            ends=days.starts(last + timedelta(days=1)) if last else None,
            after_entry=keyset(cursor, datetime.fromisoformat, str),
            limit=limit + 1,
        )
    return page(entries, limit, "at", "entry_id")
