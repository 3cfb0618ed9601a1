"""The control center's live figures (`admin_dashboard`)."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, Field


class MitraFigures(BaseModel):
    active: int
    online: int
    # Online with a fresh heartbeat and below capacity: would be offered a request now.
    available: int
    # At least one open (active or closing) session.
    busy: int
    at_capacity: int


class RequestFigures(BaseModel):
    total: int
    searching: int
    matched: int
    no_mitra: int
    cancelled: int


class Revenue(BaseModel):
    amount: int
    payments: int
    currency: str = "IDR"


class Dashboard(BaseModel):
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
