"""The on-call figures (shared/domain/health.py) in one statement, each from a partial index."""

from __future__ import annotations

from shared.adapters.postgres.sql import Sql
from shared.domain.health import STUCK_AFTER_ATTEMPTS, UNACKNOWLEDGED_AFTER_S, Health

_HEALTH = """
SELECT (SELECT count(*) FROM outbox WHERE published_at IS NULL) AS outbox_pending,
       (SELECT COALESCE(EXTRACT(EPOCH FROM now() - min(created_at)), 0)::float8 FROM outbox
        WHERE published_at IS NULL) AS oldest_unpublished_s,
       (SELECT count(*) FROM outbox WHERE published_at IS NULL AND attempts >= :stuck) AS outbox_stuck,
       (SELECT count(*) FROM payment_events WHERE outcome = 'quarantined' AND reviewed_at IS NULL)
           AS payments_quarantined,
       (SELECT count(*) FROM safety_flags
        WHERE acknowledged_at IS NULL AND created_at < now() - make_interval(secs => :unacknowledged))
           AS unacknowledged_alerts
"""


class HealthRepository:
    def __init__(self, sql: Sql) -> None:
        self._sql = sql

    def now(self) -> Health:
        row = self._sql.one(_HEALTH, {"stuck": STUCK_AFTER_ATTEMPTS, "unacknowledged": UNACKNOWLEDGED_AFTER_S})
        assert row is not None
        return Health(
            outbox_pending=int(row["outbox_pending"]),
            oldest_unpublished_s=round(float(row["oldest_unpublished_s"]), 1),
            outbox_stuck=int(row["outbox_stuck"]),
            payments_quarantined=int(row["payments_quarantined"]),
            unacknowledged_alerts=int(row["unacknowledged_alerts"]),
        )
