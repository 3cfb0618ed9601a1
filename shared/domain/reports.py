"""Either side of a session reports the other: the control center's review queue (`admin_reports`), where an admin
resolves or dismisses each report once. The admins on duty are pushed each report (every admin when nobody is on
duty, as crisis alerts are); a report of a crisis or of self-harm risk also raises a crisis alert
(`admin_alerts`), as a crisis signal in a message does. A report's text is personal data: erased with the client's
data and by retention.

The rule PostgreSQL enforces: a report is decided once (`ReportsRepository.decide_if_open`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from shared.domain.accounts import alias
from shared.domain.events import TopicMessage
from shared.domain.notify import push
from shared.domain.parties import Refused, SessionParties
from shared.domain.safety import AlertRecipients, Category

TEXT_MAX = 2000
DECISION_NOTE_MAX = 1000


class ReportCategory(StrEnum):
    HARASSMENT = "harassment"
    ABUSIVE_LANGUAGE = "abusive_language"
    INAPPROPRIATE_CONTENT = "inappropriate_content"
    SPAM_OR_SCAM = "spam_or_scam"
    # Someone is in crisis, or at risk of harming themself: also a crisis alert.
    CRISIS = "crisis"
    SELF_HARM_RISK = "self_harm_risk"
    OTHER = "other"


class ReportStatus(StrEnum):
    OPEN = "open"
    RESOLVED = "resolved"
    DISMISSED = "dismissed"


REPORT_DECIDED = Refused("report_decided", "this report was resolved or dismissed already")

# The crisis alert a report raises, by its category.
_ALERTS = {ReportCategory.CRISIS: Category.ACUTE_DISTRESS, ReportCategory.SELF_HARM_RISK: Category.SELF_HARM}


@dataclass(frozen=True)
class Report:
    report_id: str
    session_id: str
    reporter_role: str
    client_id: str
    alias_number: int
    mitra_id: str
    mitra_name: str
    category: ReportCategory
    # None once erased.
    text: str | None
    status: ReportStatus
    created_at: datetime
    decided_at: datetime | None
    decided_by: str | None
    decision_note: str | None

    @property
    def client_alias(self) -> str:
        return alias(self.alias_number)


@dataclass(frozen=True)
class FiledReport:
    """What the reporter is answered, and what a keyed retry is answered again: no words (the kept answer outlives
    nothing, but holds no text either)."""

    report_id: str
    session_id: str
    category: str
    status: str
    created_at: datetime


def filed(report: Report) -> FiledReport:
    return FiledReport(
        report.report_id, report.session_id, report.category.value, report.status.value, report.created_at
    )


def crisis_alert_category(category: ReportCategory) -> Category | None:
    """A report of a crisis or of self-harm risk, by either side, is about the client's safety: it raises a crisis
    alert of this category (`shared.services.reports.report`)."""
    return _ALERTS.get(category)


def shows_hotline(parties: SessionParties) -> bool:
    """A report of a crisis from a session still running puts the hotline card in it (once per session, as a crisis
    signal in a message does: `SafetyRepository.hotline_shown`); a closed session takes no new message."""
    return parties.status == "active"


def report_pushes(report_id: str, session_id: str, category: ReportCategory, to: AlertRecipients) -> list[TopicMessage]:
    """One push to the admins on duty (or to every admin when nobody is): ids and the category, never words."""
    if not to.uids:
        return []
    data = {"type": "report_filed", "report_id": report_id, "session_id": session_id, "category": category.value}
    if to.escalated:
        data["escalated"] = "true"
    return [
        push(
            dedup_key=f"report:{report_id}",
            recipients=to.uids,
            data=data,
            # The category only, never the report's words (shared/domain/texts: push.report_filed*).
            text_key="push.report_filed_escalated" if to.escalated else "push.report_filed",
            params={"category": category.value},
        )
    ]
