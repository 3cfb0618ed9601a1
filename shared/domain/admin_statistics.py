"""Reports for the control center and finance: what happened per Jakarta day and per mitra over a range
(`admin_statistics`), and a mitra's earnings statement for a month (`admin_mitra_statement`).

Which day a row counts on (docs/contract.md "Reports"): a session on the Jakarta day it started; a payment on the day
it was paid; a refund on the day the ledger recorded the money going back; a pairing request on the day it was made.
A session's minutes are the time it ran: from its start to the end of the conversation (entering its goodbye window,
or closing without one; a session still running counts up to now). The SQL (shared/adapters/postgres/
admin_statistics.py) reads the tallies; what is derived from them (rates, averages, minutes, shares, the zero days,
CSV) is decided here.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, fields
from datetime import date, datetime, timedelta
from enum import StrEnum

from shared.domain import days


class Group(StrEnum):
    DAY = "day"
    MITRA = "mitra"
    # Both tables in one JSON reply: the day rows for a chart, the mitra rows for a table.
    BOTH = "both"


class Format(StrEnum):
    JSON = "json"
    CSV = "csv"


@dataclass(frozen=True)
class Tally:
    """What SQL counts for one day or one mitra; every figure of a report row is derived from these."""

    sessions: int = 0
    session_s: float = 0.0
    payments: int = 0
    revenue: int = 0
    refund_count: int = 0
    refunded: int = 0
    # Requests made that have ended (matched, no_mitra or cancelled), and of those the two that rates use.
    requests_finished: int = 0
    matched: int = 0
    no_mitra: int = 0
    # Request to match, summed over the matched requests.
    wait_s: float = 0.0

    def __add__(self, other: Tally) -> Tally:
        return Tally(**{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(Tally)})


@dataclass(frozen=True)
class MitraTally:
    mitra_id: str
    display_name: str
    tally: Tally


@dataclass(frozen=True)
class Figures:
    """One row of a report: a day's, a mitra's, or the range's totals."""

    sessions: int
    minutes: float
    payments: int
    revenue: int
    refund_count: int
    refunds: int
    requests_finished: int
    matched: int
    no_mitra: int
    no_mitra_rate: float | None
    average_wait_s: float | None


def figures(tally: Tally) -> Figures:
    return Figures(
        sessions=tally.sessions,
        minutes=minutes(tally.session_s),
        payments=tally.payments,
        revenue=tally.revenue,
        refund_count=tally.refund_count,
        refunds=tally.refunded,
        requests_finished=tally.requests_finished,
        matched=tally.matched,
        no_mitra=tally.no_mitra,
        no_mitra_rate=no_mitra_rate(tally),
        average_wait_s=average_wait_s(tally),
    )


def minutes(seconds: float) -> float:
    """Minutes to one decimal: the unit the control center and the statement show time in."""
    return round(seconds / 60, 1)


def no_mitra_rate(tally: Tally) -> float | None:
    """no_mitra / the requests that ended (matched, no_mitra, cancelled); none when no request ended."""
    return days.rate(tally.no_mitra, tally.requests_finished)


def average_wait_s(tally: Tally) -> float | None:
    """Mean seconds from request to match over the matched requests; none when none was matched."""
    return round(tally.wait_s / tally.matched, 1) if tally.matched else None


def every_day(first: date, last: date, counted: dict[date, Tally]) -> list[tuple[date, Tally]]:
    """Each day of the range in order, a day without activity as a zero row (a chart's x axis has no gaps)."""
    return [(day, counted.get(day, Tally())) for day in _days(first, last)]


def total(tallies: Iterable[Tally]) -> Tally:
    summed = Tally()
    for tally in tallies:
        summed = summed + tally
    return summed


def _days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def report_group(group: Group | None, output: Format) -> Group:
    """What a report holds when the caller does not say: both tables as JSON, the day table as CSV. None when the
    choice cannot be written (a CSV file holds one table)."""
    if group is None:
        return Group.DAY if output is Format.CSV else Group.BOTH
    return group


def csv_allows(group: Group) -> bool:
    return group is not Group.BOTH


# -- the earnings statement ----------------------------------------------------------------------------------------

# Reports reach from 2000 to 2099: far past the service's history, and clear of the calendar's ends.
MONTH_PATTERN = r"^20[0-9]{2}-(0[1-9]|1[0-2])$"
FIRST_DAY = date(2000, 1, 1)
LAST_DAY = date(2099, 12, 31)


