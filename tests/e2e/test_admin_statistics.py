"""Reports through the gateway: a session bought, paid and held through the real flows shows in the day's report,
in its mitra's row and in the mitra's monthly statement, as JSON and as CSV; bad input is a 400 naming the field;
only admins may read them."""

from __future__ import annotations

import csv
import io
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from emulators.simulator import App, Reply
from shared.adapters.postgres.database import Database
from shared.domain import days
from tests.support.people import Pair, uid_of

FUNCTIONS = ["admin_statistics", "admin_mitra_statement"]


def _mitra_id(db: Database, app: App) -> str:
    with db.transaction() as tx:
        return str(tx.scalar("SELECT id::text FROM mitras WHERE firebase_uid = :uid", {"uid": uid_of(app)}))


def _fields(reply: Reply) -> list[str]:
    assert (reply.status, reply.error_code) == (400, "invalid_request"), reply.body
    return [field["field"] for field in reply.body["error"]["fields"]]


def _rows(reply: Reply) -> list[dict[str, str]]:
    assert reply.status == 200, reply.body
    assert reply.headers["Content-Type"].startswith("text/csv"), reply.headers
    return list(csv.DictReader(io.StringIO(reply.body)))


def _statement_once_closed(admin: App, mitra_id: str, month: str, timeout: float = 20) -> dict[str, Any]:
    """The statement, once the mitra's session has closed (it counts in the month it closed)."""
    deadline = time.monotonic() + timeout
    while True:
        reply = admin.get("admin_mitra_statement", mitra_id=mitra_id, month=month)
        assert reply.status == 200, reply.body
        if reply.body["sessions"] or time.monotonic() > deadline:
            return dict(reply.body)
        time.sleep(0.2)


@pytest.mark.needs_gcloud
def test_a_paid_session_shows_in_the_report_and_the_statement(
    admin: App, timed_session: Callable[[int], Pair], app_config: Callable[..., None], halo_db: Database
) -> None:
    app_config(goodbye_window_s=0, mitra_share_percent=70)
    pair = timed_session(600)  # the short tier's price: 5,000
    mitra_id = _mitra_id(halo_db, pair.mitra)
    ended = pair.client.post("session_end", {"session_id": pair.session_id})
    assert ended.status == 200, ended.body
    today = days.today(datetime.now(UTC))
    month = today.strftime("%Y-%m")

    statement = _statement_once_closed(admin, mitra_id, month)
    report = admin.get("admin_statistics", from_date=today.isoformat(), to_date=today.isoformat())

    (session,) = statement["sessions"]
    assert (session["session_id"], session["kind"], session["paid_amount"], session["refunds"]) == (
        pair.session_id,
        "paid",
        5_000,
        0,
    )
    assert session["paid_minutes"] == 10.0
    assert statement["totals"] | {"paid_minutes": None} == {
        "sessions": 1,
        "paid_minutes": None,
        "gross_paid": 5_000,
        "refunds": 0,
        "net": 5_000,
        "share_percent": 70,
        "mitra_share": 3_500,
    }
    assert report.status == 200, report.body
    assert report.body["group"] == "both"
    (day,) = report.body["days"]
    assert day["day"] == today.isoformat()
    assert day["sessions"] >= 1 and day["revenue"] >= 5_000 and day["matched"] >= 1
    (mine,) = [row for row in report.body["mitras"] if row["mitra_id"] == mitra_id]
    assert (mine["sessions"], mine["payments"], mine["revenue"], mine["matched"]) == (1, 1, 5_000, 1)
    assert mine["average_wait_s"] is not None and mine["no_mitra_rate"] is None

    by_mitra = admin.get(
        "admin_statistics", from_date=today.isoformat(), to_date=today.isoformat(), group="mitra", format="csv"
    )
    statement_csv = admin.get("admin_mitra_statement", mitra_id=mitra_id, month=month, format="csv")

    (mine_csv,) = [row for row in _rows(by_mitra) if row["mitra_id"] == mitra_id]
    assert (mine_csv["sessions"], mine_csv["revenue_idr"], mine_csv["no_mitra_rate"]) == ("1", "5000", "")
    assert by_mitra.headers["Content-Disposition"] == (
        f'attachment; filename="halo-statistics-mitra-{today.isoformat()}-{today.isoformat()}.csv"'
    )
    lines = _rows(statement_csv)
    assert [(row["session_id"], row["paid_idr"], row["mitra_share_idr"]) for row in lines] == [
        (pair.session_id, "5000", ""),
        ("total", "5000", "3500"),
    ]
    assert f'filename="halo-statement-{month}-{mitra_id}.csv"' in statement_csv.headers["Content-Disposition"]


