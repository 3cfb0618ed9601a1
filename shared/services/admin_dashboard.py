"""The control center's live figures: what is live now, and what happened today (a day in Jakarta)."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from shared.domain import days
from shared.domain.admin import LiveFigures
from shared.domain.config import AppConfig
from shared.services import health
from shared.services.ports import Ports


class AdminDashboardRepository(Protocol):
    """What the figures need from storage (shared/adapters/postgres/admin_dashboard.py): one statement."""

    def figures(self, *, day_starts: datetime, day_ends: datetime, config: AppConfig) -> LiveFigures: ...


def figures(ports: Ports) -> dict[str, Any]:
    """A request belongs to the day it was made. Each read runs alone: the figures are a glance, not a ledger."""
    day = days.today(datetime.now(UTC))
    with ports.uow(one_statement=True) as uow:
        config = uow.settings.load()
        live = uow.admin_dashboard.figures(
            day_starts=days.starts(day), day_ends=days.starts(day + timedelta(days=1)), config=config
        )
    return {
        "as_of": live.as_of,
        "day": day,
        "clients_searching": live.clients_searching,
        "mitras": {
            "active": live.mitras_active,
            "online": live.mitras_online,
            "available": live.mitras_available,
            "busy": live.mitras_busy,
            "at_capacity": live.mitras_at_capacity,
        },
        "active_sessions": live.active_sessions,
        "closing_sessions": live.closing_sessions,
        "sessions_today": live.sessions_today,
        "requests_today": {
            "total": live.requests_total,
            "searching": live.requests_searching,
            "matched": live.requests_matched,
            "no_mitra": live.requests_no_mitra,
            "cancelled": live.requests_cancelled,
        },
        "median_wait_s_today": None if live.median_wait_s is None else round(live.median_wait_s, 3),
        "no_mitra_rate_today": live.no_mitra_rate,
        "revenue_today": {"amount": live.revenue, "payments": live.payments},
        "health": asdict(health.now(ports)),
    }
