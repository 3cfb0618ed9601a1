"""The control center's sessions (`admin_sessions`)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, Field

from shared.schemas import Model
from shared.schemas.admin_paging import PageQuery
from shared.schemas.privacy import Reason


class SessionQuery(PageQuery):
    status: Literal["active", "closing", "closed"] | None = None
    mitra_id: UUID | None = None
    client_id: UUID | None = None
    from_date: date | None = Field(default=None, description="Jakarta day, included")
    to_date: date | None = Field(default=None, description="Jakarta day, included")


class AdminSession(BaseModel):
    session_id: str
    request_id: str
    status: str
    kind: str
    client_id: str
    client_name: str
    client_alias: str
    mitra_id: str
    mitra_name: str
    started_at: datetime
    ends_at: datetime
    closed_at: datetime | None
    messages: int


class SessionPage(BaseModel):
    """GET: one page of sessions. POST: the session as the reroute left it (`next_cursor` null)."""

    sessions: list[AdminSession]
    next_cursor: str | None = None


class RerouteSession(Model):
    """Move an active session to another available mitra: same session, same history, a new mitra."""

    action: Literal["reroute"]
    session_id: UUID
    mitra_id: UUID


class AdminTranscriptQuery(Model):
    """One session's whole conversation for an admin, who says why: the read and its reason are audited."""

    session_id: UUID
    reason: Reason
