"""Either side of a session reports the other (`shared.domain.reports`): the report joins the control center's
review queue, the admins on duty are pushed, and a report of a crisis or of self-harm risk also raises a crisis
alert (`admin_alerts`). Admins list the queue and resolve or dismiss each report once (audited)."""

from __future__ import annotations

import logging
import uuid
from datetime import datetime
from typing import Protocol

from shared.domain import accounts, safety
from shared.domain import reports as rules
from shared.domain.chat import Participant
from shared.domain.idempotency import KeyedCall
from shared.domain.parties import SessionParties, may_write_about
from shared.domain.reports import FiledReport, RecentReports, Report, ReportCategory, ReportStatus
from shared.domain.safety import Category, Flag
from shared.errors import NotFound, RateLimited
from shared.logging import event
from shared.services import chat, idempotency, projector
from shared.services.admin_paging import keyset, page
from shared.services.parties import own_session, refuse
from shared.services.ports import Ports

log = logging.getLogger(__name__)


class ReportsRepository(Protocol):
    """What reports need from storage (shared/adapters/postgres/reports.py)."""

    def parties(self, session_id: str) -> SessionParties | None: ...

    def lock_reporter(self, reporter: Participant) -> None: ...

    def recent_by(self, reporter: Participant) -> RecentReports: ...

    def filed(self, parties: SessionParties, *, reporter_role: str, category: ReportCategory) -> Report | None: ...

    def add_unless_filed(
        self, parties: SessionParties, *, reporter_role: str, category: ReportCategory, text: str
    ) -> str | None: ...

    def flag(self, report_id: str, parties: SessionParties, category: Category) -> Flag: ...

    def reports(
        self,
        *,
        status: ReportStatus | None,
        category: ReportCategory | None,
        after: tuple[datetime, str] | None,
        limit: int,
    ) -> list[Report]: ...

    def report(self, report_id: str) -> Report | None: ...

    def decide_if_open(self, report_id: str, status: ReportStatus, admin_uid: str, note: str | None) -> bool: ...


def report(
    ports: Ports,
    caller: Participant,
    session_id: str,
    category: ReportCategory,
    text: str,
    *,
    keyed: KeyedCall | None = None,
) -> FiledReport:
    """From a session the caller took part in, in any state (refused once its words are erased). Apps send an
    Idempotency-Key: its retry is answered the first report (one report, one push). Without one, a second report of
    the same session by the same side in the same category is answered the first too (its text is not kept; no new
    push). An account files at most `reports_per_hour` new reports an hour (429 `rate_limited`; `rules.report_wait`)."""
    alert_category = rules.crisis_alert_category(category)
    with ports.uow() as uow:
        if (first := idempotency.first_answer(uow, keyed, FiledReport)) is not None:
            return first
        parties = own_session(uow.reports.parties(session_id), caller)
        refuse(may_write_about(parties))
        uow.reports.lock_reporter(caller)
        earlier = uow.reports.filed(parties, reporter_role=caller.role.value, category=category)
        if earlier is not None:
            answer = rules.filed(earlier)
            idempotency.remember(uow, keyed, answer)
            uow.commit()
            return answer
        wait = rules.report_wait(uow.reports.recent_by(caller), uow.settings.load().reports_per_hour, category)
        if wait is not None:
            raise RateLimited("too many reports in the last hour", retry_after_s=wait)
        if alert_category is not None:
            # Before anything is written: orders the hotline card with the session's other messages (`seq`).
            uow.safety.locked_session(session_id)
        report_id = uow.reports.add_unless_filed(parties, reporter_role=caller.role.value, category=category, text=text)
        # Filed by this side under its report lock since `filed` above: none can be.
        assert report_id is not None
        on_duty = uow.safety.admins_on_duty()
        to = safety.alert_recipients(on_duty=on_duty, every_admin=[] if on_duty else uow.safety.every_admin())
        if alert_category is None:
            uow.outbox.add(*rules.report_pushes(report_id, session_id, category, to))
        else:
            # The crisis alert's push (more urgent) stands for the report's own.
            flag = uow.reports.flag(report_id, parties, alert_category)
            if rules.shows_hotline(parties) and not uow.safety.hotline_shown(session_id):
                card = safety.hotline_message(str(uuid.uuid4()), session_id, uow.settings.load().hotline_numbers)
                chat.post(uow, card, sender_id=None)
                uow.safety.record_hotline(flag.alert_id, card.message_id)
            alias = accounts.alias(parties.alias_number)
            uow.outbox.add(
                safety.alert_raised(
                    flag,
                    session_id=session_id,
                    message_id=None,
                    report_id=report_id,
                    client_alias=alias,
                    category=alert_category,
                ),
                *safety.alert_pushes(flag.alert_id, session_id=session_id, client_alias=alias, to=to),
            )
        made = uow.reports.report(report_id)
        assert made is not None
        answer = rules.filed(made)
        idempotency.remember(uow, keyed, answer)
        committed = uow.commit()
    projector.deliver(ports, committed)
    event(log, "report filed", category=category.value, by=caller.role.value, admins=len(to.uids))
    return answer


def list_reports(
    ports: Ports,
    admin_uid: str,
    *,
    status: ReportStatus | None,
    category: ReportCategory | None,
    cursor: str | None,
    limit: int,
) -> tuple[list[Report], str | None]:
    """Newest first, keyset on (created_at, id). The reports' texts are people's words: each page read is in the
    audit log (`reports.read`: the admin, the filters, how many), committed before the page is handed out."""
    with ports.uow() as uow:
        rows = uow.reports.reports(
            status=status,
            category=category,
            after=keyset(cursor, datetime.fromisoformat, uuid.UUID),
            limit=limit + 1,
        )
        shown, next_cursor = page(rows, limit, "created_at", "report_id")
        uow.audit.record(
            actor_uid=admin_uid,
            actor_role="admin",
            action="reports.read",
            target=category.value if category else "all",
            old=None,
            new={"status": status.value if status else None, "reports": len(shown)},
        )
        uow.commit()
    return shown, next_cursor


def decide(ports: Ports, admin_uid: str, report_id: str, status: ReportStatus, note: str | None) -> Report:
    """Resolved or dismissed once (`ReportsRepository.decide_if_open`; again: 409 `report_decided`). Audited
    without the note, which stays in PostgreSQL, erased with the session's words."""
    with ports.uow() as uow:
        if not uow.reports.decide_if_open(report_id, status, admin_uid, note):
            if uow.reports.report(report_id) is None:
                raise NotFound("no such report")
            refuse(rules.REPORT_DECIDED)
        uow.audit.record(
            actor_uid=admin_uid,
            actor_role="admin",
            action=f"report.{status.value}",
            target=report_id,
            old={"status": ReportStatus.OPEN.value},
            new={"status": status.value},
        )
        decided = uow.reports.report(report_id)
        uow.commit()
    assert decided is not None
    return decided
