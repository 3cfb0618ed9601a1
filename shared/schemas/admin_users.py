"""The control center's clients (`admin_users`)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import Field

from shared.schemas import Model, Reply
from shared.schemas.admin_paging import PageQuery, Search


class ClientQuery(PageQuery):
    q: Search | None = None
    suspended: bool | None = None


class AdminClient(Reply):
    client_id: str
    display_name: str
    alias: str
    anonymous: bool
    phone: str | None
    email: str | None
    suspended_at: datetime | None
    created_at: datetime


class ClientPage(Reply):
    """GET: one page of clients. POST: the client as the change left it (`next_cursor` null)."""

    clients: list[AdminClient]
    next_cursor: str | None = None


class SuspendClient(Model):
    """Suspension: refused everywhere at once, tokens revoked, a searching request cancelled."""

    action: Literal["suspend", "unsuspend"]
    client_id: UUID
    # Kept in the audit log only.
    reason: str | None = Field(default=None, min_length=3, max_length=500)
