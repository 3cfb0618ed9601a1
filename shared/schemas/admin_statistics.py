"""Reports (`admin_statistics`) and a mitra's earnings statement (`admin_mitra_statement`); each answers JSON, or
CSV with `format=csv` (docs/contract.md "Reports")."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal
from uuid import UUID

from pydantic import ConfigDict, Field

from shared.domain.admin_statistics import FIRST_DAY, LAST_DAY, MONTH_PATTERN
from shared.schemas import Model, Reply


class StatisticsQuery(Model):
    from_date: date | None = Field(
        default=None, ge=FIRST_DAY, le=LAST_DAY, description="Jakarta day, included; default: 6 days before to_date"
    )
    to_date: date | None = Field(
        default=None, ge=FIRST_DAY, le=LAST_DAY, description="Jakarta day, included; default: today; at most 92 days"
    )
    group: Literal["day", "mitra", "both"] | None = Field(
        default=None, description="rows per day, per mitra, or both tables (JSON only); default: both, day for CSV"
    )
    format: Literal["json", "csv"] = Field(default="json", description="csv: text/csv, one row per day or mitra")


class ReportFigures(Reply):
    sessions: int = Field(description="sessions started")
    minutes: float = Field(description="minutes the sessions ran (to the goodbye window, or now while running)")
    payments: int = Field(description="payments received")
    revenue: int = Field(description="paid amounts, IDR")
    refund_count: int
    refunds: int = Field(description="amounts refunded, IDR")
    requests_finished: int = Field(description="requests made that ended: matched, no_mitra or cancelled")
    matched: int
    no_mitra: int
    no_mitra_rate: float | None = Field(description="no_mitra / requests_finished; null when none ended")
    average_wait_s: float | None = Field(description="mean seconds from request to match; null when none matched")


class DayFigures(ReportFigures):
    day: date


class MitraReportFigures(ReportFigures):
    mitra_id: str
    display_name: str


class Statistics(Reply):
    from_date: date
    to_date: date
    group: Literal["day", "mitra", "both"]
    currency: str = "IDR"
    totals: ReportFigures
    days: list[DayFigures] | None = Field(description="every day of the range, zeros included (group day or both)")
    mitras: list[MitraReportFigures] | None = Field(
        description="each mitra with any activity, by name (group mitra or both); a request that found nobody and a "
        "payment not yet used by a session belong to no mitra"
    )


class StatementQuery(Model):
    model_config = ConfigDict(
        extra="ignore",
        json_schema_extra={"examples": [{"mitra_id": "2f1c9a40-5d1e-4b7a-9c3e-1a2b3c4d5e6f", "month": "2026-11"}]},
    )

    mitra_id: UUID
    month: str = Field(pattern=MONTH_PATTERN, description="YYYY-MM (2000-2099), a month in Jakarta")
    format: Literal["json", "csv"] = Field(default="json", description="csv: text/csv, one row per session")


class StatementSessionRow(Reply):
    session_id: str
    kind: str
    tier_id: str | None
    started_at: datetime
    closed_at: datetime
    minutes: float = Field(description="minutes the session ran")
    paid_minutes: float = Field(description="the paid duration and applied extensions; 0 for a free trial")
    extensions: int
    paid_amount: int = Field(description="the session's payment and its extensions' payments, IDR")
    refunds: int = Field(description="refunded of those payments, IDR")
    net: int


class StatementTotalsRow(Reply):
    sessions: int
    paid_minutes: float
    gross_paid: int
    refunds: int
    net: int
    share_percent: int = Field(description="the mitra_share_percent setting when read")
    mitra_share: int = Field(description="floor(net x share_percent / 100), IDR: what finance pays the mitra")


class MitraStatement(Reply):
    mitra_id: str
    display_name: str
    month: str
    as_of: datetime
    currency: str = "IDR"
    sessions: list[StatementSessionRow] = Field(description="the mitra's sessions closed in the month, as they closed")
    totals: StatementTotalsRow
