"""The control center's sessions: finding them, reading one's conversation (with a reason, audited), rerouting
a running one to another mitra, and ending one (abuse, a crisis hand-off, a mitra who vanished)."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta
from typing import Any, Protocol

from shared.domain import admin, days
from shared.domain.admin import (
    CreditBack,
    EndedByAdmin,
    MitraTakingOver,
    Moved,
    PaidTime,
    Refused,
    SessionOnFile,
    SessionToReroute,
)
from shared.domain.config import AppConfig
from shared.domain.idempotency import KeyedCall
from shared.domain.roles import Role
from shared.domain.session import ClosureReason, SessionStatus
from shared.errors import Conflict, InvalidRequest, NotFound
from shared.services import idempotency, lifecycle, projector
from shared.services.admin_paging import keyset, page
from shared.services.chat import client_name
from shared.services.ports import Ports


class AdminSessionsRepository(Protocol):
    """What the control center's sessions need from storage (shared/adapters/postgres/admin_sessions.py)."""

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
    ) -> list[SessionOnFile]: ...

    def session(self, session_id: str) -> SessionOnFile | None: ...

    def lock_session(self, session_id: str) -> SessionToReroute | None: ...

    def lock_mitra(self, mitra_id: str) -> MitraTakingOver | None: ...

    def is_available(self, mitra_id: str, config: AppConfig) -> bool: ...

    def move(self, session_id: str, *, from_mitra: str, to_mitra: str, admin_uid: str) -> Moved: ...

    def paid_time(self, session_id: str) -> PaidTime: ...

    def record_credit_back(self, session_id: str, client_id: str, credit: CreditBack, *, admin_uid: str) -> bool: ...


def list_sessions(
    ports: Ports,
    *,
    status: str | None,
    mitra_id: str | None,
    client_id: str | None,
    first: date | None,
    last: date | None,
    cursor: str | None,
    limit: int,
) -> tuple[list[SessionOnFile], str | None]:
    """Newest first; `first`/`last` are Jakarta days (both included) on which the sessions started."""
    if first and last and last < first:
        raise InvalidRequest("the range ends before it starts", fields=[{"field": "to_date", "problem": "too early"}])
    with ports.uow(one_statement=True) as uow:
        sessions = uow.admin_sessions.sessions(
            status=status,
            mitra_id=mitra_id,
            client_id=client_id,
            starts=days.starts(first) if first else None,
            ends=days.starts(last + timedelta(days=1)) if last else None,
            after_session=keyset(cursor, datetime.fromisoformat, uuid.UUID),
            limit=limit + 1,
        )
    return page(sessions, limit, "started_at", "session_id")


def transcript(
    ports: Ports, admin_uid: str, session_id: str, reason: str
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A session's whole conversation for an admin: the only way an admin reads a session's words. The read, the
    admin and the reason they gave are in the audit log (`session.transcript_read`), committed before the words are
    handed out. The client is shown as the anonymity mode shows them to a mitra."""
    with ports.uow() as uow:
        session = uow.chat.session_view(session_id)
        if session is None:
            raise NotFound("no such session")
        session["client_name"] = client_name(session, Role.ADMIN, uow.settings.load().anonymity_mode)
        messages = uow.chat.messages(session_id)
        uow.audit.record(
            actor_uid=admin_uid,
            actor_role="admin",
            action="session.transcript_read",
            target=session_id,
            old=None,
            new={"reason": reason, "messages": len(messages)},
        )
        uow.commit()
    return session, messages


def reroute(ports: Ports, admin_uid: str, session_id: str, mitra_id: str) -> SessionOnFile:
    """Same session, same history, another mitra (`shared.domain.admin.may_reroute`). The previous mitra's part ends
    (a `rerouted` closure row) and they lose the session's document and messages at once; the new mitra reads them
    all."""
    with ports.uow() as uow:
        config = uow.settings.load()
        session = uow.admin_sessions.lock_session(session_id)
        if session is None:
            raise NotFound("no such session")
        _refuse(admin.may_reroute(session, mitra_id))
        taking_over = uow.admin_sessions.lock_mitra(mitra_id)
        if taking_over is None:
            raise NotFound("no such mitra")
        if not uow.admin_sessions.is_available(mitra_id, config):
            raise _conflict(admin.MITRA_UNAVAILABLE)
        moved = uow.admin_sessions.move(session_id, from_mitra=session.mitra_id, to_mitra=mitra_id, admin_uid=admin_uid)
        uow.audit.record(
            actor_uid=admin_uid,
            actor_role="admin",
            action="session.reroute",
            target=session_id,
            old={"mitra_id": session.mitra_id},
            new={"mitra_id": mitra_id},
        )
        uow.outbox.add(*admin.rerouted_events(session, taking_over, moved))
        rerouted = uow.admin_sessions.session(session_id)
        committed = uow.commit()
    projector.deliver(ports, committed)
    assert rerouted is not None
    return rerouted


def end_session(
    ports: Ports,
    admin_uid: str,
    session_id: str,
    *,
    reason: str,
    goodbye: bool,
    credit_unused: bool,
    keyed: KeyedCall | None = None,
) -> EndedByAdmin:
    """An admin ends an active session (`shared.domain.admin.may_end`): with the goodbye window or at once
    (`lifecycle.end_by_admin`), or cuts a goodbye window short; with `credit_unused`, the unused share of what the
    client paid for an active session's time is credited back to them (`shared.domain.admin.credit_back`). Audited
    with the session's state before and after and the admin's reason. A repeat with the same Idempotency-Key is
    answered as the first time; without one, ending a session that has ended is 409 `session_not_active`."""
    with ports.uow() as uow:
        if (first := idempotency.first_answer(uow, keyed, EndedByAdmin)) is not None:
            return first
        session = uow.lifecycle.locked_session(session_id)
        if session is None:
            raise NotFound("no such session")
        _refuse(admin.may_end(session.state, goodbye=goodbye))
        was_active = session.state.status is SessionStatus.ACTIVE
        credit = None
        if credit_unused and was_active:
            unused_s = admin.unused_seconds(session.state, session.now)
            credit = admin.credit_back(uow.admin_sessions.paid_time(session_id), unused_s)
        status, goodbye_until = lifecycle.end_by_admin(uow, session, admin_uid, goodbye=goodbye)
        if credit is not None:
            recorded = uow.admin_sessions.record_credit_back(session_id, session.client_id, credit, admin_uid=admin_uid)
            assert recorded, "the change holds the session's row lock and saw it active: never credited before"
        answer = EndedByAdmin(
            session_id=session_id,
            status=status,
            close_reason=ClosureReason.ADMIN if was_active else uow.lifecycle.ending_of(session_id) or "",
            goodbye_until=goodbye_until,
            credited_s=credit.unused_s if credit else 0,
            credited_amount=credit.amount if credit else 0,
        )
        uow.audit.record(
            actor_uid=admin_uid,
            actor_role="admin",
            action="session.end",
            target=session_id,
            old={"status": session.state.status, "ends_at": session.state.ends_at},
            new={
                "status": status,
                "reason": reason,
                "goodbye": goodbye,
                "credit_unused": credit_unused,
                "credited_s": answer.credited_s,
                "credited_amount": answer.credited_amount,
            },
        )
        idempotency.remember(uow, keyed, answer)
        committed = uow.commit()
    projector.deliver(ports, committed)
    return answer


def _refuse(refused: Refused | None) -> None:
    if refused is not None:
        raise _conflict(refused)


def _conflict(refused: Refused) -> Conflict:
    return Conflict(refused.message, code=refused.code)
