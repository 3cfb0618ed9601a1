"""Reports in memory: the promises of shared/adapters/postgres/reports.py (a report is decided once)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any

from shared.domain.chat import Participant
from shared.domain.parties import SessionParties
from shared.domain.reports import REPORT_WINDOW, RecentReports, Report, ReportCategory, ReportStatus
from shared.domain.safety import Category, Flag
from tests.support.fake_parties import session_parties

if TYPE_CHECKING:
    from tests.support.fakes import FakeDatabase

Row = dict[str, Any]


class FakeReportsRepository:
    def __init__(self, db: FakeDatabase) -> None:
        self._db = db

    def _rows(self) -> dict[Any, Row]:
        return self._db.table("reports")

    def parties(self, session_id: str) -> SessionParties | None:
        return session_parties(self._db, session_id)

    def lock_reporter(self, reporter: Participant) -> None:
        """One test runs one change at a time."""

    def recent_by(self, reporter: Participant) -> RecentReports:
        column = {"client": "client_id", "mitra": "mitra_id"}[reporter.role.value]
        times = [
            r["created_at"]
            for r in self._rows().values()
            if r["reporter_role"] == reporter.role.value
            and r[column] == reporter.account_id
            and r["created_at"] > self._db.now - REPORT_WINDOW
        ]
        return RecentReports(len(times), min(times, default=None), self._db.now)

    def filed(self, parties: SessionParties, *, reporter_role: str, category: ReportCategory) -> Report | None:
        key = (parties.session_id, reporter_role, category.value, parties.client_id, parties.mitra_id)
        for r in self._rows().values():
            if (r["session_id"], r["reporter_role"], r["category"], r["client_id"], r["mitra_id"]) == key:
                return self._report(r)
        return None

    def add_unless_filed(
        self, parties: SessionParties, *, reporter_role: str, category: ReportCategory, text: str
    ) -> str | None:
        if self.filed(parties, reporter_role=reporter_role, category=category) is not None:
            return None
        report_id = str(uuid.uuid4())
        self._rows()[report_id] = {
            "id": report_id,
            "session_id": parties.session_id,
            "reporter_role": reporter_role,
            "client_id": parties.client_id,
            "mitra_id": parties.mitra_id,
            "category": category.value,
            "text": text,
            "status": "open",
            "created_at": self._db.now,
            "decided_at": None,
            "decided_by": None,
            "decision_note": None,
        }
        return report_id

    def flag(self, report_id: str, parties: SessionParties, category: Category) -> Flag:
        alert_id = str(uuid.uuid4())
        self._db.table("safety_flags")[alert_id] = {
            "id": alert_id,
            "message_id": None,
            "report_id": report_id,
            "session_id": parties.session_id,
            "client_id": parties.client_id,
            "category": category,
            "phrase": None,
            "hotline_message_id": None,
            "created_at": self._db.now,
            "seq": self._db.next_id(),
            "acknowledged_at": None,
            "acknowledged_by": None,
            "note": None,
        }
        return Flag(alert_id, self._db.now)

    def reports(
        self,
        *,
        status: ReportStatus | None,
        category: ReportCategory | None,
        after: tuple[datetime, str] | None,
        limit: int,
    ) -> list[Report]:
        newest_first = sorted(self._rows().values(), key=lambda r: (r["created_at"], r["id"]), reverse=True)
        return [
            self._report(r)
            for r in newest_first
            if (status is None or r["status"] == status.value)
            and (category is None or r["category"] == category.value)
            and (after is None or (r["created_at"], r["id"]) < after)
        ][:limit]

    def report(self, report_id: str) -> Report | None:
        row = self._rows().get(report_id)
        return self._report(row) if row else None

    def decide_if_open(self, report_id: str, status: ReportStatus, admin_uid: str, note: str | None) -> bool:
        row = self._rows().get(report_id)
        if row is None or row["status"] != "open":
            return False
        row.update(status=status.value, decided_at=self._db.now, decided_by=admin_uid, decision_note=note)
        return True

    def _report(self, row: Row) -> Report:
        return Report(
            report_id=row["id"],
            session_id=row["session_id"],
            reporter_role=row["reporter_role"],
            client_id=row["client_id"],
            alias_number=self._db.table("clients")[row["client_id"]]["alias_number"],
            mitra_id=row["mitra_id"],
            mitra_name=self._db.table("mitras")[row["mitra_id"]]["display_name"],
            category=ReportCategory(row["category"]),
            text=row["text"],
            status=ReportStatus(row["status"]),
            created_at=row["created_at"],
            decided_at=row["decided_at"],
            decided_by=row["decided_by"],
            decision_note=row["decision_note"],
        )
