"""Reports' rules (shared/domain/admin_statistics.py: rates, averages, minutes, the mitra's share, zero days, months,
CSV) and the service on the in-memory unit of work. The SQL against PostgreSQL at Jakarta midnight:
tests/integration/test_admin_statistics.py; through the gateway: tests/e2e/test_admin_statistics.py."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, date, datetime, timedelta

import pytest
from pydantic import ValidationError

from shared.domain import admin_statistics as reports
from shared.domain import days
from shared.domain.admin_statistics import CsvTable, Format, Group, StatementSession, Tally
from shared.domain.config import AppConfig
from shared.errors import InvalidRequest, NotFound
from shared.services import admin_statistics
from tests.support.fake_pairing import add_mitra
from tests.support.fakes import FakeDatabase, fake_ports, with_config

# -- the rules -------------------------------------------------------------------------------------------------------


def test_the_no_mitra_rate_is_of_the_requests_that_ended() -> None:
    assert reports.no_mitra_rate(Tally(requests_finished=3, no_mitra=1)) == 0.3333
    assert reports.no_mitra_rate(Tally(requests_finished=4, no_mitra=0)) == 0.0
    assert reports.no_mitra_rate(Tally()) is None, "nothing ended: no rate rather than zero"


def test_the_average_wait_is_over_the_matched_requests() -> None:
    assert reports.average_wait_s(Tally(matched=3, wait_s=10.0 + 20.0 + 45.5)) == 25.2
    assert reports.average_wait_s(Tally(requests_finished=2, no_mitra=2)) is None


def test_minutes_are_shown_to_one_decimal() -> None:
    assert reports.minutes(0) == 0.0
    assert reports.minutes(1_800) == 30.0
    assert reports.minutes(95) == 1.6


def test_tallies_add_up_field_by_field() -> None:
    total = reports.total([Tally(sessions=1, revenue=35_000, wait_s=20), Tally(sessions=2, refunded=5, wait_s=1.5)])

    assert total == Tally(sessions=3, revenue=35_000, refunded=5, wait_s=21.5)


def test_every_day_of_the_range_has_a_row_the_quiet_ones_zero() -> None:
    first = date(2026, 2, 27)
    busy = Tally(sessions=4)

    rows = reports.every_day(first, date(2026, 3, 2), {date(2026, 3, 1): busy})

    assert [day for day, _ in rows] == [date(2026, 2, 27), date(2026, 2, 28), date(2026, 3, 1), date(2026, 3, 2)]
    assert [tally.sessions for _, tally in rows] == [0, 0, 4, 0]


@pytest.mark.parametrize(
    ("net", "percent", "share"),
    [
        (45_001, 70, 31_500),  # 31,500.7: floored, never rounded up
        (35_000, 70, 24_500),
        (99_999, 33, 32_999),  # 32,999.67
        (10_000, 0, 0),
        (10_000, 100, 10_000),
        (-5_000, 70, 0),  # refunds beyond what was paid in the month: nothing, never a debt
    ],
)
def test_the_mitra_share_is_floored_to_the_whole_rupiah(net: int, percent: int, share: int) -> None:
    assert reports.mitra_share(net, percent) == share


def test_a_share_outside_0_to_100_percent_is_refused() -> None:
    with pytest.raises(ValueError, match="0-100"):
        reports.mitra_share(1_000, 101)
    with pytest.raises(ValidationError):
        AppConfig.model_validate({"mitra_share_percent": 101})
    with pytest.raises(ValidationError):
        AppConfig.model_validate({"mitra_share_percent": -1})
    assert AppConfig().mitra_share_percent == 70
    assert AppConfig.model_validate({"mitra_share_percent": 0}).mitra_share_percent == 0


def test_the_share_is_taken_once_on_the_month_not_per_session() -> None:
    at = datetime(2026, 11, 3, 10, tzinfo=UTC)
    sessions = [_statement_session(at, paid=10_001), _statement_session(at, paid=10_001)]

    totals = reports.statement_totals(sessions, 50)

    assert (totals.gross_paid, totals.net, totals.mitra_share) == (20_002, 20_002, 10_001), "5,000 twice would be less"


@pytest.mark.parametrize(
    ("month", "first", "last"),
    [
        ("2026-11", date(2026, 11, 1), date(2026, 11, 30)),
        ("2026-12", date(2026, 12, 1), date(2026, 12, 31)),
        ("2028-02", date(2028, 2, 1), date(2028, 2, 29)),
        ("2099-12", date(2099, 12, 1), date(2099, 12, 31)),
    ],
)
def test_a_month_is_its_jakarta_days(month: str, first: date, last: date) -> None:
    assert reports.month_days(month) == (first, last)
    starts, ends = reports.month_bounds(month)
    assert starts == days.starts(first)
    assert ends - timedelta(days=1) == days.starts(last)
    assert starts.astimezone(UTC).hour == 17, "Jakarta midnight is 17:00 UTC the day before"


@pytest.mark.parametrize("month", ["2026-13", "2026-00", "2026-1", "26-11", "november", "0000-01", "9999-12"])
def test_a_month_that_is_not_yyyy_mm_is_refused(month: str) -> None:
    with pytest.raises(ValueError, match="YYYY-MM"):
        reports.month_days(month)


def test_csv_has_a_header_crlf_lines_empty_cells_for_no_value_and_no_formulas() -> None:
    text = reports.csv_text(
        CsvTable(["name", "rate", "amount"], [["=HYPERLINK(1)", None, 35_000], ["Ani, S.", 0.5, 0]])
    )

    assert text == 'name,rate,amount\r\n\'=HYPERLINK(1),,35000\r\n"Ani, S.",0.5,0\r\n'


def test_the_day_and_mitra_tables_name_amounts_in_idr() -> None:
    figures = reports.figures(Tally(sessions=1, session_s=1_800, payments=1, revenue=35_000))

    day = reports.day_table([(date(2026, 11, 1), figures)])
    mitra = reports.mitra_table([("m-1", "Ani", figures)])

    assert day.header == ["day", *reports.FIGURE_COLUMNS]
    assert "revenue_idr" in day.header and "refunds_idr" in day.header
    assert day.rows == [["2026-11-01", 1, 30.0, 1, 35_000, 0, 0, 0, 0, 0, None, None]]
    assert mitra.rows[0][:3] == ["m-1", "Ani", 1]


def test_a_csv_holds_one_table() -> None:
    assert reports.report_group(None, Format.JSON) is Group.BOTH
    assert reports.report_group(None, Format.CSV) is Group.DAY
    assert not reports.csv_allows(Group.BOTH)
    assert reports.csv_allows(Group.MITRA)


def _statement_session(closed_at: datetime, *, paid: int = 0, refunded: int = 0) -> StatementSession:
    return StatementSession(
        session_id=str(uuid.uuid4()),
        kind="paid" if paid else "free_trial",
        tier_id="sesi-30" if paid else None,
        started_at=closed_at - timedelta(minutes=30),
        closed_at=closed_at,
        run_s=1_800,
        paid_s=1_800 if paid else 0,
        extensions=0,
        paid_amount=paid,
        refunded=refunded,
    )


# -- the service on the fakes ------------------------------------------------------------------------------------------


def _world() -> tuple[FakeDatabase, str, str]:
    """A paid session of Ani's that started at 23:50 WIB on 31 October (16:50 UTC) and closed at 00:25 WIB on
    1 November, its credit paid at 23:40 WIB; a free trial of Budi's at 00:10 WIB on 1 November."""
    db = FakeDatabase()
    ani, budi = add_mitra(db, name="Ani"), add_mitra(db, name="Budi")
    start = days.starts(date(2026, 10, 31)) + timedelta(hours=23, minutes=50)
    db.table("customer_transactions")["t1"] = {
        "id": "t1",
        "status": "paid",
        "paid_at": start - timedelta(minutes=10),
        "paid_amount": 35_000,
    }
    db.table("ledger_entries")[1] = {
        "transaction_id": "t1",
        "kind": "refund",
        "amount": 5_001,
        "created_at": start + timedelta(days=2),
    }
    for request_id, mitra, at, transaction, wait_s in (
        ("r1", ani, start, "t1", 30),
        ("r2", budi, start + timedelta(minutes=20), None, 60),
    ):
        db.table("pairing_requests")[request_id] = {
            "id": request_id,
            "status": "matched",
            "created_at": at - timedelta(seconds=wait_s),
            "ended_at": at,
            "transaction_id": transaction,
            "tier_id": "sesi-30" if transaction else None,
            "duration_s": 1_800,
        }
        db.table("sessions")[request_id] = {
            "id": f"s-{request_id}",
            "request_id": request_id,
            "mitra_id": mitra,
            "status": "closed",
            "kind": "paid" if transaction else "free_trial",
            "started_at": at,
            "closing_at": at + timedelta(minutes=30),
            "closed_at": at + timedelta(minutes=35),
        }
    db.table("pairing_requests")["r3"] = {
        "id": "r3",
        "status": "no_mitra",
        "created_at": start + timedelta(minutes=30),
        "ended_at": None,
    }
    return db, ani, budi


