"""The control center's live figures. Each part is read through an index (open sessions and searching requests by
partial indexes, today's rows by their timestamps), so the cost follows what is live or today, not the history."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from shared.adapters.postgres.database import Database
from shared.adapters.postgres.pairing import AVAILABLE_MITRAS
from shared.domain import days
from shared.services import settings_store

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


def figures(db: Database) -> dict[str, Any]:
    """`today` is the current day in Jakarta; a request belongs to the day it was made."""
    day = days.today(datetime.now(UTC))
    with db.transaction() as tx:
        config = settings_store.load_config(tx)
        row = tx.one(
            _FIGURES,
            {"day_starts": days.starts(day), "day_ends": days.starts(day + timedelta(days=1)),
             "grace_s": config.heartbeat_grace_s, "max_clients": config.max_concurrent_clients},
        )  # fmt: skip
    assert row is not None
    return _shaped(row, day)


def _shaped(row: dict[str, Any], day: date) -> dict[str, Any]:
    ended = row["requests_matched"] + row["requests_no_mitra"] + row["requests_cancelled"]
    median = row["median_wait_s"]
    return {
        "as_of": row["as_of"], "day": day, "clients_searching": row["clients_searching"],
        "mitras": {"active": row["mitras_active"], "online": row["mitras_online"], "available": row["mitras_available"],
                   "busy": row["mitras_busy"], "at_capacity": row["mitras_at_capacity"]},
        "active_sessions": row["active_sessions"], "closing_sessions": row["closing_sessions"],
        "sessions_today": row["sessions_today"],
        "requests_today": {"total": row["requests_total"], "searching": row["requests_searching"],
                           "matched": row["requests_matched"], "no_mitra": row["requests_no_mitra"],
                           "cancelled": row["requests_cancelled"]},
        "median_wait_s_today": None if median is None else round(float(median), 3),
        "no_mitra_rate_today": days.rate(row["requests_no_mitra"], ended),
        "revenue_today": {"amount": int(row["revenue"]), "payments": row["payments"]},
    }  # fmt: skip
