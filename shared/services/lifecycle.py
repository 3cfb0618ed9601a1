"""The session's life after pairing: the backend-authoritative timer, the warning, closing with goodbyes, early
end, and extensions. Every timer is a Cloud Task named after the session's version; a handler re-reads the
session under a row lock and does nothing when the world has moved on."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.adapters.postgres.database import Row, Tx
from shared.domain import session as rules
from shared.domain.config import AppConfig
from shared.domain.roles import Role
from shared.domain.session import ClosureReason, ExtensionStatus, Session, SessionStatus
from shared.errors import Conflict, Forbidden, InvalidRequest, NotFound, Unavailable
from shared.services import chat, projections, settings_store
from shared.services.outbox import ts
from shared.services.ports import Ports, TaskScheduler
from shared.services.projector import project_after_commit

TIMER_QUEUE = "session-timers"
EXTENSION_QUEUE = "extension-timeouts"
# Tasks are scheduled inside the transaction they belong to; one due at once could fire before the commit and find
# nothing to do. A second's margin lets the commit land first.
_COMMIT_MARGIN = timedelta(seconds=1)


def _after_commit(at: datetime) -> datetime:
    return max(at, datetime.now(UTC) + _COMMIT_MARGIN)


@dataclass(frozen=True)
class Extension:
    extension_id: str
    status: str
    respond_by: datetime


# -- timers ----------------------------------------------------------------------------------------------------------


def schedule_timers(
    tasks: TaskScheduler, *, session_id: str, version: int, started_at: datetime, ends_at: datetime, config: AppConfig
) -> None:
    """Called inside the transaction that starts or extends a session: if the commit fails, the tasks find a
    version that never existed and stop; if it succeeds, the timer is guaranteed."""
    payload = {"session_id": session_id, "version": version}
    warn_at = rules.warning_at(ends_at, timedelta(seconds=config.session_warning_s), started_at)
    tasks.schedule(queue=TIMER_QUEUE, task_id=rules.warning_task_id(session_id, version),
                   handler="task_session_warning", payload=payload, at=_after_commit(warn_at))  # fmt: skip
    tasks.schedule(queue=TIMER_QUEUE, task_id=rules.expire_task_id(session_id, version),
                   handler="task_session_expire", payload=payload, at=_after_commit(ends_at))  # fmt: skip


def warn(ports: Ports, session_id: str, version: int) -> str:
    with ports.db.transaction() as tx:
        session = _locked(tx, session_id)
        if session is None or session["status"] != SessionStatus.ACTIVE or session["version"] != version:
            return "stale"
        if session["warned_version"] == version:
            return "already_warned"
        tx.execute(
            "UPDATE sessions SET warned_version = :v WHERE id = CAST(:sid AS uuid)", {"v": version, "sid": session_id}
        )
        left = rules.time_left_text(session["ends_at"] - session["now"])
        chat.append_message(tx, session_id=session_id, kind="system", sender_role="system", sender_id=None,
                            sender_uid=None, text=left)  # fmt: skip
        projections.session(tx, session_id, {"warning": {"version": version, "at": ts(session["now"])}})
        projections.notify(tx, dedup_key=f"warning:{session_id}:{version}", recipients=[session["client_uid"]],
                           data={"type": "session_warning", "session_id": session_id},
                           title="Waktu sesi hampir habis", body="Mau perpanjang sesi?")  # fmt: skip
    project_after_commit(ports, tx.outbox_ids)
    return "warned"


def expire(ports: Ports, session_id: str, version: int) -> str:
    with ports.db.transaction() as tx:
        session = _locked(tx, session_id)
        if session is None or session["status"] != SessionStatus.ACTIVE or session["version"] != version:
            return "stale"
        config = settings_store.load_config(tx)
        try:
            _state(session).expire(session["now"], timedelta(seconds=config.goodbye_window_s))
        except rules.IllegalTransition as early:
            raise Unavailable(str(early)) from early  # fired early: Cloud Tasks retries shortly
        _begin_closing(tx, ports, session, config, ClosureReason.EXPIRED, closed_by="system")
    project_after_commit(ports, tx.outbox_ids)
    return "closing"


def close(ports: Ports, session_id: str) -> str:
    """The goodbye window is over."""
    with ports.db.transaction() as tx:
        session = _locked(tx, session_id)
        if session is None or session["status"] != SessionStatus.CLOSING:
            return "stale"
        try:
            _state(session).close(session["now"])
        except rules.IllegalTransition as early:
            raise Unavailable(str(early)) from early
        tx.execute("UPDATE sessions SET status = 'closed', closed_at = now() WHERE id = CAST(:sid AS uuid)",
                   {"sid": session_id})  # fmt: skip
        projections.session(tx, session_id, {"status": SessionStatus.CLOSED, "closed_at": ts(session["now"])})
    project_after_commit(ports, tx.outbox_ids)
    return "closed"


# -- participants ----------------------------------------------------------------------------------------------------


def end_early(ports: Ports, *, role: Role, account_id: str, uid: str, session_id: str) -> str:
    with ports.db.transaction() as tx:
        session = _participant(tx, session_id, role, account_id)
        config = settings_store.load_config(tx)
        allowed = config.early_end_client if role is Role.CLIENT else config.early_end_mitra
        if not allowed:
            raise Forbidden("ending a session early is switched off for you", code="early_end_disabled")
        try:
            _state(session).end_early(session["now"], timedelta(seconds=config.goodbye_window_s))
        except rules.IllegalTransition as late:
            raise Conflict("this session has already ended", code="session_not_active") from late
        reason = ClosureReason.ENDED_BY_CLIENT if role is Role.CLIENT else ClosureReason.ENDED_BY_MITRA
        _begin_closing(tx, ports, session, config, reason, closed_by=uid)
    project_after_commit(ports, tx.outbox_ids)
    return SessionStatus.CLOSING


def goodbye(ports: Ports, *, role: Role, account_id: str, uid: str, session_id: str, text: str) -> dict[str, Any]:
    """One goodbye note per side, only inside the goodbye window."""
    with ports.db.transaction() as tx:
        session = _participant(tx, session_id, role, account_id)
        if not _state(session).accepts_goodbye(session["now"]):
            raise Conflict("the goodbye window is closed", code="goodbye_window_closed")
        already = tx.scalar(
            "SELECT EXISTS (SELECT 1 FROM chat_messages WHERE session_id = CAST(:sid AS uuid) AND kind = 'goodbye'"
            " AND sender_role = :role)",
            {"sid": session_id, "role": role},
        )
        if already:
            raise Conflict("you have already said goodbye", code="goodbye_already_sent")
        sent = chat.append_message(tx, session_id=session_id, kind="goodbye", sender_role=role, sender_id=account_id,
                                   sender_uid=uid, text=text)  # fmt: skip
    project_after_commit(ports, tx.outbox_ids)
    return sent


# -- extensions ------------------------------------------------------------------------------------------------------


def request_extension(ports: Ports, *, client_id: str, session_id: str, tier_id: str) -> Extension:
    with ports.db.transaction() as tx:
        session = _participant(tx, session_id, Role.CLIENT, client_id)
        if not _state(session).accepts_messages(session["now"]):
            raise Conflict("extensions are for an active session", code="session_not_active")
        tier = tx.one("SELECT duration_s, price FROM pricing_tiers WHERE id = :id AND active", {"id": tier_id})
        if tier is None:
            raise InvalidRequest(
                "no such pricing tier", fields=[{"field": "tier_id", "problem": "unknown or inactive"}]
            )
        config = settings_store.load_config(tx)
        row = tx.one(
            """INSERT INTO session_extensions (session_id, tier_id, duration_s, price, respond_by)
               VALUES (CAST(:sid AS uuid), :tier, :duration, :price, now() + make_interval(secs => :timeout))
               ON CONFLICT (session_id) WHERE status IN ('requested', 'accepted') DO NOTHING
               RETURNING id::text, respond_by""",
            {"sid": session_id, "tier": tier_id, "duration": tier["duration_s"], "price": tier["price"],
             "timeout": config.extension_timeout_s},
        )  # fmt: skip
        if row is None:
            raise Conflict("an extension is already pending", code="extension_pending")
        extension = {"extension_id": row["id"], "status": ExtensionStatus.REQUESTED,
                     "minutes": tier["duration_s"] // 60, "duration_s": tier["duration_s"], "price": tier["price"],
                     "respond_by": ts(row["respond_by"])}  # fmt: skip
        projections.session(tx, session_id, {"extension": extension})
        projections.notify(tx, dedup_key=f"extension:{row['id']}", recipients=[session["mitra_uid"]],
                           data={"type": "extension_request", "session_id": session_id, "extension_id": row["id"]},
                           title="Permintaan perpanjangan", body=f"+{tier['duration_s'] // 60} menit")  # fmt: skip
        ports.tasks.schedule(queue=EXTENSION_QUEUE, task_id=rules.extension_timeout_task_id(row["id"]),
                             handler="task_extension_timeout", payload={"extension_id": row["id"]},
                             at=row["respond_by"])  # fmt: skip
    project_after_commit(ports, tx.outbox_ids)
    return Extension(row["id"], ExtensionStatus.REQUESTED, row["respond_by"])


def respond_extension(ports: Ports, *, mitra_id: str, extension_id: str, accept: bool) -> Extension:
    """Rejected, or accepted: then the client pays through billing (a free tier applies at once)."""
    with ports.db.transaction() as tx:
        extension = _locked_extension(tx, extension_id)
        if extension is None or extension["mitra_id"] != mitra_id:
            raise NotFound("no such extension request")
        if extension["status"] != ExtensionStatus.REQUESTED or extension["session_status"] != SessionStatus.ACTIVE:
            raise Conflict("this extension request is no longer open", code="extension_closed")
        if not accept:
            target = ExtensionStatus.REJECTED
        elif extension["price"] == 0:
            target = ExtensionStatus.APPLIED
        else:
            target = ExtensionStatus.ACCEPTED
        if target is ExtensionStatus.APPLIED:
            _apply(tx, ports, extension)
        else:
            _move_extension(tx, extension, target)
    project_after_commit(ports, tx.outbox_ids)
    return Extension(extension_id, target, extension["respond_by"])


def apply_paid_extension(tx: Tx, ports: Ports, extension_id: str) -> bool:
    """Billing's hook when an extension's payment lands: False when the extension can no longer be applied (the
    session ended meanwhile), so billing keeps the money aside for a refund."""
    extension = _locked_extension(tx, extension_id)
    if extension is None or extension["status"] != ExtensionStatus.ACCEPTED:
        return False
    if extension["session_status"] != SessionStatus.ACTIVE:
        _move_extension(tx, extension, ExtensionStatus.VOID)
        return False
    _apply(tx, ports, extension)
    return True


def extension_payable(tx: Tx, extension_id: str | None, client_id: str, tier_id: str) -> None:
    """What billing may charge for: an accepted extension of this client's active session, at its own tier."""
    extension = _locked_extension(tx, extension_id) if extension_id else None
    if extension is None or extension["client_id"] != client_id:
        raise Conflict("no such extension to pay for", code="extension_not_found")
    if extension["status"] != ExtensionStatus.ACCEPTED or extension["session_status"] != SessionStatus.ACTIVE:
        raise Conflict("this extension cannot be paid for now", code="extension_closed")
    if extension["tier_id"] != tier_id:
        raise InvalidRequest("pay for the tier the extension asked for",
                             fields=[{"field": "tier_id", "problem": f"must be {extension['tier_id']}"}])  # fmt: skip