def test_the_report_counts_by_jakarta_day_with_its_totals() -> None:
    db, _, _ = _world()

    report = admin_statistics.statistics(fake_ports(db), date(2026, 10, 30), date(2026, 11, 2), Group.DAY)

    by_day = {row["day"]: row for row in report["days"]}
    assert [row["sessions"] for row in report["days"]] == [0, 1, 1, 0]
    assert by_day[date(2026, 10, 31)]["revenue"] == 35_000
    assert by_day[date(2026, 11, 1)]["no_mitra_rate"] == 0.5
    assert by_day[date(2026, 11, 2)]["refunds"] == 5_001
    assert report["totals"]["minutes"] == 60.0
    assert report["totals"]["average_wait_s"] == 45.0
    assert report["mitras"] is None


def test_the_report_by_mitra_credits_the_payment_to_the_session_that_used_it() -> None:
    db, ani, budi = _world()

    report = admin_statistics.statistics(fake_ports(db), date(2026, 10, 30), date(2026, 11, 2), None)

    assert report["group"] == "both" and len(report["days"]) == 4
    assert [(m["mitra_id"], m["revenue"], m["refunds"]) for m in report["mitras"]] == [
        (ani, 35_000, 5_001),
        (budi, 0, 0),
    ]
    assert [m["no_mitra_rate"] for m in report["mitras"]] == [None, None]


