"""The control center's live figures (`admin_dashboard`)."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import Field

from shared.schemas import Reply


class MitraFigures(Reply):
    active: int
    online: int
    # Online with a fresh heartbeat and below capacity: would be offered a request now.
    available: int
    # At least one open (active or closing) session.
    busy: int
    at_capacity: int


class RequestFigures(Reply):
    total: int
    searching: int
    matched: int
    no_mitra: int
    cancelled: int


class Revenue(Reply):
    amount: int
    payments: int
    currency: str = "IDR"


class Health(Reply):
    """What on-call looks at first (docs/operations.md): work owed to the outside world, people waiting on a human."""

    outbox_pending: int = Field(description="outbox rows not yet delivered to Firestore, Pub/Sub or Cloud Tasks")
    oldest_unpublished_s: float = Field(description="age of the oldest of them; above 300 s the outbox is behind")
    outbox_stuck: int = Field(description="rows that failed 5 times or more: the backend's own dead letters")
    payments_quarantined: int = Field(description="Xendit callbacks quarantined and not yet reviewed")
    unacknowledged_alerts: int = Field(description="crisis alerts no admin has acknowledged for 5 minutes")


class Dashboard(Reply):
    as_of: datetime
    # "Today" is this day in Jakarta.
    day: date
    mitras: MitraFigures
    clients_searching: int
    active_sessions: int
    closing_sessions: int
    sessions_today: int
    requests_today: RequestFigures
    median_wait_s_today: float | None = Field(description="request to match, over today's matched requests")
    no_mitra_rate_today: float | None = Field(description="no_mitra / today's requests that have ended")
    revenue_today: Revenue
    health: Health
