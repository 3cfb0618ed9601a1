"""Reports of the other side of a session, and the control center's review queue."""

from __future__ import annotations

from functions._http import Call, endpoint
from shared import bootstrap
from shared.domain.reports import ReportCategory, ReportStatus
from shared.domain.roles import Role
from shared.schemas.reports import AdminReport, DecideReport, FileReport, ReportFiled, ReportPage, ReportQuery
from shared.services import reports

_DECISIONS = {"resolve": ReportStatus.RESOLVED, "dismiss": ReportStatus.DISMISSED}


@endpoint(post=FileReport, roles={Role.CLIENT, Role.MITRA}, response=ReportFiled, errors={404, 409, 429}, tag="safety")
def session_report(call: Call[FileReport]) -> ReportFiled:
    """Report the other side of a session: a reason category and what happened. The control center reviews it;
    `crisis` and `self_harm_risk` also raise a crisis alert. Send an Idempotency-Key: its retry gets the first
    report. One report per session, side and category: a second is answered the first (its text not kept). At most
    `reports_per_hour` new reports per account an hour, then 429 `rate_limited` (never for `crisis` or
    `self_harm_risk`)."""
    body = call.body
    filed = reports.report(
        bootstrap.ports(),
        call.caller.participant(),
        str(body.session_id),
        ReportCategory(body.category),
        body.text,
        keyed=call.keyed,
    )
    return ReportFiled.model_validate(filed, from_attributes=True)


@endpoint(
    get=ReportQuery, post=DecideReport, roles={Role.ADMIN}, response=ReportPage, check_revoked=True, errors={404, 409}
)
def admin_reports(call: Call[ReportQuery | DecideReport]) -> ReportPage:
    """GET: reports, newest first (status, category, pages); each page read is audited. POST: resolve or dismiss
    one, once, with a note."""
    body = call.body
    if isinstance(body, DecideReport):
        decided = reports.decide(
            bootstrap.ports(), call.caller.uid, str(body.report_id), _DECISIONS[body.action], body.note
        )
        return ReportPage(reports=[AdminReport.model_validate(decided, from_attributes=True)])
    rows, cursor = reports.list_reports(
        bootstrap.ports(),
        call.caller.uid,
        status=ReportStatus(body.status) if body.status else None,
        category=ReportCategory(body.category) if body.category else None,
        cursor=body.cursor,
        limit=body.limit,
    )
    return ReportPage(reports=[AdminReport.model_validate(r, from_attributes=True) for r in rows], next_cursor=cursor)