def month_days(month: str) -> tuple[date, date]:
    """The first and last Jakarta day of `YYYY-MM`."""
    if not re.fullmatch(MONTH_PATTERN, month):
        raise ValueError("a month is YYYY-MM")
    year, number = (int(part) for part in month.split("-"))
    first = date(year, number, 1)
    following = date(year + number // 12, number % 12 + 1, 1)
    return first, following - timedelta(days=1)


def month_bounds(month: str) -> tuple[datetime, datetime]:
    """[the month's first day 00:00, the next month's first day 00:00) in Jakarta."""
    first, last = month_days(month)
    return days.starts(first), days.starts(last + timedelta(days=1))


@dataclass(frozen=True)
class StatementSession:
    """A session closed in the statement's month, as the mitra is paid for it."""

    session_id: str
    kind: str
    tier_id: str | None
    started_at: datetime
    closed_at: datetime
    run_s: float
    # What the client paid for: the session's duration and every extension applied to it (0 for a free trial).
    paid_s: int
    extensions: int
    # The session's payment and its applied extensions' payments, and what of them went back to the client.
    paid_amount: int
    refunded: int

    @property
    def minutes(self) -> float:
        return minutes(self.run_s)

    @property
    def paid_minutes(self) -> float:
        return minutes(self.paid_s)

    @property
    def net(self) -> int:
        return self.paid_amount - self.refunded


@dataclass(frozen=True)
class StatementTotals:
    sessions: int
    paid_minutes: float
    gross_paid: int
    refunds: int
    net: int
    share_percent: int
    mitra_share: int


def mitra_share(net: int, percent: int) -> int:
    """The mitra's part of what clients paid for their sessions less refunds: `percent` of it, floored to the whole
    rupiah (never more than was earned), computed once on the month's total, never below zero."""
    if not 0 <= percent <= 100:
        raise ValueError("a share is 0-100 percent")
    return max(net, 0) * percent // 100


def statement_totals(sessions: Sequence[StatementSession], percent: int) -> StatementTotals:
    gross = sum(s.paid_amount for s in sessions)
    refunds = sum(s.refunded for s in sessions)
    return StatementTotals(
        sessions=len(sessions),
        paid_minutes=minutes(sum(s.paid_s for s in sessions)),
        gross_paid=gross,
        refunds=refunds,
        net=gross - refunds,
        share_percent=percent,
        mitra_share=mitra_share(gross - refunds, percent),
    )


# -- CSV -----------------------------------------------------------------------------------------------------------

FIGURE_COLUMNS = [
    "sessions",
    "minutes",
    "payments",
    "revenue_idr",
    "refund_count",
    "refunds_idr",
    "requests_finished",
    "matched",
    "no_mitra",
    "no_mitra_rate",
    "average_wait_s",
]
STATEMENT_COLUMNS = [
    "session_id",
    "kind",
    "tier_id",
    "started_at",
    "closed_at",
    "minutes",
    "paid_minutes",
    "extensions",
    "paid_idr",
    "refunds_idr",
    "net_idr",
]


@dataclass(frozen=True)
class CsvTable:
    header: list[str]
    rows: list[list[object]] = field(default_factory=list)


def csv_text(table: CsvTable) -> str:
    """RFC 4180: a header row, comma-separated, CRLF line ends, quoted only where a value needs it; an empty
    cell for a figure that has no value (a rate of nothing). A cell a spreadsheet would run as a formula is
    prefixed with an apostrophe (display names are people's own text)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(table.header)
    for row in table.rows:
        writer.writerow(["" if value is None else _cell(value) for value in row])
    return out.getvalue()


def _cell(value: object) -> object:
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def _figure_cells(row: Figures) -> list[object]:
    return [
        row.sessions,
        row.minutes,
        row.payments,
        row.revenue,
        row.refund_count,
        row.refunds,
        row.requests_finished,
        row.matched,
        row.no_mitra,
        row.no_mitra_rate,
        row.average_wait_s,
    ]


def day_table(rows: Sequence[tuple[date, Figures]]) -> CsvTable:
    return CsvTable(["day", *FIGURE_COLUMNS], [[day.isoformat(), *_figure_cells(row)] for day, row in rows])


def mitra_table(rows: Sequence[tuple[str, str, Figures]]) -> CsvTable:
    return CsvTable(
        ["mitra_id", "display_name", *FIGURE_COLUMNS],
        [[mitra_id, name, *_figure_cells(row)] for mitra_id, name, row in rows],
    )


def statement_table(sessions: Sequence[StatementSession], totals: StatementTotals) -> CsvTable:
    """One row per session, then a `total` row whose last cells are the month's totals and the mitra's share
    (`mitra_share_idr` column, empty on session rows)."""
    header = [*STATEMENT_COLUMNS, "mitra_share_idr"]
    rows: list[list[object]] = [
        [
            s.session_id,
            s.kind,
            s.tier_id,
            s.started_at.astimezone(days.JAKARTA).isoformat(),
            s.closed_at.astimezone(days.JAKARTA).isoformat(),
            s.minutes,
            s.paid_minutes,
            s.extensions,
            s.paid_amount,
            s.refunded,
            s.net,
            None,
        ]
        for s in sessions
    ]
    total_row: list[object] = ["total", None, None, None, None, None, totals.paid_minutes, None]
    rows.append([*total_row, totals.gross_paid, totals.refunds, totals.net, totals.mitra_share])
    return CsvTable(header, rows)


def statistics_filename(first: date, last: date, group: Group) -> str:
    return f"halo-statistics-{group.value}-{first.isoformat()}-{last.isoformat()}.csv"


def statement_filename(mitra_id: str, month: str) -> str:
    return f"halo-statement-{month}-{mitra_id}.csv"


@dataclass(frozen=True)
class CsvDocument:
    """A report as a file: what the HTTP layer sends as text/csv with this filename."""

    filename: str
    text: str