def register_extension_purpose() -> None:
    """Billing delivers a paid extension through this module (see billing.register_purpose)."""
    from shared.domain.billing import Purpose
    from shared.services import billing

    billing.register_purpose(
        Purpose.EXTENSION,
        billing.PurposeHandler(
            check=lambda tx, client_id, request: extension_payable(
                tx, request.extension_id, client_id, request.tier_id
            ),
            on_paid=lambda tx, ports, paid: (
                bool(paid.extension_id) and apply_paid_extension(tx, ports, str(paid.extension_id))
            ),
        ),
    )


def expire_extension(ports: Ports, extension_id: str) -> str:
    with ports.db.transaction() as tx:
        extension = _locked_extension(tx, extension_id)
        if extension is None or extension["status"] != ExtensionStatus.REQUESTED:
            return "stale"
        if extension["now"] < extension["respond_by"] - rules.TIMER_TOLERANCE:
            raise Unavailable("the mitra may still answer")
        _move_extension(tx, extension, ExtensionStatus.EXPIRED)
    project_after_commit(ports, tx.outbox_ids)
    return ExtensionStatus.EXPIRED


# -- shared steps ----------------------------------------------------------------------------------------------------


def _begin_closing(
    tx: Tx, ports: Ports, session: Row, config: AppConfig, reason: ClosureReason, *, closed_by: str
) -> None:
    session_id = session["session_id"]
    closing = tx.one(
        """UPDATE sessions SET status = 'closing', closing_at = now(),
               goodbye_until = now() + make_interval(secs => :goodbye)
           WHERE id = CAST(:sid AS uuid) AND status = 'active' RETURNING closing_at, goodbye_until""",
        {"sid": session_id, "goodbye": config.goodbye_window_s},
    )
    assert closing is not None, "the caller holds the row lock and saw it active"
    tx.execute(
        """INSERT INTO session_closures (session_id, mitra_id, reason, closed_by)
           VALUES (CAST(:sid AS uuid), CAST(:mitra AS uuid), :reason, :by)""",
        {"sid": session_id, "mitra": session["mitra_id"], "reason": reason, "by": closed_by},
    )
    pending = tx.all(
        """UPDATE session_extensions SET status = 'void', responded_at = now()
           WHERE session_id = CAST(:sid AS uuid) AND status IN ('requested', 'accepted') RETURNING id::text""",
        {"sid": session_id},
    )
    doc: dict[str, Any] = {"status": SessionStatus.CLOSING, "close_reason": reason,
                           "closing_at": ts(closing["closing_at"]),
                           "goodbye_until": ts(closing["goodbye_until"])}  # fmt: skip
    if pending:
        doc["extension"] = {"extension_id": pending[0]["id"], "status": ExtensionStatus.VOID}
    projections.session(tx, session_id, doc)
    projections.notify(tx, dedup_key=f"closing:{session_id}", recipients=[session["client_uid"], session["mitra_uid"]],
                       data={"type": "session_closing", "session_id": session_id, "reason": reason},
                       title="Sesi berakhir", body="Sampaikan salam perpisahanmu")  # fmt: skip
    ports.tasks.schedule(queue=TIMER_QUEUE, task_id=rules.close_task_id(session_id), handler="task_session_close",
                         payload={"session_id": session_id}, at=_after_commit(closing["goodbye_until"]))  # fmt: skip


