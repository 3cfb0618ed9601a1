"""admin_dashboard with 100,000 sessions: the figures' server time against the 100 ms target (docs/targets.md); and
on the same history the reports (`admin_statistics` over 30 and 92 days, both tables; `admin_mitra_statement` of
the busiest mitra's last month), each against the same 100 ms.

A private PostgreSQL cluster on a free port in a temporary folder holds a migrated scratch database seeded with
four months of history (100,000 sessions and their requests, 25,000 requests that found nobody or were cancelled,
60,000 payments, 30,000 clients, 500 mitras); it is stopped and removed afterwards. The timed call is the
service behind the function (`admin_dashboard.figures`: settings plus the one figures statement, each run alone),
i.e. the function's server time minus HTTP and token checks. For the reports, 40,000 of the sessions are paid (their
credit bought a minute before the request), 5,000 of them extended and paid for, and 2,000 unused credits refunded.
"""

from __future__ import annotations

import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pg8000.dbapi

from emulators.postgres import PostgresCluster
from emulators.process import free_port
from shared import bootstrap
from shared.adapters.migrations import migrate
from shared.adapters.postgres.database import Database
from shared.domain import days
from shared.domain.admin_statistics import Group, month_bounds
from shared.services import admin_dashboard, admin_statistics
from shared.services.ports import Ports

SESSIONS = 100_000
UNMATCHED = 25_000
PAYMENTS = 60_000
CLIENTS = 30_000
MITRAS = 500
ONLINE = 150
DAYS = 120
RUNS = 50
TARGET_MS = 100.0
# The reports are asked for on demand (finance, a review), not polled as the dashboard is (docs/targets.md).
REPORT_TARGET_MS = 1000.0
PAID_SESSIONS = 40_000
EXTENDED = 5_000
REFUNDED = 2_000
REPORT_RUNS = 20

_SEED = [
    """INSERT INTO clients (firebase_uid, display_name, alias_number)
       SELECT 'client-' || n, 'Klien ' || n, 1000 + n FROM generate_series(1, :clients) AS n""",
    """INSERT INTO mitras (phone, display_name, firebase_uid, presence, last_heartbeat_at, heard_until)
       SELECT '+62811' || lpad(n::text, 8, '0'), 'Mitra ' || n, 'mitra-' || n,
              CASE WHEN n <= :online THEN 'online' ELSE 'offline' END,
              CASE WHEN n <= :online THEN now() ELSE now() - interval '1 day' END,
              CASE WHEN n <= :online THEN now() + interval '90 seconds' ELSE now() - interval '1 day' END
       FROM generate_series(1, :mitras) AS n""",
    # Requests spread evenly over the period; matched ones waited 2 to 90 s.
    """WITH c AS (SELECT array_agg(id) AS ids FROM clients)
       INSERT INTO pairing_requests (client_id, status, kind, duration_s, search_deadline, created_at, ended_at)
       SELECT c.ids[1 + n % :clients], status, 'free_trial', 1800, at + interval '60 seconds', at,
              at + CASE WHEN status = 'matched' THEN make_interval(secs => 2 + random() * 88)
                        ELSE interval '60 seconds' END
       FROM c, (SELECT n, now() - random() * make_interval(days => :days) - interval '2 hours' AS at,
                       CASE WHEN n <= :sessions THEN 'matched' WHEN n % 3 = 0 THEN 'cancelled'
                            ELSE 'no_mitra' END AS status
                FROM generate_series(1, :requests) AS n) AS r""",
    """WITH m AS (SELECT array_agg(id) AS ids FROM mitras)
       INSERT INTO sessions (request_id, client_id, mitra_id, kind, status, started_at, ends_at, closed_at)
       SELECT r.id, r.client_id, m.ids[1 + floor(random() * :mitras)::int], 'free_trial', 'closed', r.ended_at,
              r.ended_at + interval '30 minutes', r.ended_at + interval '30 minutes'
       FROM pairing_requests r, m WHERE r.status = 'matched'""",
    # The newest sessions are still running: two per online mitra, some in their goodbye.
    """WITH m AS (SELECT array_agg(id ORDER BY id) AS ids FROM mitras WHERE presence = 'online'),
            newest AS (SELECT id, row_number() OVER (ORDER BY started_at DESC) AS rn FROM sessions
                       ORDER BY started_at DESC LIMIT :online * 2)
       UPDATE sessions s SET status = CASE WHEN newest.rn % 10 = 0 THEN 'closing' ELSE 'active' END,
              closed_at = NULL, ends_at = now() + interval '20 minutes', mitra_id = m.ids[1 + newest.rn % :online]
       FROM newest, m WHERE s.id = newest.id""",
    """WITH c AS (SELECT array_agg(id) AS ids FROM clients)
       INSERT INTO pairing_requests (client_id, status, kind, duration_s, search_deadline)
       SELECT c.ids[n], 'searching', 'free_trial', 1800, now() + interval '60 seconds'
       FROM c, generate_series(1, 20) AS n""",
    """WITH c AS (SELECT array_agg(id) AS ids FROM clients)
       INSERT INTO customer_transactions (id, client_id, purpose, tier_id, duration_s, amount, status, expires_at,
                                          created_at, paid_at, paid_amount)
       SELECT gen_random_uuid(), c.ids[1 + n % :clients], 'session', 'sesi-30', 1800, 35000, 'paid', at, at, at, 35000
       FROM c, (SELECT n, now() - random() * make_interval(days => :days) AS at
                FROM generate_series(1, :payments) AS n) AS p""",
    """INSERT INTO mitra_status_logs (mitra_id, from_status, to_status, reason, at)
       SELECT m.id, 'offline', 'online', 'manual', now() - make_interval(hours => h)
       FROM mitras m, generate_series(1, 48) AS h""",
]


