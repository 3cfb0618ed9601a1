"""Reports against a seeded history whose answers are known, on a real PostgreSQL (the SQL of
shared/adapters/postgres/admin_statistics.py through its service).

The history sits around Jakarta midnight, 17:00 UTC, at the end of October 2026: a row at 23:50 WIB and one at 00:10
WIB the next day share a UTC date, so only the Jakarta day tells them apart; a session that starts on 31 October and
closes on 1 November counts on 31 October in the reports and in November's statement.
"""

from __future__ import annotations

import csv
import io
import uuid
from datetime import date, datetime, timedelta
from typing import Any

import pytest

from shared import bootstrap
from shared.adapters.postgres.database import Database
from shared.domain import days
from shared.domain.admin_statistics import Group
from shared.errors import InvalidRequest, NotFound
from shared.services import admin_statistics
from tests.support import world

D = date(2026, 10, 31)
NEXT = D + timedelta(days=1)
AFTER = D + timedelta(days=2)
MINUTE = timedelta(minutes=1)


def wib(day: date, hours: int, minutes: int = 0) -> datetime:
    return days.starts(day) + timedelta(hours=hours, minutes=minutes)


def _mitra(db: Database, name: str) -> str:
    with db.transaction() as tx:
        return str(
            tx.scalar(
                """INSERT INTO mitras (phone, display_name, firebase_uid)
                   VALUES ('+62815' || lpad((random() * 99999999)::bigint::text, 8, '0'), :name,
                           gen_random_uuid()::text) RETURNING id::text""",
                {"name": name},
            )
        )


def _payment(db: Database, client_id: str, amount: int, paid_at: datetime, extension_id: str | None = None) -> str:
    transaction_id = str(uuid.uuid4())
    with db.transaction() as tx:
        tx.execute(
            """INSERT INTO customer_transactions (id, client_id, purpose, tier_id, duration_s, amount, status,
                                                  extension_id, expires_at, created_at, paid_at, paid_amount)
               VALUES (CAST(:id AS uuid), CAST(:c AS uuid), :purpose, 'sesi-30', 1800, :amount, 'paid',
                       CAST(:extension AS uuid), :at, :at, :at, :amount)""",
            {
                "id": transaction_id,
                "c": client_id,
                "purpose": "session" if extension_id is None else "extension",
                "amount": amount,
                "extension": extension_id,
                "at": paid_at,
            },
        )
    return transaction_id


def _refund(db: Database, transaction_id: str, client_id: str, amount: int, at: datetime) -> None:
    with db.transaction() as tx:
        tx.execute(
            """INSERT INTO ledger_entries (transaction_id, client_id, kind, amount, created_at)
               VALUES (CAST(:t AS uuid), CAST(:c AS uuid), 'refund', :amount, :at)""",
            {"t": transaction_id, "c": client_id, "amount": amount, "at": at},
        )


def _request(db: Database, client_id: str, status: str, created_at: datetime, **paid: Any) -> str:
    wait = paid.pop("wait", MINUTE)
    with db.transaction() as tx:
        return str(
            tx.scalar(
                """INSERT INTO pairing_requests (client_id, status, kind, tier_id, transaction_id, duration_s,
                                                  search_deadline, created_at, ended_at)
                   VALUES (CAST(:c AS uuid), :status, :kind, :tier, CAST(:t AS uuid), :duration,
                           CAST(:at AS timestamptz) + interval '60 seconds', :at,
                           CASE WHEN :status <> 'searching' THEN CAST(:at AS timestamptz) + :wait END)
                   RETURNING id::text""",
                {
                    "c": client_id,
                    "status": status,
                    "kind": "paid" if paid.get("transaction_id") else "free_trial",
                    "tier": "sesi-30" if paid.get("transaction_id") else None,
                    "t": paid.get("transaction_id"),
                    "duration": 1800 if paid.get("transaction_id") else 900,
                    "at": created_at,
                    "wait": wait,
                },
            )
        )