def _apply(tx: Tx, ports: Ports, extension: Row) -> None:
    session = tx.one(
        """UPDATE sessions SET ends_at = ends_at + make_interval(secs => :seconds), version = version + 1
           WHERE id = CAST(:sid AS uuid) AND status = 'active' RETURNING started_at, ends_at, version""",
        {"seconds": extension["duration_s"], "sid": extension["session_id"]},
    )
    assert session is not None, "the caller checked the session is active under its row lock"
    tx.execute(
        """UPDATE session_extensions SET status = 'applied', applied_at = now(),
               responded_at = COALESCE(responded_at, now())
           WHERE id = CAST(:id AS uuid)""",
        {"id": extension["extension_id"]},
    )
    projections.session(tx, extension["session_id"], {
        "ends_at": ts(session["ends_at"]), "version": session["version"],
        "extension": {"extension_id": extension["extension_id"], "status": ExtensionStatus.APPLIED}})  # fmt: skip
    schedule_timers(ports.tasks, session_id=extension["session_id"], version=session["version"],
                    started_at=session["started_at"], ends_at=session["ends_at"],
                    config=settings_store.load_config(tx))  # fmt: skip


def _move_extension(tx: Tx, extension: Row, target: ExtensionStatus) -> None:
    if not rules.extension_can_become(ExtensionStatus(extension["status"]), target):
        raise Conflict("this extension request is no longer open", code="extension_closed")
    tx.execute(
        "UPDATE session_extensions SET status = :status, responded_at = now() WHERE id = CAST(:id AS uuid)",
        {"status": target, "id": extension["extension_id"]},
    )
    projections.session(tx, extension["session_id"],
                        {"extension": {"extension_id": extension["extension_id"], "status": target}})  # fmt: skip


