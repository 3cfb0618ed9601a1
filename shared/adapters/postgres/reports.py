"""Reports in SQL: the review queue, a report's crisis flag, and deciding a report once."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from shared.adapters.postgres.parties import session_parties
from shared.adapters.postgres.sql import Sql
from shared.domain.chat import Participant
from shared.domain.parties import SessionParties
from shared.domain.reports import REPORT_WINDOW, RecentReports, Report, ReportCategory, ReportStatus
from shared.domain.safety import Category, Flag

_REPORT = """
    SELECT r.id::text AS report_id, r.session_id::text, r.reporter_role, r.client_id::text, c.alias_number,
           r.mitra_id::text, m.display_name AS mitra_name, r.category, r.text, r.status, r.created_at, r.decided_at,
           r.decided_by, r.decision_note
    FROM reports r JOIN clients c ON c.id = r.client_id JOIN mitras m ON m.id = r.mitra_id"""

# The column naming the reporting account, by the reporter's role (never the caller's input).
_REPORTER = {"client": "client_id", "mitra": "mitra_id"}


class ReportsRepository:
    def __init__(self, sql: Sql) -> None:
        self._sql = sql

    def parties(self, session_id: str) -> SessionParties | None:
        return session_parties(self._sql, session_id)

    def lock_reporter(self, reporter: Participant) -> None:
        """One account's reports one at a time, until the change ends: its count (`recent_by`) and its first report
        of a session and category (`filed`) cannot change under it. An advisory lock, so no account row is held."""
        self._sql.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended('report:' || :role || ':' || :account, 0))",
            {"role": reporter.role.value, "account": reporter.account_id},
        )

    def recent_by(self, reporter: Participant) -> RecentReports:
        """The reports this account filed within REPORT_WINDOW (`shared.domain.reports.report_wait`)."""
        column = _REPORTER[reporter.role.value]
        row = self._sql.one(
            f"""SELECT count(*) AS count, min(created_at) AS earliest, now() AS now FROM reports
                WHERE reporter_role = :role AND {column} = CAST(:account AS uuid)
                  AND created_at > now() - make_interval(secs => :window_s)""",
            {"role": reporter.role.value, "account": reporter.account_id, "window_s": REPORT_WINDOW.total_seconds()},
        )
        assert row is not None
        return RecentReports(**row)

    def filed(self, parties: SessionParties, *, reporter_role: str, category: ReportCategory) -> Report | None:
        """This side's report of this session's pair in this category, if it filed one (`add_unless_filed`)."""
        row = self._sql.one(
            f"""{_REPORT}
                WHERE r.session_id = CAST(:session AS uuid) AND r.reporter_role = :role AND r.category = :category
                  AND r.client_id = CAST(:client AS uuid) AND r.mitra_id = CAST(:mitra AS uuid)""",
            {
                "session": parties.session_id,
                "role": reporter_role,
                "category": category.value,
                "client": parties.client_id,
                "mitra": parties.mitra_id,
            },
        )
        return _report(row) if row else None

    def add_unless_filed(
        self, parties: SessionParties, *, reporter_role: str, category: ReportCategory, text: str
    ) -> str | None:
        """The rule `shared.domain.reports`: one report per session, side and category of a pair (the unique index
        reports_once_per_session_side_category, migration 0026; a session rerouted to another mitra is another
        pair). None when this side filed one already."""
        found = self._sql.scalar(
            """INSERT INTO reports (session_id, reporter_role, client_id, mitra_id, category, text)
               VALUES (CAST(:session AS uuid), :role, CAST(:client AS uuid), CAST(:mitra AS uuid), :category, :text)
               ON CONFLICT (session_id, reporter_role, category, client_id, mitra_id) DO NOTHING
               RETURNING id::text""",
            {
                "session": parties.session_id,
                "role": reporter_role,
                "client": parties.client_id,
                "mitra": parties.mitra_id,
                "category": category.value,
                "text": text,
            },
        )
        return str(found) if found is not None else None

    def flag(self, report_id: str, parties: SessionParties, category: Category) -> Flag:
        """The report's crisis alert: a flag of the report (no message, no matched phrase)."""
        row = self._sql.one(
            """INSERT INTO safety_flags (report_id, session_id, client_id, category)
               VALUES (CAST(:report AS uuid), CAST(:session AS uuid), CAST(:client AS uuid), :category)
               RETURNING id::text AS alert_id, created_at""",
            {
                "report": report_id,
                "session": parties.session_id,
                "client": parties.client_id,
                "category": category.value,
            },
        )
        assert row is not None
        return Flag(**row)

    def reports(
        self,
        *,
        status: ReportStatus | None,
        category: ReportCategory | None,
        after: tuple[datetime, str] | None,
        limit: int,
    ) -> list[Report]:
        """Newest first, after the keyset `after` (created_at, id); of one status and category when given."""
        params: dict[str, Any] = {
            "status": status.value if status else None,
            "category": category.value if category else None,
            "at": after[0] if after else None,
            "id": after[1] if after else None,
            "limit": limit,
        }
        rows = self._sql.all(
            f"""{_REPORT}
                WHERE (CAST(:status AS text) IS NULL OR r.status = :status)
                  AND (CAST(:category AS text) IS NULL OR r.category = :category)
                  AND (CAST(:at AS timestamptz) IS NULL
                       OR (r.created_at, r.id) < (CAST(:at AS timestamptz), CAST(:id AS uuid)))
                ORDER BY r.created_at DESC, r.id DESC LIMIT :limit""",
            params,
        )
        return [_report(row) for row in rows]

    def report(self, report_id: str) -> Report | None:
        row = self._sql.one(f"{_REPORT} WHERE r.id = CAST(:id AS uuid)", {"id": report_id})
        return _report(row) if row else None

    def decide_if_open(self, report_id: str, status: ReportStatus, admin_uid: str, note: str | None) -> bool:
        """The rule `shared.domain.reports.REPORT_DECIDED`: a report is decided once; False when it was decided
        before or does not exist."""
        return bool(
            self._sql.one(
                """UPDATE reports SET status = :status, decided_at = now(), decided_by = :uid, decision_note = :note
                   WHERE id = CAST(:id AS uuid) AND status = 'open' RETURNING id""",
                {"status": status.value, "uid": admin_uid, "note": note, "id": report_id},
            )
        )


def _report(row: dict[str, Any]) -> Report:
    return Report(**{**row, "category": ReportCategory(row["category"]), "status": ReportStatus(row["status"])})
