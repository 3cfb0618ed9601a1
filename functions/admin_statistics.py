"""Reports for the control center and finance, as JSON or CSV. Every admin call is in the audit log (reads by
functions/_http.py)."""

from __future__ import annotations

from pydantic import BaseModel

from functions._http import Call, CsvFile, endpoint
from shared import bootstrap
from shared.domain.admin_statistics import Group
from shared.domain.roles import Role
from shared.schemas.admin_statistics import MitraStatement, StatementQuery, Statistics, StatisticsQuery
from shared.services import admin_statistics as reports


@endpoint(get=StatisticsQuery, roles={Role.ADMIN}, response=Statistics, csv=True)
def admin_statistics(call: Call[StatisticsQuery]) -> BaseModel:
    """Sessions, minutes, revenue, refunds, no-mitra rate and average wait per Jakarta day (every day of the range,
    zeros included) and per mitra, with the range's totals; `format=csv` answers one table (day or mitra) as a CSV
    file. At most 92 days; which day each row counts on: docs/contract.md "Reports"."""
    query = call.body
    group = None if query.group is None else Group(query.group)
    if query.format == "csv":
        document = reports.statistics_csv(bootstrap.ports(), query.from_date, query.to_date, group)
        return CsvFile(filename=document.filename, text=document.text)
    return Statistics.model_validate(reports.statistics(bootstrap.ports(), query.from_date, query.to_date, group))


@endpoint(get=StatementQuery, roles={Role.ADMIN}, response=MitraStatement, errors={404}, csv=True)
def admin_mitra_statement(call: Call[StatementQuery]) -> BaseModel:
    """A mitra's earnings statement for a month (Jakarta): their sessions closed in it (minutes, paid minutes,
    extensions, paid amounts, refunds) and the totals with the mitra's share (setting `mitra_share_percent`) that
    finance pays; `format=csv` answers it as a CSV file, one row per session and a total row."""
    query = call.body
    mitra_id = str(query.mitra_id)
    if query.format == "csv":
        document = reports.statement_csv(bootstrap.ports(), mitra_id, query.month)
        return CsvFile(filename=document.filename, text=document.text)
    return MitraStatement.model_validate(reports.statement_json(bootstrap.ports(), mitra_id, query.month))
