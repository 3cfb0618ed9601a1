"""Either side of a session reports the other: the control center's review queue (`admin_reports`), where an admin
resolves or dismisses each report once. The admins on duty are pushed each report (every admin when nobody is on
duty, as crisis alerts are); a report of a crisis or of self-harm risk also raises a crisis alert
(`admin_alerts`), as a crisis signal in a message does. A report's text is personal data: erased with the client's
data and by retention.

The rules PostgreSQL enforces: a report is decided once (`ReportsRepository.decide_if_open`); one report per session,
side and category of a pair (`ReportsRepository.add_unless_filed`, migration 0026's unique index; a session
rerouted to another mitra is another pair): a second is answered the first. And the abuse limit (`report_wait`):
each report pushes every admin on duty, so an account files at most `reports_per_hour` (app_config) in
REPORT_WINDOW, a report of a crisis or of self-harm risk excepted."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
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


# The window `reports_per_hour` counts an account's reports in (`report_wait`).
REPORT_WINDOW = timedelta(hours=1)

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


@dataclass(frozen=True)
class RecentReports:
    """The reports one account (a client, or a mitra) filed within REPORT_WINDOW, read under that account's report
    lock (`ReportsRepository.lock_reporter`), and the change's moment."""

    count: int
    earliest: datetime | None
    now: datetime


def report_wait(recent: RecentReports, per_hour: int, category: ReportCategory) -> int | None:
    """Each report pushes every admin on duty (every admin when nobody is): an account files at most `per_hour` in
    REPORT_WINDOW. A keyed retry, and a second report of the same session, side and category (answered the first),
    are not new reports and are never refused by this. Nor is a report of a crisis or of self-harm risk: someone's
    safety is never refused for being late in a busy hour, and such reports stay bounded by one per session, side
    and category (they count towards the hour all the same). None when the report may be filed; else the seconds
    until the earliest leaves the window (429 `rate_limited` with Retry-After)."""
    if recent.count < per_hour or crisis_alert_category(category) is not None:
        return None
    wait = (recent.earliest or recent.now) + REPORT_WINDOW - recent.now
    return max(1, math.ceil(wait.total_seconds()))


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
