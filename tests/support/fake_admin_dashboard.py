"""The control center's live figures in memory: the promises of shared/adapters/postgres/admin_dashboard.py, each
figure counted in Python by the rule its SQL applies (available: shared.domain.pairing.is_available; at capacity:
shared.domain.pairing.has_capacity denied)."""

from __future__ import annotations

import statistics
from datetime import datetime
from typing import TYPE_CHECKING

from shared.domain import pairing
from shared.domain.admin import LiveFigures
from shared.domain.config import AppConfig
from tests.support.fake_admin_sessions import OPEN_SESSION, FakeAdminSessionsRepository, open_sessions

if TYPE_CHECKING:
    from tests.support.fakes import FakeDatabase


class FakeAdminDashboardRepository:
    def __init__(self, db: FakeDatabase) -> None:
        self._db = db

    def figures(self, *, day_starts: datetime, day_ends: datetime, config: AppConfig) -> LiveFigures:
        db = self._db
        mitras = [m for m in db.table("mitras").values() if m["active"]]
        sessions = db.table("sessions").values()
        busy = {s["mitra_id"] for s in sessions if s["status"] in OPEN_SESSION}
        requests = db.table("pairing_requests").values()
        today = [r for r in requests if day_starts <= r["created_at"] < day_ends]
        waits = [(r["ended_at"] - r["created_at"]).total_seconds() for r in today if r["status"] == "matched"]
        paid = [
            t
            for t in db.table("customer_transactions").values()
            if t["status"] == "paid" and day_starts <= t["paid_at"] < day_ends
        ]
        available = FakeAdminSessionsRepository(db).is_available
        return LiveFigures(
            as_of=db.now,
            mitras_active=len(mitras),
            mitras_online=sum(1 for m in mitras if m["presence"] == "online"),
            mitras_available=sum(1 for m in db.table("mitras").values() if available(m["id"], config)),
            mitras_busy=len(busy),
            mitras_at_capacity=sum(
                1 for m in busy if not pairing.has_capacity(open_sessions(db, m), config.max_concurrent_clients)
            ),
            clients_searching=sum(1 for r in requests if r["status"] == "searching"),
            active_sessions=sum(1 for s in sessions if s["status"] == "active"),
            closing_sessions=sum(1 for s in sessions if s["status"] == "closing"),
            sessions_today=sum(1 for s in sessions if day_starts <= s["started_at"] < day_ends),
            requests_total=len(today),
            requests_searching=sum(1 for r in today if r["status"] == "searching"),
            requests_matched=len(waits),
            requests_no_mitra=sum(1 for r in today if r["status"] == "no_mitra"),
            requests_cancelled=sum(1 for r in today if r["status"] == "cancelled"),
            median_wait_s=statistics.median(waits) if waits else None,
            revenue=sum(t["amount"] for t in paid),
            payments=len(paid),
        )