# What the reports read besides: paid sessions (the credit a request used), applied extensions with their payments,
# refunds of unused credits. Applied after _SEED, so the dashboard's history is the same.
_REPORT_SEED = [
    """WITH chosen AS MATERIALIZED (
           SELECT id, client_id, created_at - interval '1 minute' AS paid_at, gen_random_uuid() AS transaction_id
           FROM pairing_requests WHERE status = 'matched' ORDER BY id LIMIT :paid_sessions
       ), bought AS (
           INSERT INTO customer_transactions (id, client_id, purpose, tier_id, duration_s, amount, status,
                                              expires_at, created_at, paid_at, paid_amount)
           SELECT transaction_id, client_id, 'session', 'sesi-30', 1800, 35000, 'paid', paid_at, paid_at, paid_at,
                  35000
           FROM chosen
       )
       UPDATE pairing_requests r SET kind = 'paid', tier_id = 'sesi-30', transaction_id = chosen.transaction_id
       FROM chosen WHERE r.id = chosen.id""",
    """UPDATE sessions s SET kind = 'paid' FROM pairing_requests r WHERE r.id = s.request_id AND r.kind = 'paid'""",
    """WITH chosen AS MATERIALIZED (
           SELECT id, client_id, started_at + interval '26 minutes' AS applied_at, gen_random_uuid() AS extension_id
           FROM sessions WHERE kind = 'paid' ORDER BY id LIMIT :extended
       ), extended AS (
           INSERT INTO session_extensions (id, session_id, tier_id, duration_s, price, status, respond_by,
                                           requested_at, responded_at, applied_at)
           SELECT extension_id, id, 'sesi-30', 900, 20000, 'applied', applied_at, applied_at - interval '1 minute',
                  applied_at - interval '1 minute', applied_at
           FROM chosen
       )
       INSERT INTO customer_transactions (id, client_id, purpose, tier_id, duration_s, amount, status, extension_id,
                                          expires_at, created_at, paid_at, paid_amount)
       SELECT gen_random_uuid(), client_id, 'extension', 'sesi-30', 900, 20000, 'paid', extension_id,
              applied_at, applied_at, applied_at, 20000
       FROM chosen""",
    # Statistics of the rows inserted so far: without them the planner nests a scan of every request in each payment.
    "ANALYZE customer_transactions, pairing_requests",
    """INSERT INTO ledger_entries (transaction_id, client_id, kind, amount, external_ref, created_at)
       SELECT t.id, t.client_id, 'refund', t.paid_amount, 'bench-refund-' || t.id, t.paid_at + interval '1 day'
       FROM customer_transactions t
       WHERE t.purpose = 'session' AND t.status = 'paid'
             AND NOT EXISTS (SELECT 1 FROM pairing_requests r WHERE r.transaction_id = t.id)
       ORDER BY t.id LIMIT :refunded""",
]


def _seed(db: Database) -> float:
    started = time.perf_counter()
    params = {
        "clients": CLIENTS,
        "mitras": MITRAS,
        "online": ONLINE,
        "sessions": SESSIONS,
        "requests": SESSIONS + UNMATCHED,
        "payments": PAYMENTS,
        "days": DAYS,
        "paid_sessions": PAID_SESSIONS,
        "extended": EXTENDED,
        "refunded": REFUNDED,
    }
    with db.transaction() as tx:
        for statement in [*_SEED, *_REPORT_SEED]:
            tx.execute(statement, params)
    db.read_one("VACUUM ANALYZE")
    return time.perf_counter() - started


