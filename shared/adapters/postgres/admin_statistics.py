"""Reports in SQL (shared/domain/admin_statistics.py says which day each row counts on and what is derived).

Every part is read through an index on the timestamp that places it on a day (sessions_by_start,
customer_transactions_paid, ledger_entries_refunds, pairing_requests_by_day) or on the mitra's closed sessions
(sessions_closed_by_mitra): the cost follows the range asked for, not the history (bench/admin_dashboard.py times
both reports on 100,000 sessions). A day is `(timestamp AT TIME ZONE :zone)::date`, the zone being Jakarta's.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from shared.adapters.postgres.sql import Sql
from shared.domain.admin_statistics import MitraTally, StatementSession, Tally

# How long a session ran: to entering its goodbye window, or to its close without one, or (still running) to now.
_RUN_S = "EXTRACT(epoch FROM COALESCE(s.closing_at, s.closed_at, now()) - s.started_at)"

# The session a paid transaction paid for (the same for its refund): the session whose request used its credit,
# or the session an applied extension it paid for was added to. None while the credit is unused or was refunded.
_SESSION_OF_TRANSACTION = """
LEFT JOIN LATERAL (
    SELECT s.id, s.mitra_id FROM pairing_requests r JOIN sessions s ON s.request_id = r.id
    WHERE r.transaction_id = t.id AND r.status = 'matched'
    UNION ALL
    SELECT s.id, s.mitra_id FROM session_extensions e JOIN sessions s ON s.id = e.session_id
    WHERE e.id = t.extension_id AND e.status = 'applied'
    LIMIT 1
) AS owner ON true"""

_BY_DAY = """
WITH started AS (
    SELECT (s.started_at AT TIME ZONE :zone)::date AS day, count(*) AS sessions, sum(RUN_S) AS session_s
    FROM sessions s WHERE s.started_at >= :starts AND s.started_at < :ends GROUP BY 1
), paid AS (
    SELECT (paid_at AT TIME ZONE :zone)::date AS day, count(*) AS payments, sum(paid_amount) AS revenue
    FROM customer_transactions WHERE status = 'paid' AND paid_at >= :starts AND paid_at < :ends GROUP BY 1
), refunded AS (
    SELECT (created_at AT TIME ZONE :zone)::date AS day, count(*) AS refund_count, sum(amount) AS refunded
    FROM ledger_entries WHERE kind = 'refund' AND created_at >= :starts AND created_at < :ends GROUP BY 1
), requested AS (
    SELECT (created_at AT TIME ZONE :zone)::date AS day,
           count(*) FILTER (WHERE status <> 'searching') AS requests_finished,
           count(*) FILTER (WHERE status = 'matched') AS matched,
           count(*) FILTER (WHERE status = 'no_mitra') AS no_mitra,
           sum(EXTRACT(epoch FROM ended_at - created_at)) FILTER (WHERE status = 'matched') AS wait_s
    FROM pairing_requests WHERE created_at >= :starts AND created_at < :ends GROUP BY 1
)
SELECT * FROM started FULL JOIN paid USING (day) FULL JOIN refunded USING (day) FULL JOIN requested USING (day)
""".replace("RUN_S", _RUN_S)

_BY_MITRA = f"""
WITH started AS (
    SELECT s.mitra_id, count(*) AS sessions, sum({_RUN_S}) AS session_s
    FROM sessions s WHERE s.started_at >= :starts AND s.started_at < :ends GROUP BY 1
), paid AS (
    SELECT owner.mitra_id, count(*) AS payments, sum(t.paid_amount) AS revenue
    FROM customer_transactions t {_SESSION_OF_TRANSACTION}
    WHERE t.status = 'paid' AND t.paid_at >= :starts AND t.paid_at < :ends AND owner.mitra_id IS NOT NULL
    GROUP BY 1
), refunded AS (
    SELECT owner.mitra_id, count(*) AS refund_count, sum(l.amount) AS refunded
    FROM ledger_entries l JOIN customer_transactions t ON t.id = l.transaction_id {_SESSION_OF_TRANSACTION}
    WHERE l.kind = 'refund' AND l.created_at >= :starts AND l.created_at < :ends AND owner.mitra_id IS NOT NULL
    GROUP BY 1
), requested AS (
    SELECT s.mitra_id, count(*) AS matched, sum(EXTRACT(epoch FROM r.ended_at - r.created_at)) AS wait_s
    FROM pairing_requests r JOIN sessions s ON s.request_id = r.id
    WHERE r.created_at >= :starts AND r.created_at < :ends AND r.status = 'matched'
    GROUP BY 1
)
SELECT m.id::text AS mitra_id, m.display_name, sessions, session_s, payments, revenue, refund_count, refunded,
       matched, wait_s