def test_the_day_report_has_every_day_of_the_range_and_a_csv_of_it(admin: App) -> None:
    first = days.today(datetime.now(UTC)) - timedelta(days=40)
    last = first + timedelta(days=2)

    report = admin.get("admin_statistics", from_date=first.isoformat(), to_date=last.isoformat(), group="day")
    as_csv = admin.get("admin_statistics", from_date=first.isoformat(), to_date=last.isoformat(), format="csv")

    assert report.status == 200, report.body
    assert [row["day"] for row in report.body["days"]] == [(first + timedelta(days=n)).isoformat() for n in range(3)]
    assert report.body["mitras"] is None
    assert [row["day"] for row in _rows(as_csv)] == [row["day"] for row in report.body["days"]]
    assert as_csv.body.splitlines()[0].startswith("day,sessions,minutes,payments,revenue_idr,")


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"from_date": "2026-11-02", "to_date": "2026-11-01"}, "from_date"),
        ({"from_date": "2026-01-01", "to_date": "2026-12-31"}, "from_date"),
        ({"from_date": "yesterday"}, "from_date"),
        ({"from_date": "0001-01-01", "to_date": "0001-01-02"}, "from_date"),
        ({"to_date": "9999-12-31"}, "to_date"),
        ({"group": "week"}, "group"),
        ({"format": "xlsx"}, "format"),
        ({"group": "both", "format": "csv"}, "group"),
    ],
)
def test_a_bad_report_query_is_a_400_naming_the_field(admin: App, query: dict[str, str], field: str) -> None:
    assert field in _fields(admin.get("admin_statistics", **query))


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"mitra_id": "not-a-uuid", "month": "2026-11"}, "mitra_id"),
        ({"month": "2026-11"}, "mitra_id"),
        ({"mitra_id": str(uuid.uuid4()), "month": "2026-13"}, "month"),
        ({"mitra_id": str(uuid.uuid4())}, "month"),
        ({"mitra_id": str(uuid.uuid4()), "month": "0000-01"}, "month"),
    ],
)
def test_a_bad_statement_query_is_a_400_naming_the_field(admin: App, query: dict[str, str], field: str) -> None:
    assert field in _fields(admin.get("admin_mitra_statement", **query))


def test_an_unknown_mitra_has_no_statement(admin: App) -> None:
    reply = admin.get("admin_mitra_statement", mitra_id=str(uuid.uuid4()), month="2026-11")

    assert (reply.status, reply.error_code) == (404, "not_found")


@pytest.mark.parametrize("function", FUNCTIONS)
@pytest.mark.parametrize("output", ["json", "csv"])
def test_only_admins_may_read_reports(
    function: str,
    output: str,
    new_client: Callable[..., App],
    seeded_mitra: Callable[[int], App],
    anonymous_app: App,
) -> None:
    query = {"mitra_id": str(uuid.uuid4()), "month": "2026-11", "format": output}
    if function == "admin_statistics":
        query = {"format": output}

    as_client = new_client().get(function, **query)
    as_mitra = seeded_mitra(1).get(function, **query)
    as_nobody = anonymous_app.get(function, **query)

    assert (as_client.status, as_client.error_code) == (403, "forbidden")
    assert (as_mitra.status, as_mitra.error_code) == (403, "forbidden")
    assert as_nobody.status == 401
    assert "text/csv" not in as_client.headers.get("Content-Type", "")
