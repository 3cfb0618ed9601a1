"""Crisis signals in memory: the promises of shared/adapters/postgres/safety.py (a message is flagged once, an alert
acknowledged once)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any

from shared.domain.safety import Alert, Category, Flag, FlaggedSession, SentMessage, Signal

if TYPE_CHECKING:
    from tests.support.fakes import FakeDatabase

Row = dict[str, Any]


class FakeSafetyRepository:
    def __init__(self, db: FakeDatabase) -> None:
        self._db = db

    def _flags(self) -> dict[Any, Row]:
        return self._db.table("safety_flags")

    def message(self, message_id: str, session_id: str) -> SentMessage | None:
        row = self._db.table("chat_messages").get(message_id)
        if row is None or row["session_id"] != session_id:
            return None
        return SentMessage(row["sender_role"], row["text"])

    def locked_session(self, session_id: str) -> FlaggedSession:
        session = self._db.table("sessions")[session_id]
        client = self._db.table("clients")[session["client_id"]]
        return FlaggedSession(session["client_id"], client["alias_number"])

    def flag_once(self, message_id: str, session_id: str, client_id: str, signal: Signal) -> Flag | None:
        if any(flag["message_id"] == message_id for flag in self._flags().values()):
            return None
        alert_id = str(uuid.uuid4())
        self._flags()[alert_id] = {
            "id": alert_id,
            "message_id": message_id,
            "session_id": session_id,
            "client_id": client_id,
            "category": signal.category,
            "phrase": signal.phrase,
            "hotline_message_id": None,
            "created_at": self._db.now,
            "seq": self._db.next_id(),
            "acknowledged_at": None,
            "acknowledged_by": None,
            "note": None,
        }
        return Flag(alert_id, self._db.now)

    def hotline_shown(self, session_id: str) -> bool:
        return any(
            flag["session_id"] == session_id and flag["hotline_message_id"] is not None
            for flag in self._flags().values()
        )

    def record_hotline(self, alert_id: str, card_message_id: str) -> None:
        self._flags()[alert_id]["hotline_message_id"] = card_message_id

    def admins_on_duty(self) -> list[str]:
        return [admin["firebase_uid"] for admin in self._db.table("admins").values() if admin["on_duty"]]

    def every_admin(self) -> list[str]:
        return [admin["firebase_uid"] for admin in self._db.table("admins").values()]

    def alerts(self, *, acknowledged: bool | None, after: tuple[datetime, str] | None, limit: int) -> list[Alert]:
        newest_first = sorted(self._flags().values(), key=lambda f: (f["created_at"], f["id"]), reverse=True)
        return [
            self._alert(flag)
            for flag in newest_first
            if (acknowledged is None or (flag["acknowledged_at"] is not None) == acknowledged)
            and (after is None or (flag["created_at"], flag["id"]) < after)
        ][:limit]

    def alert(self, alert_id: str) -> Alert | None:
        flag = self._flags().get(alert_id)
        return self._alert(flag) if flag else None

    def acknowledge_if_open(self, alert_id: str, admin_uid: str, note: str | None) -> datetime | None:
        flag = self._flags().get(alert_id)
        if flag is None or flag["acknowledged_at"] is not None:
            return None
        flag.update(acknowledged_at=self._db.now, acknowledged_by=admin_uid, note=note)
        return self._db.now

    def _alert(self, flag: Row) -> Alert:
        return Alert(
            alert_id=flag["id"],
            session_id=flag["session_id"],
            message_id=flag["message_id"],
            client_id=flag["client_id"],
            alias_number=self._db.table("clients")[flag["client_id"]]["alias_number"],
            category=Category(flag["category"]),
            created_at=flag["created_at"],
            acknowledged_at=flag["acknowledged_at"],
            acknowledged_by=flag["acknowledged_by"],
            note=flag["note"],
            report_id=flag.get("report_id"),
        )