def _session(
    db: Database,
    mitra_id: str,
    started_at: datetime,
    *,
    wait: timedelta,
    ran: timedelta,
    goodbye: bool,
    transaction_id: str | None = None,
    client_id: str | None = None,
) -> str:
    client_id = client_id or world.add_client(db)
    request_id = _request(db, client_id, "matched", started_at - wait, wait=wait, transaction_id=transaction_id)
    with db.transaction() as tx:
        return str(
            tx.scalar(
                """INSERT INTO sessions (request_id, client_id, mitra_id, kind, status, started_at, ends_at,
                                         closing_at, closed_at)
                   VALUES (CAST(:r AS uuid), CAST(:c AS uuid), CAST(:m AS uuid), :kind, 'closed', :started,
                           CAST(:started AS timestamptz) + :ran, :closing, :closed)
                   RETURNING id::text""",
                {
                    "r": request_id,
                    "c": client_id,
                    "m": mitra_id,
                    "kind": "paid" if transaction_id else "free_trial",
                    "started": started_at,
                    "ran": ran,
                    "closing": started_at + ran if goodbye else None,
                    "closed": started_at + ran + (MINUTE if goodbye else timedelta()),
                },
            )
        )


def _extension(db: Database, session_id: str, client_id: str, paid_at: datetime, amount: int) -> str:
    with db.transaction() as tx:
        extension_id = str(
            tx.scalar(
                """INSERT INTO session_extensions (session_id, tier_id, duration_s, price, status, respond_by,
                                                   requested_at, applied_at)
                   VALUES (CAST(:s AS uuid), 'sesi-30', 900, :amount, 'applied', :at, :at, :at) RETURNING id::text""",
                {"s": session_id, "amount": amount, "at": paid_at},
            )
        )
    return _payment(db, client_id, amount, paid_at, extension_id)


@pytest.fixture
def history(db: Database) -> dict[str, str]:
    ani, budi = _mitra(db, "Ani"), _mitra(db, "Budi")
    _mitra(db, "Citra")  # nothing in the range: no row
    # Ani: a paid session from 23:50 WIB on 31 October, 30 minutes then a goodbye, closed on 1 November; the client
    # waited 20 s; an extension of 15 minutes paid 20,000; 9,999 of the session's 35,000 refunded on 2 November.
    payer = world.add_client(db)
    bought = _payment(db, payer, 35_000, wib(D, 23, 45))
    paid_session = _session(
        db,
        ani,
        wib(D, 23, 50),
        wait=timedelta(seconds=20),
        ran=30 * MINUTE,
        goodbye=True,
        transaction_id=bought,
        client_id=payer,
    )
    _extension(db, paid_session, payer, wib(D, 23, 55), 20_000)
    _refund(db, bought, payer, 9_999, wib(AFTER, 10))
    # Budi: a free trial from 00:10 WIB on 1 November (16 minutes later in UTC, the same UTC date), no goodbye.
    _session(db, budi, wib(NEXT, 0, 10), wait=timedelta(seconds=40), ran=15 * MINUTE, goodbye=False)
    # 1 November: a request that found nobody, one cancelled, one still searching; a credit bought and not used,
    # refunded whole on 2 November (no mitra's).
    _request(db, world.add_client(db), "no_mitra", wib(NEXT, 0, 5))
    _request(db, world.add_client(db), "cancelled", wib(NEXT, 0, 6))
    _request(db, world.add_client(db), "searching", wib(NEXT, 0, 7))
    unused_by = world.add_client(db)
    unused = _payment(db, unused_by, 60_000, wib(NEXT, 0, 1))
    _refund(db, unused, unused_by, 60_000, wib(AFTER, 11))
    # Outside the range by minutes: 23:59 WIB on 30 October, 00:00 WIB on 4 November.
    _payment(db, world.add_client(db), 1_000, wib(D, 0) - MINUTE)
    _payment(db, world.add_client(db), 1_000, wib(D + timedelta(days=4), 0))
    return {"ani": ani, "budi": budi, "paid_session": paid_session}


def _report(db: Database, group: Group | None, first: date = D, last: date = D + timedelta(days=3)) -> dict[str, Any]:
    return admin_statistics.statistics(bootstrap.ports_on(db), first, last, group)


