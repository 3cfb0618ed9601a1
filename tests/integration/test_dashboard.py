"""The control center's figures against seeded scenarios whose answers are known, on a real PostgreSQL.

"Today" is the current day in Jakarta. Rows are placed a few minutes either side of Jakarta midnight, which is
17:00 UTC: both sides fall on the same UTC date, so only a Jakarta day tells them apart.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from shared import bootstrap
from shared.adapters.postgres.database import Database, Tx
from shared.domain import days
from shared.domain.admin import PresenceHistory
from shared.services import admin_dashboard, admin_mitras
from tests.support import world

TODAY = days.today(datetime.now(UTC))
MIDNIGHT = days.starts(TODAY)
MINUTE = timedelta(minutes=1)


def _figures(db: Database) -> dict[str, Any]:
    return admin_dashboard.figures(bootstrap.ports_on(db))


def _history(db: Database, mitra_id: str, first: date, last: date) -> PresenceHistory:
    return admin_mitras.status_history(bootstrap.ports_on(db), mitra_id, first, last)


def _mitra(tx: Tx, *, presence: str = "offline", heartbeat_age_s: int | None = None, active: bool = True) -> str:
    return str(
        tx.scalar(
            """INSERT INTO mitras (phone, display_name, firebase_uid, active, presence, last_heartbeat_at, heard_until)
               VALUES ('+62815' || lpad((random() * 99999999)::bigint::text, 8, '0'), 'Mitra', gen_random_uuid()::text,
                       :active, :presence, now() - make_interval(secs => :age),
                       now() - make_interval(secs => :age) + interval '90 seconds')
               RETURNING id::text""",
            {"active": active, "presence": presence, "age": heartbeat_age_s},
        )
    )


def _request(db: Database, status: str, created_at: datetime, wait: timedelta | None = None) -> tuple[str, str]:
    """A request of a new client; `wait` after it was made it was matched. Returns (client_id, request_id)."""
    client_id = world.add_client(db)
    ended_at = created_at + wait if wait is not None else (None if status == "searching" else created_at + MINUTE)
    with db.transaction() as tx:
        request_id = tx.scalar(
            """INSERT INTO pairing_requests (client_id, status, kind, duration_s, search_deadline, created_at, ended_at)
               VALUES (CAST(:c AS uuid), :status, 'free_trial', 900,
                       CAST(:created AS timestamptz) + interval '60 seconds', :created, :ended)
               RETURNING id::text""",
            {"c": client_id, "status": status, "created": created_at, "ended": ended_at},
        )
    return client_id, str(request_id)


def _session(db: Database, mitra_id: str, status: str, started_at: datetime, wait: timedelta) -> None:
    client_id, request_id = _request(db, "matched", started_at - wait, wait)
    with db.transaction() as tx:
        tx.execute(
            """INSERT INTO sessions (request_id, client_id, mitra_id, kind, status, started_at, ends_at, closed_at)
               VALUES (CAST(:r AS uuid), CAST(:c AS uuid), CAST(:m AS uuid), 'free_trial', :status, :started,
                       CAST(:started AS timestamptz) + interval '15 minutes',
                       CASE WHEN :status = 'closed' THEN CAST(:started AS timestamptz) + interval '15 minutes' END)""",
            {"r": request_id, "c": client_id, "m": mitra_id, "status": status, "started": started_at},
        )


def _payment(db: Database, status: str, amount: int, at: datetime) -> None:
    client_id = world.add_client(db)
    with db.transaction() as tx:
        tx.execute(
            """INSERT INTO customer_transactions (id, client_id, purpose, tier_id, duration_s, amount, status,
                                                  expires_at, created_at, paid_at, paid_amount, expired_at)
               VALUES (gen_random_uuid(), CAST(:c AS uuid), 'session', 'sesi-30', 1800, :amount, :status,
                       CAST(:at AS timestamptz) + interval '15 minutes', :at,
                       CASE WHEN :status = 'paid' THEN CAST(:at AS timestamptz) END,
                       CASE WHEN :status = 'paid' THEN CAST(:amount AS integer) END,
                       CASE WHEN :status = 'expired' THEN CAST(:at AS timestamptz) END)""",
            {"c": client_id, "amount": amount, "status": status, "at": at},
        )


@pytest.fixture
def scenario(db: Database) -> Database:
    """Capacity 3, heartbeat grace 90 s (the defaults)."""
    with db.transaction() as tx:
        idle = _mitra(tx, presence="online", heartbeat_age_s=5)  # online, available
        one = _mitra(tx, presence="online", heartbeat_age_s=5)  # online, available, busy
        full = _mitra(tx, presence="online", heartbeat_age_s=5)  # online, busy, at capacity
        _mitra(tx, presence="online", heartbeat_age_s=600)  # online but silent: not available
        away = _mitra(tx, presence="offline", heartbeat_age_s=600)  # offline, still in a session: busy
        _mitra(tx, active=False)  # not on the roster any more
    assert idle
    # Today's matched requests waited 5, 10, 20, 30, 40, 60 and 90 s: the median is 30 s.
    _session(db, one, "active", MIDNIGHT + 10 * MINUTE, timedelta(seconds=30))
    _session(db, full, "active", MIDNIGHT + 11 * MINUTE, timedelta(seconds=5))
    _session(db, full, "active", MIDNIGHT + 12 * MINUTE, timedelta(seconds=90))
    _session(db, full, "closing", MIDNIGHT + 13 * MINUTE, timedelta(seconds=10))
    _session(db, away, "active", MIDNIGHT + 14 * MINUTE, timedelta(seconds=60))
    _session(db, one, "closed", MIDNIGHT + 1 * MINUTE, timedelta(seconds=20))
    _session(db, away, "closed", MIDNIGHT + 2 * MINUTE, timedelta(seconds=40))
    # Yesterday in Jakarta (the same UTC date as the rows above): none of these is today's.
    for minutes, wait_s in ((1, 900), (30, 800), (300, 700)):
        _session(db, idle, "closed", MIDNIGHT - minutes * MINUTE - timedelta(minutes=20), timedelta(seconds=wait_s))
    _request(db, "no_mitra", MIDNIGHT - MINUTE)
    _request(db, "searching", MIDNIGHT - 2 * MINUTE)
    # Today's requests that found no session.
    _request(db, "no_mitra", MIDNIGHT + 3 * MINUTE)
    _request(db, "no_mitra", MIDNIGHT + 4 * MINUTE)
    _request(db, "cancelled", MIDNIGHT + 5 * MINUTE)
    _request(db, "searching", MIDNIGHT + 6 * MINUTE)
    _payment(db, "paid", 35_000, MIDNIGHT + MINUTE)
    _payment(db, "paid", 60_000, MIDNIGHT + 2 * MINUTE)
    _payment(db, "paid", 85_000, MIDNIGHT - MINUTE)
    _payment(db, "pending", 35_000, MIDNIGHT + 3 * MINUTE)
    _payment(db, "expired", 35_000, MIDNIGHT + 4 * MINUTE)
    return db


def test_the_dashboard_gives_the_known_answers(scenario: Database) -> None:
    figures = _figures(scenario)

    assert figures["day"] == TODAY
    assert figures["mitras"] == {"active": 5, "online": 4, "available": 2, "busy": 3, "at_capacity": 1}
    assert figures["clients_searching"] == 2, "every search still open, whichever day it began"
    assert (figures["active_sessions"], figures["closing_sessions"]) == (4, 1)
    assert figures["sessions_today"] == 7
    assert figures["requests_today"] == {"total": 11, "searching": 1, "matched": 7, "no_mitra": 2, "cancelled": 1}
    assert figures["median_wait_s_today"] == 30.0
    assert figures["no_mitra_rate_today"] == 0.2, "2 of the 10 requests that ended today"
    assert figures["revenue_today"] == {"amount": 95_000, "payments": 2}


def test_an_empty_day_has_no_rates_rather_than_zeros(db: Database) -> None:
    figures = _figures(db)

    assert figures["median_wait_s_today"] is None
    assert figures["no_mitra_rate_today"] is None
    assert figures["revenue_today"] == {"amount": 0, "payments": 0}
    assert figures["mitras"] == {"active": 0, "online": 0, "available": 0, "busy": 0, "at_capacity": 0}


def test_capacity_follows_the_setting(scenario: Database) -> None:
    with scenario.transaction() as tx:
        tx.execute("UPDATE app_config SET value = '2' WHERE key = 'max_concurrent_clients'")

    figures = _figures(scenario)

    assert figures["mitras"]["at_capacity"] == 1
    assert figures["mitras"]["available"] == 2
    with scenario.transaction() as tx:
        tx.execute("UPDATE app_config SET value = '1' WHERE key = 'max_concurrent_clients'")
    assert _figures(scenario)["mitras"]["at_capacity"] == 3, "one session fills every busy mitra"


# -- presence history: online time per Jakarta day -------------------------------------------------------------------


def _logged(db: Database, *transitions: tuple[datetime, str]) -> str:
    with db.transaction() as tx:
        mitra_id = _mitra(tx)
        previous = "offline"
        for at, to_status in transitions:
            tx.execute(
                """INSERT INTO mitra_status_logs (mitra_id, from_status, to_status, reason, at)
                   VALUES (CAST(:m AS uuid), :from_status, :to_status, 'manual', :at)""",
                {"m": mitra_id, "from_status": previous, "to_status": to_status, "at": at},
            )
            previous = to_status
    return mitra_id


def _at(day: date, hours: float) -> datetime:
    return days.starts(day) + timedelta(hours=hours)


def test_online_time_is_split_by_jakarta_day(db: Database) -> None:
    d1, d2, d3 = (TODAY - timedelta(days=n) for n in (5, 4, 3))
    mitra_id = _logged(
        db,
        (_at(d1 - timedelta(days=1), 23), "online"),  # before the range: the range begins online
        (_at(d1, 1), "offline"),
        (_at(d1, 10), "online"),
        (_at(d1, 12.5), "offline"),
        (_at(d2, 23), "online"),  # across midnight
        (_at(d3, 2), "offline"),
        (_at(d3 + timedelta(days=1), 8), "online"),  # after the range
    )

    history = _history(db, mitra_id, d1, d3)

    assert [(day.day, day.online_s) for day in history.online_by_day] == [
        (d1, 3_600 + 9_000),
        (d2, 3_600),
        (d3, 7_200),
    ]
    assert history.total_online_s == 3_600 + 9_000 + 3_600 + 7_200
    assert [change.to_status for change in history.changes] == [
        "offline",
        "online",
        "offline",
        "online",
        "offline",
    ]


def test_an_interval_still_open_counts_until_the_range_ends(db: Database) -> None:
    d1, d2 = TODAY - timedelta(days=3), TODAY - timedelta(days=2)
    mitra_id = _logged(db, (_at(d1, 20), "online"))

    history = _history(db, mitra_id, d1, d2)

    assert [day.online_s for day in history.online_by_day] == [4 * 3_600, 24 * 3_600]


def test_an_interval_still_open_counts_until_now(db: Database) -> None:
    now = datetime.now(UTC)
    mitra_id = _logged(db, (now - timedelta(minutes=30), "online"))

    history = _history(db, mitra_id, TODAY - timedelta(days=1), TODAY + timedelta(days=1))

    expected_today = min(30 * 60, (now - MIDNIGHT).total_seconds())
    by_day = {day.day: day.online_s for day in history.online_by_day}
    assert abs(by_day[TODAY] - expected_today) <= 5
    assert by_day[TODAY + timedelta(days=1)] == 0, "the future holds no online time"
    assert abs(history.total_online_s - 30 * 60) <= 5
