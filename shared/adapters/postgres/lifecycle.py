"""The session lifecycle's SQL: the session and extension rows a change locks, and each move saved by a statement
guarded by the state it was decided on (the rules are shared/domain/session.py's)."""

from __future__ import annotations

from datetime import datetime

from shared.adapters.postgres.database import Row
from shared.adapters.postgres.sql import Sql
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
)

_LOCKED_SESSION = """
SELECT s.id::text AS session_id, s.status, s.ends_at, s.version, s.goodbye_until, s.warned_version, s.started_at,
       s.client_id::text, s.mitra_id::text, c.firebase_uid AS client_uid, m.firebase_uid AS mitra_uid, now() AS now
FROM sessions s JOIN clients c ON c.id = s.client_id JOIN mitras m ON m.id = s.mitra_id
WHERE s.id = CAST(:sid AS uuid)
FOR UPDATE OF s
"""

_LOCKED_EXTENSION = """
SELECT e.id::text AS extension_id, e.status, e.tier_id, e.duration_s, e.price, e.respond_by, e.session_id::text,
       e.answer,
       s.status AS session_status, s.ends_at, s.version, s.goodbye_until, s.started_at,
       s.client_id::text, s.mitra_id::text, now() AS now
FROM session_extensions e JOIN sessions s ON s.id = e.session_id
WHERE e.id = CAST(:id AS uuid)
FOR UPDATE OF e, s
"""

# The rules Session.expire and Session.end_early, saved in one statement: only an active session starts closing; its
# closure is recorded (one ending per session: the unique index session_closures_one_ending), and its pending
# extension voided (ExtensionStatus.is_pending).
_START_CLOSING = """
WITH closing AS (
    UPDATE sessions SET status = 'closing', closing_at = now(), goodbye_until = :goodbye_until
    WHERE id = CAST(:sid AS uuid) AND status = 'active'
    RETURNING id, mitra_id, closing_at, goodbye_until
), closure AS (
    INSERT INTO session_closures (session_id, mitra_id, reason, closed_by)
    SELECT id, mitra_id, :reason, :closed_by FROM closing
), voided AS (
    UPDATE session_extensions SET status = 'void', responded_at = now()
    WHERE session_id = (SELECT id FROM closing) AND status IN ('requested', 'accepted')
    RETURNING id::text
)
SELECT closing_at, goodbye_until, (SELECT id FROM voided LIMIT 1) AS voided_extension_id FROM closing
"""