def test_each_jakarta_day_counts_what_happened_on_it(history: dict[str, str], db: Database) -> None:
    report = _report(db, Group.DAY)

    assert report["mitras"] is None
    rows = {row["day"]: row for row in report["days"]}
    assert list(rows) == [D, NEXT, AFTER, AFTER + timedelta(days=1)], "every day, the empty one too"
    assert rows[D] | {"day": None} == {
        "day": None,
        "sessions": 1,
        "minutes": 30.0,
        "payments": 2,
        "revenue": 55_000,
        "refund_count": 0,
        "refunds": 0,
        "requests_finished": 1,
        "matched": 1,
        "no_mitra": 0,
        "no_mitra_rate": 0.0,
        "average_wait_s": 20.0,
    }
    assert rows[NEXT] | {"day": None} == {
        "day": None,
        "sessions": 1,
        "minutes": 15.0,
        "payments": 1,
        "revenue": 60_000,
        "refund_count": 0,
        "refunds": 0,
        "requests_finished": 3,
        "matched": 1,
        "no_mitra": 1,
        "no_mitra_rate": 0.3333,
        "average_wait_s": 40.0,
    }
    assert (rows[AFTER]["refund_count"], rows[AFTER]["refunds"], rows[AFTER]["sessions"]) == (2, 69_999, 0)
    empty = rows[AFTER + timedelta(days=1)]
    assert (empty["sessions"], empty["revenue"], empty["no_mitra_rate"], empty["average_wait_s"]) == (0, 0, None, None)
    totals = report["totals"]
    assert (totals["sessions"], totals["minutes"], totals["revenue"], totals["refunds"]) == (2, 45.0, 115_000, 69_999)
    assert (totals["no_mitra_rate"], totals["average_wait_s"]) == (0.25, 30.0)


def test_each_mitra_is_counted_what_their_sessions_brought(history: dict[str, str], db: Database) -> None:
    report = _report(db, Group.MITRA)

    assert report["days"] is None
    assert [(row["display_name"], row["mitra_id"]) for row in report["mitras"]] == [
        ("Ani", history["ani"]),
        ("Budi", history["budi"]),
    ]
    ani, budi = report["mitras"]
    assert (ani["sessions"], ani["minutes"], ani["payments"], ani["revenue"]) == (1, 30.0, 2, 55_000)
    assert (ani["refund_count"], ani["refunds"], ani["matched"], ani["average_wait_s"]) == (1, 9_999, 1, 20.0)
    assert (budi["sessions"], budi["minutes"], budi["revenue"], budi["average_wait_s"]) == (1, 15.0, 0, 40.0)
    assert (ani["no_mitra_rate"], budi["no_mitra"]) == (None, 0), "a request that found nobody is no mitra's"
    assert report["totals"]["revenue"] == 115_000, "the totals hold the unused credit's payment too"


def test_a_day_is_a_jakarta_day_not_a_utc_one(history: dict[str, str], db: Database) -> None:
    only_next = _report(db, Group.BOTH, NEXT, NEXT)

    assert [row["day"] for row in only_next["days"]] == [NEXT]
    assert (only_next["totals"]["sessions"], only_next["totals"]["revenue"]) == (1, 60_000)
    assert [row["display_name"] for row in only_next["mitras"]] == ["Budi"]


def test_the_range_is_checked(db: Database) -> None:
    with pytest.raises(InvalidRequest) as backwards:
        _report(db, None, NEXT, D)
    with pytest.raises(InvalidRequest) as too_long:
        _report(db, None, D, D + timedelta(days=days.MAX_RANGE_DAYS))

    assert backwards.value.envelope()["error"]["fields"][0]["field"] == "from_date"
    assert too_long.value.envelope()["error"]["fields"][0]["field"] == "from_date"
    assert len(_report(db, Group.DAY, D, D + timedelta(days=days.MAX_RANGE_DAYS - 1))["days"]) == days.MAX_RANGE_DAYS