_SESSION = """SELECT s.id::text AS session_id, s.status, s.ends_at, s.version, s.goodbye_until, s.warned_version,
                     s.started_at, s.client_id::text, s.mitra_id::text, c.firebase_uid AS client_uid,
                     m.firebase_uid AS mitra_uid, now() AS now
              FROM sessions s JOIN clients c ON c.id = s.client_id JOIN mitras m ON m.id = s.mitra_id
              WHERE s.id = CAST(:sid AS uuid)"""


def _locked(tx: Tx, session_id: str) -> Row | None:
    return tx.one(_SESSION + " FOR UPDATE OF s", {"sid": session_id})


def _participant(tx: Tx, session_id: str, role: Role, account_id: str) -> Row:
    session = _locked(tx, session_id)
    mine = session is not None and account_id == (session["client_id"] if role is Role.CLIENT else session["mitra_id"])
    if not mine:
        raise NotFound("no such session")
    assert session is not None
    return session


def _locked_extension(tx: Tx, extension_id: str) -> Row | None:
    return tx.one(
        """SELECT e.id::text AS extension_id, e.status, e.tier_id, e.duration_s, e.price, e.respond_by,
                  e.session_id::text,
                  s.status AS session_status, s.client_id::text, s.mitra_id::text, now() AS now
           FROM session_extensions e JOIN sessions s ON s.id = e.session_id
           WHERE e.id = CAST(:id AS uuid) FOR UPDATE OF e, s""",
        {"id": extension_id},
    )


def _state(session: Row) -> Session:
    return Session(status=SessionStatus(session["status"]), ends_at=session["ends_at"], version=session["version"],
                   goodbye_until=session["goodbye_until"])  # fmt: skip