FROM (SELECT * FROM started FULL JOIN paid USING (mitra_id) FULL JOIN refunded USING (mitra_id)
      FULL JOIN requested USING (mitra_id)) AS counted
JOIN mitras m ON m.id = counted.mitra_id
ORDER BY m.display_name, m.id
"""

# Refunds of one transaction, whenever they were made (a statement deducts every refund known when it is read).
_REFUNDED = (
    "(SELECT COALESCE(sum(l.amount), 0) FROM ledger_entries l WHERE l.transaction_id = t.id AND l.kind = 'refund')"
)

_STATEMENT = f"""
SELECT s.id::text AS session_id, s.kind, r.tier_id, s.started_at, s.closed_at, {_RUN_S} AS run_s,
       CASE WHEN s.kind = 'paid' THEN r.duration_s ELSE 0 END + COALESCE(x.paid_s, 0) AS paid_s,
       COALESCE(x.extensions, 0) AS extensions,
       COALESCE(bought.paid_amount, 0) + COALESCE(x.paid_amount, 0) AS paid_amount,
       COALESCE(bought.refunded, 0) + COALESCE(x.refunded, 0) AS refunded
FROM sessions s
JOIN pairing_requests r ON r.id = s.request_id
LEFT JOIN LATERAL (
    SELECT t.paid_amount, {_REFUNDED} AS refunded
    FROM customer_transactions t WHERE t.id = r.transaction_id AND t.status = 'paid'
) AS bought ON true
LEFT JOIN LATERAL (
    SELECT count(*) AS extensions, sum(e.duration_s) AS paid_s, sum(t.paid_amount) AS paid_amount,
           sum({_REFUNDED}) AS refunded
    FROM session_extensions e LEFT JOIN customer_transactions t ON t.extension_id = e.id AND t.status = 'paid'
    WHERE e.session_id = s.id AND e.status = 'applied'
) AS x ON true
WHERE s.mitra_id = CAST(:mitra AS uuid) AND s.status = 'closed' AND s.closed_at >= :starts AND s.closed_at < :ends
ORDER BY s.closed_at, s.id
"""


def _tally(row: dict[str, Any]) -> Tally:
    return Tally(
        sessions=int(row.get("sessions") or 0),
        session_s=float(row.get("session_s") or 0),
        payments=int(row.get("payments") or 0),
        revenue=int(row.get("revenue") or 0),
        refund_count=int(row.get("refund_count") or 0),
        refunded=int(row.get("refunded") or 0),
        requests_finished=int(row.get("requests_finished") or 0),
        matched=int(row.get("matched") or 0),
        no_mitra=int(row.get("no_mitra") or 0),
        wait_s=float(row.get("wait_s") or 0),
    )


class AdminStatisticsRepository:
    def __init__(self, sql: Sql) -> None:
        self._sql = sql

    def by_day(self, *, starts: datetime, ends: datetime, zone: str) -> dict[date, Tally]:
        """The tallies of each day of [starts, ends) in `zone` that had any activity."""
        rows = self._sql.all(_BY_DAY, {"starts": starts, "ends": ends, "zone": zone})
        return {row["day"]: _tally(row) for row in rows}

    def by_mitra(self, *, starts: datetime, ends: datetime) -> list[MitraTally]:
        """The tallies of each mitra with any activity in [starts, ends), by display name: sessions started, and
        payments, refunds and matched requests of their sessions."""
        rows = self._sql.all(_BY_MITRA, {"starts": starts, "ends": ends})
        return [MitraTally(row["mitra_id"], row["display_name"], _tally(row)) for row in rows]

    def mitra_name(self, mitra_id: str) -> str | None:
        name = self._sql.scalar("SELECT display_name FROM mitras WHERE id = CAST(:id AS uuid)", {"id": mitra_id})
        return None if name is None else str(name)

    def statement(self, mitra_id: str, *, starts: datetime, ends: datetime) -> list[StatementSession]:
        """The mitra's sessions closed in [starts, ends), in the order they closed."""
        rows = self._sql.all(_STATEMENT, {"mitra": mitra_id, "starts": starts, "ends": ends})
        return [
            StatementSession(
                session_id=row["session_id"],
                kind=row["kind"],
                tier_id=row["tier_id"],
                started_at=row["started_at"],
                closed_at=row["closed_at"],
                run_s=float(row["run_s"]),
                paid_s=int(row["paid_s"]),
                extensions=int(row["extensions"]),
                paid_amount=int(row["paid_amount"]),
                refunded=int(row["refunded"]),
            )
            for row in rows
        ]
