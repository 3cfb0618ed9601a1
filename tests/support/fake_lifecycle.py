"""The session lifecycle's repository in memory: the promises of shared/adapters/postgres/lifecycle.py, each move
guarded by the state it was decided on, as its statements are (shared.domain.session's rules)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from shared.domain.chat import Sent, Side
from shared.domain.pricing import PricingTier
from shared.domain.session import (
    Closing,
    ClosureReason,
    ExtensionAnswer,
    ExtensionStatus,
    GoodbyeNote,
    LockedExtension,
    LockedSession,
    PendingExtension,
    RequestedExtension,
    Session,
    SessionStatus,
    extension_can_become,
)

if TYPE_CHECKING:
    from tests.support.fakes import FakeDatabase

Row = dict[str, Any]


def add_tier(db: FakeDatabase, tier_id: str, *, duration_s: int, price: int, active: bool = True) -> Row:
    """A pricing tier, as the control center leaves it."""
    row: Row = {"id": tier_id, "duration_s": duration_s, "price": price, "active": active}
    db.table("pricing_tiers")[tier_id] = row
    return row


class FakeLifecycleRepository:
    def __init__(self, db: FakeDatabase) -> None:
        self._db = db

    def _sessions(self) -> dict[Any, Row]:
        return self._db.table("sessions")

    def _extensions(self) -> dict[Any, Row]:
        return self._db.table("session_extensions")

    def locked_session(self, session_id: str) -> LockedSession | None:
        row = self._sessions().get(session_id)
        if row is None:
            return None
        return LockedSession(
            session_id=session_id,
            state=_session(row),
            started_at=row["started_at"],
            warned_version=row.get("warned_version"),
            client_id=row["client_id"],
            mitra_id=row["mitra_id"],
            client_uid=self._db.table("clients")[row["client_id"]]["firebase_uid"],
            mitra_uid=self._db.table("mitras")[row["mitra_id"]]["firebase_uid"],
            now=self._db.now,
        )

    def mark_warned(self, session_id: str, version: int) -> None:
        self._sessions()[session_id]["warned_version"] = version

    def start_closing_if_active(
        self, session_id: str, *, goodbye_until: datetime, reason: ClosureReason, closed_by: str
    ) -> Closing | None:
        row = self._sessions().get(session_id)
        if row is None or row["status"] != SessionStatus.ACTIVE:
            return None
        row.update(status=SessionStatus.CLOSING, closing_at=self._db.now, goodbye_until=goodbye_until)
        closures = self._db.table("session_closures")
        assert not any(
            c["session_id"] == session_id and c["reason"] != ClosureReason.REROUTED for c in closures.values()
        )
        closures[self._db.next_id()] = {
            "session_id": session_id,
            "mitra_id": row["mitra_id"],
            "reason": reason,
            "closed_by": closed_by,
            "at": self._db.now,
        }
        voided = None
        for extension in self._extensions().values():
            if extension["session_id"] == session_id and ExtensionStatus(extension["status"]).is_pending:
                assert extension_can_become(extension["status"], ExtensionStatus.VOID)
                extension.update(status=ExtensionStatus.VOID, responded_at=self._db.now)
                voided = extension["id"]
        return Closing(self._db.now, goodbye_until, voided)

    def close_if_closing(self, session_id: str) -> datetime | None:
        row = self._sessions().get(session_id)
        if row is None or row["status"] != SessionStatus.CLOSING:
            return None
        row.update(status=SessionStatus.CLOSED, closed_at=self._db.now)
        return self._db.now

    def ending_of(self, session_id: str) -> ClosureReason | None:
        return next(
            (
                ClosureReason(c["reason"])
                for c in self._db.table("session_closures").values()
                if c["session_id"] == session_id and c["reason"] != ClosureReason.REROUTED
            ),
            None,
        )

    def goodbye_of(self, session_id: str, side: Side) -> GoodbyeNote | None:
        for m in self._db.table("chat_messages").values():
            if m["session_id"] == session_id and m["kind"] == "goodbye" and m["sender_role"] == side:
                return GoodbyeNote(Sent(m["id"], m["seq"], m["created_at"]), m["text"])
        return None

    def pending_extension(self, session_id: str) -> PendingExtension | None:
        for e in self._extensions().values():
            if e["session_id"] == session_id and ExtensionStatus(e["status"]).is_pending:
                return PendingExtension(e["id"], e["tier_id"], e["respond_by"])
        return None

    def record_answer(self, extension_id: str, answer: ExtensionAnswer) -> None:
        self._extensions()[extension_id]["answer"] = answer

    def active_tier(self, tier_id: str) -> PricingTier | None:
        row = self._db.table("pricing_tiers").get(tier_id)
        if row is None or not row["active"]:
            return None
        return PricingTier(row["id"], row["duration_s"], row["price"])

    def request_extension_if_none_pending(
        self, session_id: str, tier: PricingTier, *, respond_within_s: int
    ) -> RequestedExtension | None:
        if any(
            e["session_id"] == session_id and ExtensionStatus(e["status"]).is_pending
            for e in self._extensions().values()
        ):
            return None
        extension_id = str(uuid.uuid4())
        respond_by = self._db.now + timedelta(seconds=respond_within_s)
        self._extensions()[extension_id] = {
            "id": extension_id,
            "session_id": session_id,
            "tier_id": tier.id,
            "duration_s": tier.duration_s,
            "price": tier.price,
            "status": ExtensionStatus.REQUESTED,
            "respond_by": respond_by,
            "responded_at": None,
            "applied_at": None,
        }
        return RequestedExtension(extension_id, respond_by)

    def locked_extension(self, extension_id: str) -> LockedExtension | None:
        extension = self._extensions().get(extension_id)
        if extension is None:
            return None
        session = self._sessions()[extension["session_id"]]
        return LockedExtension(
            extension_id=extension_id,
            status=ExtensionStatus(extension["status"]),
            tier_id=extension["tier_id"],
            duration_s=extension["duration_s"],
            price=extension["price"],
            respond_by=extension["respond_by"],
            session_id=extension["session_id"],
            session=_session(session),
            started_at=session["started_at"],
            client_id=session["client_id"],
            mitra_id=session["mitra_id"],
            now=self._db.now,
            answer=extension.get("answer"),
        )

    def move_extension(self, extension_id: str, *, from_status: ExtensionStatus, to: ExtensionStatus) -> bool:
        extension = self._extensions().get(extension_id)
        if extension is None or extension["status"] != from_status:
            return False
        applied = to is ExtensionStatus.APPLIED
        extension.update(
            status=to,
            applied_at=self._db.now if applied else None,
            responded_at=(extension["responded_at"] or self._db.now) if applied else self._db.now,
        )
        return True

    def extend_if_active(self, session_id: str, *, extended: Session, from_version: int) -> bool:
        row = self._sessions().get(session_id)
        if row is None or row["status"] != SessionStatus.ACTIVE or row["version"] != from_version:
            return False
        row.update(ends_at=extended.ends_at, version=extended.version)
        return True


def _session(row: Row) -> Session:
    return Session(
        status=SessionStatus(row["status"]),
        ends_at=row["ends_at"],
        version=row["version"],
        goodbye_until=row.get("goodbye_until"),
    )
