"""Reports of the other side of a session (`session_report`) and the control center's review queue
(`admin_reports`)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import AfterValidator, Field

from shared.domain.reports import DECISION_NOTE_MAX, TEXT_MAX
from shared.schemas import Model, Reply
from shared.schemas.admin_paging import PageQuery
from shared.schemas.feedback import said_something

ReportCategoryValue = Literal[
    "harassment", "abusive_language", "inappropriate_content", "spam_or_scam", "crisis", "self_harm_risk", "other"
]
ReportStatusValue = Literal["open", "resolved", "dismissed"]


class FileReport(Model):
    """Report the other side of a session the caller took part in. `crisis` and `self_harm_risk` also raise a
    crisis alert in the control center."""

    session_id: UUID
    category: ReportCategoryValue
    text: Annotated[str, Field(min_length=1, max_length=TEXT_MAX), AfterValidator(said_something)]


class ReportFiled(Reply):
    """What the reporter is told: the report is in the queue."""

    report_id: str
    session_id: str
    category: ReportCategoryValue
    status: ReportStatusValue
    created_at: datetime


class ReportQuery(PageQuery):
    status: ReportStatusValue | None = None
    category: ReportCategoryValue | None = None


class AdminReport(Reply):
    report_id: str
    session_id: str
    reporter_role: Literal["client", "mitra"]
    client_id: str
    client_alias: str
    mitra_id: str
    mitra_name: str
    category: ReportCategoryValue
    # Null once erased with the session's words.
    text: str | None
    status: ReportStatusValue
    created_at: datetime
    decided_at: datetime | None
    decided_by: str | None
    decision_note: str | None


class ReportPage(Reply):
    """GET: one page of reports, newest first. POST: the report as the decision left it (`next_cursor` null)."""

    reports: list[AdminReport]
    next_cursor: str | None = None


class DecideReport(Model):
    """Resolve or dismiss an open report, once (again: 409 `report_decided`). Audited; the note stays in
    PostgreSQL (erased with the session's words), not in the audit log."""

    action: Literal["resolve", "dismiss"]
    report_id: UUID
    note: Annotated[str, Field(min_length=1, max_length=DECISION_NOTE_MAX)] | None = None
