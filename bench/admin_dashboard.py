"""admin_dashboard with 100,000 sessions: the figures' server time against the 100 ms target (docs/targets.md).

A private PostgreSQL cluster on a free port in a temporary folder holds a migrated scratch database seeded with
four months of history (100,000 sessions and their requests, 25,000 requests that found nobody or were cancelled,
60,000 payments, 30,000 clients, 500 mitras); it is stopped and removed afterwards. The timed call is the
service behind the function (`admin_dashboard.figures`: settings plus the one figures statement, each run alone),
i.e. the function's server time minus HTTP and token checks.
"""

from __future__ import annotations

import shutil
import statistics
import tempfile
import time
from pathlib import Path

import pg8000.dbapi

from emulators.postgres import PostgresCluster
from emulators.process import free_port
from shared import bootstrap
from shared.adapters.migrations import migrate
from shared.adapters.postgres.database import Database
from shared.services import admin_dashboard
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

_SEED = [
    """INSERT INTO clients (firebase_uid, display_name, alias_number)
       SELECT 'client-' || n, 'Klien ' || n, 1000 + n FROM generate_series(1, :clients) AS n""",
    """INSERT INTO mitras (phone, display_name, firebase_uid, presence, last_heartbeat_at)
       SELECT '+62811' || lpad(n::text, 8, '0'), 'Mitra ' || n, 'mitra-' || n,
              CASE WHEN n <= :online THEN 'online' ELSE 'offline' END,
              CASE WHEN n <= :online THEN now() ELSE now() - interval '1 day' END
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
    }
    with db.transaction() as tx:
        for statement in _SEED:
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
        return _report(samples, seed_s, admin_dashboard.figures(ports))
    finally:
        db.close()


if __name__ == "__main__":
    print(run())