class LifecycleRepository:
    def __init__(self, sql: Sql) -> None:
        self._sql = sql

    def locked_session(self, session_id: str) -> LockedSession | None:
        """The session and its participants, its row locked until the change ends."""
        row = self._sql.one(_LOCKED_SESSION, {"sid": session_id})
        if row is None:
            return None
        return LockedSession(
            session_id=row["session_id"],
            state=_session(row, row["status"]),
            started_at=row["started_at"],
            warned_version=row["warned_version"],
            client_id=row["client_id"],
            mitra_id=row["mitra_id"],
            client_uid=row["client_uid"],
            mitra_uid=row["mitra_uid"],
            now=row["now"],
        )

    def mark_warned(self, session_id: str, version: int) -> None:
        """This version's warning is given (`LockedSession.needs_warning`); the change holds the session's lock."""
        self._sql.execute(
            "UPDATE sessions SET warned_version = :v WHERE id = CAST(:sid AS uuid)", {"v": version, "sid": session_id}
        )

    def start_closing_if_active(
        self, session_id: str, *, goodbye_until: datetime, reason: ClosureReason, closed_by: str
    ) -> Closing | None:
        """The rules `Session.expire` / `Session.end_early` (see _START_CLOSING): None when the session was no
        longer active."""
        row = self._sql.one(
            _START_CLOSING,
            {"sid": session_id, "goodbye_until": goodbye_until, "reason": reason, "closed_by": closed_by},
        )
        return Closing(**row) if row else None

    def close_if_closing(self, session_id: str) -> datetime | None:
        """The rule `Session.close`: a closing session closes, once. When it closed; None if it was not closing."""
        closed_at = self._sql.scalar(
            """UPDATE sessions SET status = 'closed', closed_at = now()
               WHERE id = CAST(:sid AS uuid) AND status = 'closing' RETURNING closed_at""",
            {"sid": session_id},
        )
        return closed_at if isinstance(closed_at, datetime) else None

    def ending_of(self, session_id: str) -> ClosureReason | None:
        """Why the session ended, once it has (a reroute is not an ending: session_closures_one_ending)."""
        reason = self._sql.scalar(
            """SELECT reason FROM session_closures
               WHERE session_id = CAST(:sid AS uuid) AND reason <> 'rerouted'""",
            {"sid": session_id},
        )
        return ClosureReason(reason) if reason is not None else None

    def goodbye_of(self, session_id: str, side: Side) -> GoodbyeNote | None:
        """This side's goodbye note, if stored (one per side, `Session.accepts_goodbye`)."""
        row = self._sql.one(
            """SELECT id::text AS message_id, seq, created_at, text FROM chat_messages
               WHERE session_id = CAST(:sid AS uuid) AND kind = 'goodbye' AND sender_role = :side""",
            {"sid": session_id, "side": side},
        )
        if row is None:
            return None
        return GoodbyeNote(Sent(row["message_id"], row["seq"], row["created_at"]), row["text"])

    def pending_extension(self, session_id: str) -> PendingExtension | None:
        """The session's pending extension request (session_extensions_one_pending: at most one)."""
        row = self._sql.one(
            """SELECT id::text AS extension_id, tier_id, respond_by FROM session_extensions
               WHERE session_id = CAST(:sid AS uuid) AND status IN ('requested', 'accepted')""",
            {"sid": session_id},
        )
        return PendingExtension(**row) if row else None

    def record_answer(self, extension_id: str, answer: ExtensionAnswer) -> None:
        """The mitra's answer, kept whatever the extension becomes (`shared.domain.session.repeats_answer`)."""
        self._sql.execute(
            "UPDATE session_extensions SET answer = :answer WHERE id = CAST(:id AS uuid)",
            {"id": extension_id, "answer": answer},
        )

    def active_tier(self, tier_id: str) -> PricingTier | None:
        row = self._sql.one(
            "SELECT id, duration_s, price FROM pricing_tiers WHERE id = :id AND active", {"id": tier_id}
        )
        return PricingTier(**row) if row else None

    def request_extension_if_none_pending(
        self, session_id: str, tier: PricingTier, *, respond_within_s: int
    ) -> RequestedExtension | None:
        """The rule `ExtensionStatus.is_pending` (one pending extension per session), kept by the unique index
        session_extensions_one_pending: None when one is pending already."""
        row = self._sql.one(
            """INSERT INTO session_extensions (session_id, tier_id, duration_s, price, respond_by)
               VALUES (CAST(:sid AS uuid), :tier, :duration, :price, now() + make_interval(secs => :within))
               ON CONFLICT (session_id) WHERE status IN ('requested', 'accepted') DO NOTHING
               RETURNING id::text AS extension_id, respond_by""",
            {
                "sid": session_id,
                "tier": tier.id,
                "duration": tier.duration_s,
                "price": tier.price,
                "within": respond_within_s,
            },
        )
        return RequestedExtension(**row) if row else None

    def locked_extension(self, extension_id: str) -> LockedExtension | None:
        """An extension request and its session, both rows locked until the change ends."""
        row = self._sql.one(_LOCKED_EXTENSION, {"id": extension_id})
        if row is None:
            return None
        return LockedExtension(
            extension_id=row["extension_id"],
            status=ExtensionStatus(row["status"]),
            tier_id=row["tier_id"],
            duration_s=row["duration_s"],
            price=row["price"],
            respond_by=row["respond_by"],
            session_id=row["session_id"],
            session=_session(row, row["session_status"]),
            started_at=row["started_at"],
            client_id=row["client_id"],
            mitra_id=row["mitra_id"],
            now=row["now"],
            answer=ExtensionAnswer(row["answer"]) if row["answer"] else None,
        )

    def move_extension(self, extension_id: str, *, from_status: ExtensionStatus, to: ExtensionStatus) -> bool:
        """The rule `extension_can_become`, saved only if the request is still as the move was decided on."""
        moved = self._sql.execute(
            """UPDATE session_extensions
               SET status = :to, applied_at = CASE WHEN :applied THEN now() END,
                   responded_at = CASE WHEN :applied THEN COALESCE(responded_at, now()) ELSE now() END
               WHERE id = CAST(:id AS uuid) AND status = :from""",
            {"id": extension_id, "from": from_status, "to": to, "applied": to is ExtensionStatus.APPLIED},
        )
        return moved > 0

    def extend_if_active(self, session_id: str, *, extended: Session, from_version: int) -> bool:
        """The rule `Session.extend`: the new end and version, saved only onto the active version it was decided on."""
        moved = self._sql.execute(
            """UPDATE sessions SET ends_at = :ends_at, version = :version
               WHERE id = CAST(:sid AS uuid) AND status = 'active' AND version = :from_version""",
            {"sid": session_id, "ends_at": extended.ends_at, "version": extended.version, "from_version": from_version},
        )
        return moved > 0


def _session(row: Row, status: str) -> Session:
    return Session(
        status=SessionStatus(status), ends_at=row["ends_at"], version=row["version"], goodbye_until=row["goodbye_until"]
    )