@pytest.mark.parametrize(
    ("first", "last"),
    [(date(2026, 11, 2), date(2026, 11, 1)), (date(2026, 1, 1), date(2026, 1, 1) + timedelta(days=92))],
)
def test_a_range_backwards_or_too_long_is_refused_naming_from_date(first: date, last: date) -> None:
    with pytest.raises(InvalidRequest) as refused:
        admin_statistics.statistics(fake_ports(FakeDatabase()), first, last, None)

    assert [f["field"] for f in refused.value.envelope()["error"]["fields"]] == ["from_date"]


def test_both_tables_cannot_be_one_csv() -> None:
    with pytest.raises(InvalidRequest) as refused:
        admin_statistics.statistics_csv(fake_ports(FakeDatabase()), None, None, Group.BOTH)

    assert [f["field"] for f in refused.value.envelope()["error"]["fields"]] == ["group"]


def test_the_default_range_is_the_last_seven_days() -> None:
    report = admin_statistics.statistics(fake_ports(FakeDatabase()), None, None, Group.DAY)

    today = days.today(datetime.now(UTC))
    assert (report["from_date"], report["to_date"]) == (today - timedelta(days=6), today)
    assert len(report["days"]) == 7


def test_the_statement_deducts_refunds_and_pays_the_setting_s_share() -> None:
    db, ani, _ = _world()
    with_config(db, mitra_share_percent=60)

    statement = admin_statistics.statement_json(fake_ports(db), ani, "2026-11")

    (session,) = statement["sessions"]
    assert (session["paid_amount"], session["refunds"], session["net"], session["paid_minutes"]) == (
        35_000,
        5_001,
        29_999,
        30.0,
    )
    assert statement["totals"]["mitra_share"] == 17_999  # 29,999 x 0.6 = 17,999.4
    assert admin_statistics.statement_json(fake_ports(db), ani, "2026-10")["sessions"] == []


def test_the_statement_csv_is_one_row_per_session_and_a_total() -> None:
    db, ani, _ = _world()

    document = admin_statistics.statement_csv(fake_ports(db), ani, "2026-11")

    rows = list(csv.reader(io.StringIO(document.text)))
    assert rows[0][0] == "session_id" and rows[0][-1] == "mitra_share_idr"
    assert [row[0] for row in rows[1:]] == ["s-r1", "total"]
    assert rows[-1][-1] == "20999"  # 29,999 x 0.7 = 20,999.3


def test_an_unknown_mitra_has_no_statement() -> None:
    with pytest.raises(NotFound):
        admin_statistics.statement_json(fake_ports(FakeDatabase()), str(uuid.uuid4()), "2026-11")
