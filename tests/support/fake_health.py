"""On-call's figures in memory: the promises of shared/adapters/postgres/health.py."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from shared.domain.billing import Outcome
from shared.domain.health import STUCK_AFTER_ATTEMPTS, UNACKNOWLEDGED_AFTER_S, Health

if TYPE_CHECKING:
    from tests.support.fakes import FakeDatabase


class FakeHealthRepository:
    def __init__(self, db: FakeDatabase) -> None:
        self._db = db

    def now(self) -> Health:
        pending = self._db.pending()
        oldest = min((row.created_at for row in pending), default=self._db.now)
        cutoff = self._db.now - timedelta(seconds=UNACKNOWLEDGED_AFTER_S)
        return Health(
            outbox_pending=len(pending),
            oldest_unpublished_s=round((self._db.now - oldest).total_seconds(), 1),
            outbox_stuck=sum(1 for row in pending if row.attempts >= STUCK_AFTER_ATTEMPTS),
            payments_quarantined=sum(
                1
                for event in self._db.table("payment_events").values()
                if event["record"].outcome is Outcome.QUARANTINED and event["reviewed_at"] is None
            ),
            unacknowledged_alerts=sum(
                1
                for flag in self._db.table("safety_flags").values()
                if flag["acknowledged_at"] is None and flag["created_at"] < cutoff
            ),
        )
