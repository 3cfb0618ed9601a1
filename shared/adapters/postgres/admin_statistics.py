"""Reports in SQL (shared/domain/admin_statistics.py says which day each row counts on and what is derived).

Every part is read through an index on the timestamp that places it on a day (sessions_by_start,
customer_transactions_paid, ledger_entries_refunds, pairing_requests_by_day) or on the mitra's closed sessions
(sessions_closed_by_mitra): the cost follows the range asked for, not the history (bench/admin_dashboard.py times
both reports on 100,000 sessions). A day is `(timestamp AT TIME ZONE :zone)::date`, the zone being Jakarta's.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from shared.adapters.postgres.database import Row
from shared.adapters.postgres.sql import Sql
from shared.domain.admin_statistics import MitraTally, StatementSession, Tally

# How long a session ran: to entering its goodbye window, or to its close without one, or (still running) to now.
_RUN_S = "EXTRACT(epoch FROM COALESCE(s.closing_at, s.closed_at, now()) - s.started_at)"

# Each part is one aggregate read through its own index; the parts are stacked (UNION ALL, zeros for the figures a
# part does not count) and summed per key, so the planner's estimate stays the size of the parts (joining them FULL
# on an estimated key multiplied it past the cost at which PostgreSQL compiles a plan with JIT, ~0.7 s for nothing).
_FIGURES = [
    "sessions",
    "session_s",
    "payments",
    "revenue",
    "refund_count",
    "refunded",
    "requests_finished",
    "matched",
    "no_mitra",
    "wait_s",
]


def _stacked(key: str, parts: list[tuple[str, dict[str, str]]]) -> str:
    """`SELECT key, sum(figure)... FROM (part UNION ALL part ...) GROUP BY key`, each part naming its own figures."""
    selects = [
        f"SELECT {key}, " + ", ".join(f"{figures.get(name, '0')} AS {name}" for name in _FIGURES) + f" {source}"
        for source, figures in parts
    ]
    sums = ", ".join(f"sum({name}) AS {name}" for name in _FIGURES)
    return f"SELECT {key}, {sums} FROM (\n" + "\nUNION ALL\n".join(selects) + f"\n) AS parts GROUP BY {key}"


def _day(column: str) -> str:
    return f"({column} AT TIME ZONE :zone)::date"


_IN_RANGE = "{column} >= :starts AND {column} < :ends"

_BY_DAY = _stacked(
    "day",
    [
        (
            f"FROM (SELECT {_day('s.started_at')} AS day, count(*) AS n, sum({_RUN_S}) AS run_s FROM sessions s "
            f"WHERE {_IN_RANGE.format(column='s.started_at')} GROUP BY 1) AS started",
            {"sessions": "n", "session_s": "run_s"},
        ),
        (
            f"FROM (SELECT {_day('paid_at')} AS day, count(*) AS n, sum(paid_amount) AS amount "
            f"FROM customer_transactions WHERE status = 'paid' AND {_IN_RANGE.format(column='paid_at')} GROUP BY 1) "
            "AS paid",
            {"payments": "n", "revenue": "amount"},
        ),
        (
            f"FROM (SELECT {_day('created_at')} AS day, count(*) AS n, sum(amount) AS amount FROM ledger_entries "
            f"WHERE kind = 'refund' AND {_IN_RANGE.format(column='created_at')} GROUP BY 1) AS refunded",
            {"refund_count": "n", "refunded": "amount"},
        ),
        (
            f"""FROM (SELECT {_day("created_at")} AS day,
                             count(*) FILTER (WHERE status <> 'searching') AS finished,
                             count(*) FILTER (WHERE status = 'matched') AS matched,
                             count(*) FILTER (WHERE status = 'no_mitra') AS no_mitra,
                             sum(EXTRACT(epoch FROM ended_at - created_at)) FILTER (WHERE status = 'matched') AS wait
                      FROM pairing_requests WHERE {_IN_RANGE.format(column="created_at")} GROUP BY 1) AS requested""",
            {"requests_finished": "finished", "matched": "matched", "no_mitra": "no_mitra", "wait_s": "wait"},
        ),
    ],
)


# The mitra a paid transaction (or its refund) belongs to: the session whose matched request used its credit, or
# the session an applied extension it paid for was added to (one or the other: an applied extension's payment is
# never a credit). A payment whose credit is unused, or was refunded unused, belongs to no mitra.
def _owned(rows: str, where: str, amount: str) -> str:
    """(mitra_id, amount) of each row of `rows` (which joins customer_transactions as t) that `where` keeps, by the
    session it belongs to."""
    return f"""
    SELECT s.mitra_id, {amount} AS amount FROM {rows}
    JOIN pairing_requests r ON r.transaction_id = t.id AND r.status = 'matched' JOIN sessions s ON s.request_id = r.id
    WHERE {where}
    UNION ALL
    SELECT s.mitra_id, {amount} FROM {rows}
    JOIN session_extensions e ON e.id = t.extension_id AND e.status = 'applied' JOIN sessions s ON s.id = e.session_id
    WHERE {where}"""


_PAID_OWNED = _owned(
    "customer_transactions t", f"t.status = 'paid' AND {_IN_RANGE.format(column='t.paid_at')}", "t.paid_amount"
)
_REFUNDED_OWNED = _owned(
    "ledger_entries l JOIN customer_transactions t ON t.id = l.transaction_id",
    f"l.kind = 'refund' AND {_IN_RANGE.format(column='l.created_at')}",
    "l.amount",
)

_COUNTED_BY_MITRA = _stacked(
    "mitra_id",
    [
        (
            f"FROM (SELECT s.mitra_id, count(*) AS n, sum({_RUN_S}) AS run_s FROM sessions s "
            f"WHERE {_IN_RANGE.format(column='s.started_at')} GROUP BY 1) AS started",
            {"sessions": "n", "session_s": "run_s"},
        ),
        (
            f"FROM (SELECT mitra_id, count(*) AS n, sum(amount) AS amount FROM ({_PAID_OWNED}) AS owned GROUP BY 1) "
            "AS paid",
            {"payments": "n", "revenue": "amount"},
        ),
        (
            f"FROM (SELECT mitra_id, count(*) AS n, sum(amount) AS amount FROM ({_REFUNDED_OWNED}) AS owned "
            "GROUP BY 1) AS refunded",
            {"refund_count": "n", "refunded": "amount"},
        ),
        (
            f"""FROM (SELECT s.mitra_id, count(*) AS n, sum(EXTRACT(epoch FROM r.ended_at - r.created_at)) AS wait
                      FROM pairing_requests r JOIN sessions s ON s.request_id = r.id
                      WHERE r.status = 'matched' AND {_IN_RANGE.format(column="r.created_at")} GROUP BY 1)
                 AS requested""",
            {"matched": "n", "wait_s": "wait"},
        ),
    ],
)

_BY_MITRA = f"""
SELECT m.id::text AS mitra_id, m.display_name, {", ".join(f"counted.{name}" for name in _FIGURES)}
FROM ({_COUNTED_BY_MITRA}) AS counted JOIN mitras m ON m.id = counted.mitra_id
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