def test_the_day_table_as_csv(history: dict[str, str], db: Database) -> None:
    document = admin_statistics.statistics_csv(bootstrap.ports_on(db), D, NEXT, None)

    rows = list(csv.DictReader(io.StringIO(document.text)))
    assert document.filename == "halo-statistics-day-2026-10-31-2026-11-01.csv"
    assert [(row["day"], row["revenue_idr"], row["no_mitra_rate"]) for row in rows] == [
        ("2026-10-31", "55000", "0.0"),
        ("2026-11-01", "60000", "0.3333"),
    ]


# -- the earnings statement ------------------------------------------------------------------------------------------


def test_the_statement_holds_the_sessions_closed_in_the_month(history: dict[str, str], db: Database) -> None:
    ports = bootstrap.ports_on(db)

    november = admin_statistics.statement_json(ports, history["ani"], "2026-11")
    october = admin_statistics.statement_json(ports, history["ani"], "2026-10")

    assert october["sessions"] == [], "started in October, closed in November"
    (session,) = november["sessions"]
    assert session["session_id"] == history["paid_session"]
    assert (session["kind"], session["tier_id"], session["minutes"]) == ("paid", "sesi-30", 30.0)
    assert (session["paid_minutes"], session["extensions"]) == (45.0, 1), "30 bought and 15 extended"
    assert (session["paid_amount"], session["refunds"], session["net"]) == (55_000, 9_999, 45_001)
    assert november["totals"] == {
        "sessions": 1,
        "paid_minutes": 45.0,
        "gross_paid": 55_000,
        "refunds": 9_999,
        "net": 45_001,
        "share_percent": 70,
        "mitra_share": 31_500,
    }


def test_the_share_follows_the_setting_and_a_free_trial_earns_nothing(history: dict[str, str], db: Database) -> None:
    with db.transaction() as tx:
        tx.execute("UPDATE app_config SET value = '55' WHERE key = 'mitra_share_percent'")
    ports = bootstrap.ports_on(db)

    ani = admin_statistics.statement_json(ports, history["ani"], "2026-11")
    budi = admin_statistics.statement_json(ports, history["budi"], "2026-11")

    assert (ani["totals"]["share_percent"], ani["totals"]["mitra_share"]) == (55, 24_750)  # 45,001 x 0.55 = 24,750.55
    assert [(s["kind"], s["paid_minutes"], s["paid_amount"]) for s in budi["sessions"]] == [("free_trial", 0.0, 0)]
    assert budi["totals"]["mitra_share"] == 0


def test_the_statement_as_csv_ends_with_its_totals(history: dict[str, str], db: Database) -> None:
    document = admin_statistics.statement_csv(bootstrap.ports_on(db), history["ani"], "2026-11")

    rows = list(csv.DictReader(io.StringIO(document.text)))
    assert document.filename == f"halo-statement-2026-11-{history['ani']}.csv"
    assert [(row["session_id"], row["paid_idr"], row["net_idr"], row["mitra_share_idr"]) for row in rows] == [
        (history["paid_session"], "55000", "45001", ""),
        ("total", "55000", "45001", "31500"),
    ]
    assert rows[0]["started_at"] == "2026-10-31T23:50:00+07:00", "times in Jakarta"


def test_an_unknown_mitra_has_no_statement(db: Database) -> None:
    with pytest.raises(NotFound):
        admin_statistics.statement_json(bootstrap.ports_on(db), str(uuid.uuid4()), "2026-11")


def test_a_report_is_planned_for_its_own_range_every_time(history: dict[str, str], db: Database) -> None:
    """Its statements are prepared on the connection; a generic plan kept after five runs would guess how many rows
    a range holds. Each run is planned for its values instead (SET LOCAL plan_cache_mode in the report's change)."""
    for run in range(7):
        _report(db, Group.MITRA, first=D - timedelta(days=run * 10))
    with db.transaction() as tx:  # the same pooled connection; without parameters, not prepared itself
        plans = tx.all(
            """SELECT generic_plans, custom_plans FROM pg_prepared_statements
               WHERE statement LIKE '%customer_transactions%'"""
        )

    assert sum(plan["custom_plans"] == 7 for plan in plans) >= 2, "the day and mitra tallies, each prepared once"
    assert all(plan["generic_plans"] == 0 for plan in plans), plans
