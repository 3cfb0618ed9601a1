"""Crisis alerts in the control center."""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import Field

from shared.schemas import Model, Reply
from shared.schemas.admin_paging import PageQuery


class AlertQuery(PageQuery):
    status: Literal["acknowledged", "unacknowledged"] | None = None


class AdminAlert(Reply):
    """A crisis signal in a client's message: which session and client, and the category that matched, never the
    message's words (an admin reads the transcript, audited, when needed)."""

    alert_id: str
    session_id: str
    # Null for an alert raised by a report of a crisis (`report_id` names it).
    message_id: str | None
    client_id: str
    client_alias: str
    category: Literal["suicidal_ideation", "self_harm", "acute_distress"]
    created_at: datetime
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    note: str | None
    report_id: str | None = None


class AlertPage(Reply):
    """GET: one page of alerts, newest first. POST: the alert as the acknowledgement left it (`next_cursor` null)."""

    alerts: list[AdminAlert]
    next_cursor: str | None = None


class AcknowledgeAlert(Model):
    """Someone is on it. Acknowledging again keeps the first acknowledgement."""

    action: Literal["acknowledge"]
    alert_id: UUID
    # Kept in PostgreSQL and the audit log only, never in the alert document.
    note: str | None = Field(default=None, min_length=1, max_length=1000)
