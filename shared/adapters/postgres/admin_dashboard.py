"""The control center's live figures in SQL. Each part is read through an index (open sessions and searching
requests by partial indexes, today's rows by their timestamps), so the cost follows what is live or today, not the
history: one statement for every figure (bench/admin_dashboard.py times it on 100,000 sessions)."""

from __future__ import annotations

from datetime import datetime

from shared.adapters.postgres.pairing import AVAILABLE_MITRAS, available_params
from shared.adapters.postgres.sql import Sql
from shared.domain.admin import LiveFigures
from shared.domain.config import AppConfig

_FIGURES = f"""
WITH open_load AS (
    SELECT mitra_id, count(*) AS open FROM sessions WHERE status IN ('active', 'closing') GROUP BY mitra_id
)
SELECT * FROM
    (SELECT now() AS as_of) AS clock,
    (SELECT count(*) FILTER (WHERE active) AS mitras_active,
            count(*) FILTER (WHERE active AND presence = 'online') AS mitras_online
     FROM mitras) AS roster,
    (SELECT count(*) AS mitras_available FROM ({AVAILABLE_MITRAS}) AS available) AS ready,
    (SELECT count(*) AS mitras_busy, count(*) FILTER (WHERE open >= :max_clients) AS mitras_at_capacity
     FROM open_load) AS load,
    (SELECT count(*) AS clients_searching FROM pairing_requests WHERE status = 'searching') AS searching,
    (SELECT count(*) FILTER (WHERE status = 'active') AS active_sessions,
            count(*) FILTER (WHERE status = 'closing') AS closing_sessions
     FROM sessions WHERE status IN ('active', 'closing')) AS running,
    (SELECT count(*) AS sessions_today FROM sessions
     WHERE started_at >= :day_starts AND started_at < :day_ends) AS started,
    (SELECT count(*) AS requests_total,
            count(*) FILTER (WHERE status = 'searching') AS requests_searching,
            count(*) FILTER (WHERE status = 'matched') AS requests_matched,
            count(*) FILTER (WHERE status = 'no_mitra') AS requests_no_mitra,
            count(*) FILTER (WHERE status = 'cancelled') AS requests_cancelled,
            percentile_cont(0.5) WITHIN GROUP (ORDER BY EXTRACT(epoch FROM ended_at - created_at))
                FILTER (WHERE status = 'matched') AS median_wait_s
     FROM pairing_requests WHERE created_at >= :day_starts AND created_at < :day_ends) AS requested,
    (SELECT COALESCE(sum(amount), 0) AS revenue, count(*) AS payments FROM customer_transactions
     WHERE status = 'paid' AND paid_at >= :day_starts AND paid_at < :day_ends) AS paid
"""


class AdminDashboardRepository:
    def __init__(self, sql: Sql) -> None:
        self._sql = sql

    def figures(self, *, day_starts: datetime, day_ends: datetime, config: AppConfig) -> LiveFigures:
        """What is live now, and what happened in [day_starts, day_ends): a request counts on the day it was made."""
        row = self._sql.one(_FIGURES, {"day_starts": day_starts, "day_ends": day_ends, **available_params(config)})
        assert row is not None
        median, revenue = row.pop("median_wait_s"), row.pop("revenue")
        return LiveFigures(**row, median_wait_s=None if median is None else float(median), revenue=int(revenue))
