"""The control center's sessions in memory: the promises of shared/adapters/postgres/admin_sessions.py, with the
availability of the mitra taking over decided by the rule the offers use (shared.domain.pairing.is_available)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from shared.domain import pairing
from shared.domain.admin import CreditBack, MitraTakingOver, Moved, PaidTime, SessionOnFile, SessionToReroute
from shared.domain.config import AppConfig
from shared.domain.pairing import Availability
from shared.domain.session import Session, SessionStatus

if TYPE_CHECKING:
    from tests.support.fakes import FakeDatabase

Row = dict[str, Any]
OPEN_SESSION = ("active", "closing")


def open_sessions(db: FakeDatabase, mitra_id: str) -> int:
    return sum(1 for s in db.table("sessions").values() if s["mitra_id"] == mitra_id and s["status"] in OPEN_SESSION)


class FakeAdminSessionsRepository:
    def __init__(self, db: FakeDatabase) -> None:
        self._db = db

    def _on_file(self, session: Row) -> SessionOnFile:
        client = self._db.table("clients")[session["client_id"]]
        mitra = self._db.table("mitras")[session["mitra_id"]]
        return SessionOnFile(
            session_id=session["id"],
            request_id=session.get("request_id", ""),
            status=session["status"],
            kind=session["kind"],
            client_id=session["client_id"],
            client_name=client["display_name"],
            alias_number=client["alias_number"],
            mitra_id=session["mitra_id"],
            mitra_name=mitra["display_name"],
            started_at=session["started_at"],
            ends_at=session["ends_at"],
            closed_at=session.get("closed_at"),
            messages=session["next_seq"],
        )

    def sessions(
        self,
        *,
        status: str | None,
        mitra_id: str | None,
        client_id: str | None,
        starts: datetime | None,
        ends: datetime | None,
        after_session: tuple[datetime, str] | None,
        limit: int,
    ) -> list[SessionOnFile]:
        found = [
            s
            for s in self._db.table("sessions").values()
            if (status is None or s["status"] == status)
            and (mitra_id is None or s["mitra_id"] == mitra_id)
            and (client_id is None or s["client_id"] == client_id)
            and (starts is None or s["started_at"] >= starts)
            and (ends is None or s["started_at"] < ends)
            and (after_session is None or (s["started_at"], s["id"]) < after_session)
        ]
        found.sort(key=lambda s: (s["started_at"], s["id"]), reverse=True)
        return [self._on_file(s) for s in found[:limit]]

    def session(self, session_id: str) -> SessionOnFile | None:
        session = self._db.table("sessions").get(session_id)
        return self._on_file(session) if session else None

    def lock_session(self, session_id: str) -> SessionToReroute | None:
        session = self._db.table("sessions").get(session_id)
        if session is None:
            return None
        return SessionToReroute(
            session_id=session_id,
            state=Session(SessionStatus(session["status"]), session["ends_at"], session["version"]),
            mitra_id=session["mitra_id"],
            client_uid=self._db.table("clients")[session["client_id"]]["firebase_uid"],
            mitra_uid=self._db.table("mitras")[session["mitra_id"]]["firebase_uid"],
            now=self._db.now,
        )

    def lock_mitra(self, mitra_id: str) -> MitraTakingOver | None:
        mitra = self._db.table("mitras").get(mitra_id)
        return MitraTakingOver(mitra["firebase_uid"], mitra["display_name"]) if mitra else None

    def is_available(self, mitra_id: str, config: AppConfig) -> bool:
        mitra = self._db.table("mitras")[mitra_id]
        return pairing.is_available(
            Availability(
                active=mitra["active"],
                online=mitra["presence"] == "online",
                has_uid=mitra["firebase_uid"] is not None,
                heard_until=mitra.get("heard_until"),
                open_sessions=open_sessions(self._db, mitra_id),
            ),
            now=self._db.now,
            config=config,
        )

    def move(self, session_id: str, *, from_mitra: str, to_mitra: str, admin_uid: str) -> Moved:
        self._db.table("sessions")[session_id].update(mitra_id=to_mitra, mitra_typing_at=None)
        closure_id = self._db.next_id()
        self._db.table("session_closures")[closure_id] = {
            "session_id": session_id,
            "mitra_id": from_mitra,
            "reason": "rerouted",
            "closed_by": admin_uid,
            "at": self._db.now,
        }
        return Moved(closure_id, self._db.now)

    def paid_time(self, session_id: str) -> PaidTime:
        session = self._db.table("sessions").get(session_id)
        if session is None:
            return PaidTime(0, 0)
        request = self._db.table("pairing_requests").get(session.get("request_id"), {})
        applied = {
            e["id"]
            for e in self._db.table("session_extensions").values()
            if e["session_id"] == session_id and e["status"] == "applied"
        }
        amount = sum(
            t["amount"]
            for key, t in self._db.table("customer_transactions").items()
            if t.get("status") == "paid"
            and (
                (t.get("purpose") == "session" and key == request.get("transaction_id"))
                or (t.get("purpose") == "extension" and t.get("extension_id") in applied)
            )
        )
        duration_s = max(0, int((session["ends_at"] - session["started_at"]).total_seconds()))
        return PaidTime(amount, duration_s)

    def record_credit_back(self, session_id: str, client_id: str, credit: CreditBack, *, admin_uid: str) -> bool:
        credited = self._db.table("session_credit_backs")
        if session_id in credited:
            return False
        credited[session_id] = {
            "session_id": session_id,
            "client_id": client_id,
            "unused_s": credit.unused_s,
            "amount": credit.amount,
            "created_by": admin_uid,
            "created_at": self._db.now,
        }
        return True
