"""Reports for the control center and finance (shared/domain/admin_statistics.py): per Jakarta day and per mitra
over a range, and a mitra's earnings statement for a month; as JSON or as a CSV file. Each is read in one snapshot."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime
from typing import Any, Protocol

from shared.domain import admin, days
from shared.domain import admin_statistics as reports
from shared.domain.admin_statistics import (
    CsvDocument,
    Figures,
    Format,
    Group,
    MitraTally,
    StatementSession,
    StatementTotals,
    Tally,
)
from shared.errors import InvalidRequest, NotFound
from shared.services.ports import Ports


class AdminStatisticsRepository(Protocol):
    """What reports need from storage (shared/adapters/postgres/admin_statistics.py)."""

    def by_day(self, *, starts: datetime, ends: datetime, zone: str) -> dict[date, Tally]: ...

    def by_mitra(self, *, starts: datetime, ends: datetime) -> list[MitraTally]: ...

    def mitra_name(self, mitra_id: str) -> str | None: ...

    def statement(self, mitra_id: str, *, starts: datetime, ends: datetime) -> list[StatementSession]: ...


@dataclass(frozen=True)
class Report:
    first: date
    last: date
    group: Group
    totals: Figures
    days: list[tuple[date, Figures]] | None
    mitras: list[tuple[str, str, Figures]] | None


@dataclass(frozen=True)
class Statement:
    mitra_id: str
    display_name: str
    month: str
    as_of: datetime
    sessions: list[StatementSession]
    totals: StatementTotals


def report(ports: Ports, first: date | None, last: date | None, group: Group | None, output: Format) -> Report:
    """The figures of each day of the range (zero days included) and/or each mitra with activity in it; totals are
    the days' sums (they hold what belongs to no mitra)."""
    first, last = admin.history_days(first, last, today=days.today(datetime.now(UTC)))
    try:
        starts, ends = days.bounds(first, last)
    except days.InvalidRange as exc:
        raise InvalidRequest(str(exc), fields=[{"field": "from_date", "problem": str(exc)}]) from exc
    chosen = reports.report_group(group, output)
    if output is Format.CSV and not reports.csv_allows(chosen):
        problem = "a CSV file holds one table: day or mitra"
        raise InvalidRequest(problem, fields=[{"field": "group", "problem": problem}])
    with ports.uow() as uow:
        counted = uow.admin_statistics.by_day(starts=starts, ends=ends, zone=days.JAKARTA.key)
        by_mitra = uow.admin_statistics.by_mitra(starts=starts, ends=ends) if chosen is not Group.DAY else None
    every_day = reports.every_day(first, last, counted)
    return Report(
        first=first,
        last=last,
        group=chosen,
        totals=reports.figures(reports.total(tally for _, tally in every_day)),
        days=[(day, reports.figures(tally)) for day, tally in every_day] if chosen is not Group.MITRA else None,
        mitras=None if by_mitra is None else [(m.mitra_id, m.display_name, reports.figures(m.tally)) for m in by_mitra],
    )


def statistics(ports: Ports, first: date | None, last: date | None, group: Group | None) -> dict[str, Any]:
    found = report(ports, first, last, group, Format.JSON)
    return {
        "from_date": found.first,
        "to_date": found.last,
        "group": found.group.value,
        "totals": asdict(found.totals),
        "days": None if found.days is None else [{"day": day, **asdict(row)} for day, row in found.days],
        "mitras": None
        if found.mitras is None
        else [{"mitra_id": m, "display_name": name, **asdict(row)} for m, name, row in found.mitras],
    }


def statistics_csv(ports: Ports, first: date | None, last: date | None, group: Group | None) -> CsvDocument:
    found = report(ports, first, last, group, Format.CSV)
    table = reports.mitra_table(found.mitras) if found.mitras is not None else reports.day_table(found.days or [])
    return CsvDocument(reports.statistics_filename(found.first, found.last, found.group), reports.csv_text(table))


def statement(ports: Ports, mitra_id: str, month: str) -> Statement:
    """The mitra's sessions closed in the month (Jakarta) and what finance pays them: the `mitra_share_percent`
    setting of the month's paid amounts less refunds (`shared.domain.admin_statistics.mitra_share`)."""
    starts, ends = reports.month_bounds(month)
    with ports.uow() as uow:
        name = uow.admin_statistics.mitra_name(mitra_id)
        if name is None:
            raise NotFound("no such mitra")
        percent = uow.settings.load().mitra_share_percent
        sessions = uow.admin_statistics.statement(mitra_id, starts=starts, ends=ends)
    return Statement(mitra_id, name, month, datetime.now(UTC), sessions, reports.statement_totals(sessions, percent))


def statement_json(ports: Ports, mitra_id: str, month: str) -> dict[str, Any]:
    found = statement(ports, mitra_id, month)
    return {
        "mitra_id": found.mitra_id,
        "display_name": found.display_name,
        "month": found.month,
        "as_of": found.as_of,
        "sessions": [
            {
                "session_id": s.session_id,
                "kind": s.kind,
                "tier_id": s.tier_id,
                "started_at": s.started_at,
                "closed_at": s.closed_at,
                "minutes": s.minutes,
                "paid_minutes": s.paid_minutes,
                "extensions": s.extensions,
                "paid_amount": s.paid_amount,
                "refunds": s.refunded,
                "net": s.net,
            }
            for s in found.sessions
        ],
        "totals": asdict(found.totals),
    }


def statement_csv(ports: Ports, mitra_id: str, month: str) -> CsvDocument:
    found = statement(ports, mitra_id, month)
    table = reports.statement_table(found.sessions, found.totals)
    return CsvDocument(reports.statement_filename(mitra_id, month), reports.csv_text(table))
