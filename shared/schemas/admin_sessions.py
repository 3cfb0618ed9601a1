"""The control center's sessions (`admin_sessions`)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal
from uuid import UUID

from pydantic import Field

from shared.schemas import Model, Reply
from shared.schemas.admin_paging import PageQuery
from shared.schemas.privacy import Reason


class SessionQuery(PageQuery):
    status: Literal["active", "closing", "closed"] | None = None
    mitra_id: UUID | None = None
    client_id: UUID | None = None
    from_date: date | None = Field(default=None, description="Jakarta day, included")
    to_date: date | None = Field(default=None, description="Jakarta day, included")


class AdminSession(Reply):
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


class SessionPage(Reply):
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


class EndSession(Model):
    """An admin ends an active session (abuse, a crisis hand-off, a mitra who vanished). `reason` says why, for the
    audit log (no personal data: describe, do not quote). `goodbye`: the goodbye window applies (the session is
    `closing`) or it closes at once (`closed`). `credit_unused`: the unused share of what the client paid for the
    session's time is credited back to them (nothing for a free trial)."""

    session_id: UUID
    reason: Reason
    goodbye: bool
    credit_unused: bool


class AdminSessionEnded(Reply):
    """The session as the admin left it; the same answer to a repeat with the same Idempotency-Key."""

    session_id: str
    status: Literal["closing", "closed"]
    close_reason: Literal["admin", "expired", "ended_by_client", "ended_by_mitra"] = Field(
        description="`admin`; a session that was already in its goodbye window keeps the ending it had."
    )
    goodbye_until: datetime | None = Field(
        description="With the goodbye window: goodbye notes are accepted until then."
    )
    credited_s: int = Field(description="The unused seconds credited back (0 when none).")
    credited_amount: int = Field(description="Their value in rupiah, pro rata of what the client paid.")
    currency: str = "IDR"