# Statements are prepared once per connection (shared/adapters/postgres/database.py), and after five runs PostgreSQL
# may keep a generic plan, made without the values. For a report over a date range that plan guesses how many rows
# a range holds, and a 92-day report ran ~1.4x slower on it (bench admin_dashboard). The reports' own change plans
# each run for its range (custom plans; SET LOCAL: until the change ends, and a no-op outside a transaction), set once
# per change: a repository lives as long as its unit of work.
_PLAN_FOR_THE_RANGE = "SET LOCAL plan_cache_mode = force_custom_plan"


class AdminStatisticsRepository:
    def __init__(self, sql: Sql) -> None:
        self._sql = sql
        self._planning_each_run = False

    def _over_the_range(self, sql: str, params: dict[str, Any]) -> list[Row]:
        if not self._planning_each_run:
            self._sql.execute(_PLAN_FOR_THE_RANGE)
            self._planning_each_run = True
        return self._sql.all(sql, params)

    def by_day(self, *, starts: datetime, ends: datetime, zone: str) -> dict[date, Tally]:
        """The tallies of each day of [starts, ends) in `zone` that had any activity."""
        rows = self._over_the_range(_BY_DAY, {"starts": starts, "ends": ends, "zone": zone})
        return {row["day"]: _tally(row) for row in rows}

    def by_mitra(self, *, starts: datetime, ends: datetime) -> list[MitraTally]:
        """The tallies of each mitra with any activity in [starts, ends), by display name: sessions started, and
        payments, refunds and matched requests of their sessions."""
        rows = self._over_the_range(_BY_MITRA, {"starts": starts, "ends": ends})
        return [MitraTally(row["mitra_id"], row["display_name"], _tally(row)) for row in rows]

    def mitra_name(self, mitra_id: str) -> str | None:
        name = self._sql.scalar("SELECT display_name FROM mitras WHERE id = CAST(:id AS uuid)", {"id": mitra_id})
        return None if name is None else str(name)

    def statement(self, mitra_id: str, *, starts: datetime, ends: datetime) -> list[StatementSession]:
        """The mitra's sessions closed in [starts, ends), in the order they closed."""
        rows = self._over_the_range(_STATEMENT, {"mitra": mitra_id, "starts": starts, "ends": ends})
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