def _time(ports: Ports) -> list[float]:
    for _ in range(5):
        admin_dashboard.figures(ports)
    samples = []
    for _ in range(RUNS):
        started = time.perf_counter()
        admin_dashboard.figures(ports)
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def _timed(call: Callable[[], object], runs: int) -> list[float]:
    for _ in range(3):
        call()
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def _busiest_mitra(db: Database, month: str) -> str:
    starts, ends = month_bounds(month)
    with db.transaction() as tx:
        return str(
            tx.scalar(
                """SELECT mitra_id::text FROM sessions WHERE status = 'closed' AND closed_at >= :s AND closed_at < :e
                   GROUP BY mitra_id ORDER BY count(*) DESC LIMIT 1""",
                {"s": starts, "e": ends},
            )
        )


def _reports(db: Database, ports: Ports) -> list[str]:
    """The reports' rows of the table, and what they found (so a figure is seen to be of real work)."""
    today = days.today(datetime.now(UTC))
    month_ago = (today.replace(day=1) - timedelta(days=1)).strftime("%Y-%m")
    mitra_id = _busiest_mitra(db, month_ago)
    cases: list[tuple[str, Callable[[], dict[str, Any]]]] = [
        (
            "admin_statistics, 30 days, day + mitra",
            lambda: admin_statistics.statistics(ports, today - timedelta(days=29), today, Group.BOTH),
        ),
        (
            "admin_statistics, 92 days, day + mitra",
            lambda: admin_statistics.statistics(ports, today - timedelta(days=91), today, Group.BOTH),
        ),
        (
            f"admin_mitra_statement, {month_ago}, busiest mitra",
            lambda: admin_statistics.statement_json(ports, mitra_id, month_ago),
        ),
    ]
    rows, found = [], []
    load = os.getloadavg()[0]
    for label, call in cases:
        samples = _timed(call, REPORT_RUNS)
        p50, p95 = statistics.median(samples), statistics.quantiles(samples, n=20)[-1]
        verdict = "ok" if p95 <= REPORT_TARGET_MS else "MISSES"
        rows.append(f"| {label} | {p50:.2f} ms | {p95:.2f} ms | <= {REPORT_TARGET_MS:.0f} ms {verdict} |")
        result = call()
        totals = result["totals"]
        shown = (
            f"sessions {totals['sessions']}, revenue {totals.get('revenue', totals.get('gross_paid'))}"
            f", refunds {totals['refunds']}"
        )
        extra = f", {len(result['mitras'])} mitra rows" if result.get("mitras") is not None else ""
        found.append(f"{label}: {shown}{extra}")
    return [
        "",
        f"| report server time ({REPORT_RUNS} runs) | p50 | p95 | target |",
        "| --- | --- | --- | --- |",
        *rows,
        "",
        *found,
        f"load average {load:.1f} when the reports were timed ({os.cpu_count()} cores)"
        + (": figures of a shared machine" if load > (os.cpu_count() or 1) / 2 else ""),
    ]


def _report(samples: list[float], seed_s: float, figures: dict[str, object]) -> str:
    p50 = statistics.median(samples)
    p95 = statistics.quantiles(samples, n=20)[-1]
    verdict = "meets" if p95 <= TARGET_MS else "MISSES"
    return "\n".join(
        [
            f"seeded {SESSIONS:,} sessions, {SESSIONS + UNMATCHED:,} requests, {PAYMENTS:,} payments in {seed_s:.1f} s",
            f"today's figures: sessions {figures['sessions_today']}, requests {figures['requests_today']}",
            "",
            "| admin_dashboard server time | p50 | p95 | target |",
            "| --- | --- | --- | --- |",
            f"| {RUNS} runs, 100k sessions | {p50:.2f} ms | {p95:.2f} ms | <= {TARGET_MS:.0f} ms |",
            "",
            f"p95 / target = {p95 / TARGET_MS:.3f}: {verdict} the target",
        ]
    )


def run() -> str:
    folder = Path(tempfile.mkdtemp(prefix="halo-bench-dashboard-"))
    cluster = PostgresCluster(folder / "postgres", free_port(), folder / "logs")
    try:
        cluster.start()
        cluster.create_database("bench")
        return _measure(cluster)
    finally:
        cluster.stop()
        shutil.rmtree(folder, ignore_errors=True)


def _measure(cluster: PostgresCluster) -> str:
    # Seeding runs statements longer than the cluster's default 5 s socket timeout.
    db = Database(
        lambda: pg8000.dbapi.connect(
            host="127.0.0.1", port=cluster.port, user="postgres", database="bench", timeout=300
        ),
        max_idle=1,
    )
    try:
        migrate(db)
        seed_s = _seed(db)
        ports = bootstrap.ports_on(db)
        samples = _time(ports)
        return "\n".join([_report(samples, seed_s, admin_dashboard.figures(ports)), *_reports(db, ports)])
    finally:
        db.close()


if __name__ == "__main__":
    print(run())
