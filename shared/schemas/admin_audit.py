"""The control center's audit log reader (`admin_audit`)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import Field

from shared.schemas import Reply
from shared.schemas.admin_paging import PageQuery

# Days an audit entry can have (and one past them is still a day).
EARLIEST = date(2000, 1, 1)
LATEST = date(2999, 12, 31)


class AuditQuery(PageQuery):
    actor_uid: str | None = Field(default=None, min_length=1, max_length=128, description="Who acted (a Firebase uid).")
    action: str | None = Field(
        default=None, min_length=1, max_length=100, description="e.g. `session.end`, `admin_sessions.read`."
    )
    target: str | None = Field(default=None, min_length=1, max_length=200, description="What was acted on (an id).")
    from_date: date | None = Field(default=None, ge=EARLIEST, le=LATEST, description="Jakarta day, included")
    to_date: date | None = Field(default=None, ge=EARLIEST, le=LATEST, description="Jakarta day, included")


class AuditEntry(Reply):
    """A change (`reads` 1, `old`/`new` its values) or an admin's reads of one function in one hour (`action`
    `<function>.read`, `reads` how many, `at`/`last_at` the first and last, `new` the questions asked)."""

    entry_id: str
    at: datetime
    last_at: datetime
    actor_uid: str
    actor_role: str
    action: str
    target: str | None
    old: Any = None
    new: Any = None
    reads: int


class AuditPage(Reply):
    entries: list[AuditEntry]
    next_cursor: str | None = None
