"""The session's life after pairing: the backend-authoritative timer, the warning, closing with goodbyes, early
end, and extensions.

Every timer is a task event (shared.domain.session.session_timers, close_timer, extension_timer) committed with the
change that sets it, and created by the projector after the commit; its handler locks the session again and does
nothing when the world has moved on (another version, another status). The rules of each move are the Session state
machine's (shared/domain/session.py); the repository saves each move guarded by the state it was decided on.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Protocol

from shared.domain import pairing as pairing_events
from shared.domain import session as rules
from shared.domain import texts
from shared.domain.chat import NewMessage, Participant, Sent, Side
from shared.domain.config import AppConfig
from shared.domain.idempotency import KeyedCall
from shared.domain.session import (
    Closing,
    ClosureReason,
    ExtensionAnswer,
    ExtensionStatus,
    GoodbyeNote,
    IllegalTransition,
    LockedExtension,
    LockedSession,
    PendingExtension,
    RequestedExtension,
    Session,
    SessionStatus,
)
from shared.errors import Conflict, Forbidden, InvalidRequest, NotFound, Unavailable
from shared.services import chat, idempotency, projector
from shared.services.ports import Ports
from shared.services.unit_of_work import UnitOfWork

if TYPE_CHECKING:
    from shared.domain.pricing import PricingTier  # a type only: the session's instances load none of billing


class LifecycleRepository(Protocol):
    """What the lifecycle needs from storage (shared/adapters/postgres/lifecycle.py)."""

    def locked_session(self, session_id: str) -> LockedSession | None: ...

    def mark_warned(self, session_id: str, version: int) -> None: ...

    def start_closing_if_active(
        self, session_id: str, *, goodbye_until: datetime, reason: ClosureReason, closed_by: str
    ) -> Closing | None: ...

    def close_if_closing(self, session_id: str) -> datetime | None: ...

    def ending_of(self, session_id: str) -> ClosureReason | None: ...

    def goodbye_of(self, session_id: str, side: Side) -> GoodbyeNote | None: ...

    def pending_extension(self, session_id: str) -> PendingExtension | None: ...

    def record_answer(self, extension_id: str, answer: ExtensionAnswer) -> None: ...

    def active_tier(self, tier_id: str) -> PricingTier | None: ...

    def request_extension_if_none_pending(
        self, session_id: str, tier: PricingTier, *, respond_within_s: int
    ) -> RequestedExtension | None: ...

    def locked_extension(self, extension_id: str) -> LockedExtension | None: ...

    def move_extension(self, extension_id: str, *, from_status: ExtensionStatus, to: ExtensionStatus) -> bool: ...

    def extend_if_active(self, session_id: str, *, extended: Session, from_version: int) -> bool: ...


@dataclass(frozen=True)
class Extension:
    extension_id: str
    status: str
    respond_by: datetime


@dataclass(frozen=True)
class Ended:
    session_id: str
    status: str


# -- timers ------------------------------------------------------------------------------------------------------------


def warn(ports: Ports, session_id: str, version: int) -> str:
    """The warning task: a system message saying how long is left, and a push asking the client to extend."""
    with ports.uow() as uow:
        session = uow.lifecycle.locked_session(session_id)
        if session is None or not session.state.timer_is_current(version):
            return "stale"
        if not session.needs_warning(version):
            return "already_warned"
        uow.lifecycle.mark_warned(session_id, version)
        text_key, params = rules.time_left(session.state.ends_at - session.now)
        chat.post(uow, _system_message(session_id, text_key, params), sender_id=None)
        uow.outbox.add(*rules.warning_events(session))
        committed = uow.commit()
    projector.deliver(ports, committed)
    return "warned"


def expire(ports: Ports, session_id: str, version: int) -> str:
    """The expiry task: the session's time is up, the goodbye window opens."""
    with ports.uow() as uow:
        session = uow.lifecycle.locked_session(session_id)
        if session is None or not session.state.timer_is_current(version):
            return "stale"
        try:
            ended = session.state.expire(session.now, _goodbye_window(uow.settings.load()))
        except IllegalTransition as early:
            raise Unavailable(str(early)) from early  # fired early: Cloud Tasks retries shortly
        _begin_closing(uow, session, ended, ClosureReason.EXPIRED, closed_by="system")
        committed = uow.commit()
    projector.deliver(ports, committed)
    return "closing"


def close(ports: Ports, session_id: str) -> str:
    """The close task: the goodbye window is over."""
    with ports.uow() as uow:
        session = uow.lifecycle.locked_session(session_id)
        if session is None or session.state.status is not SessionStatus.CLOSING:
            return "stale"
        try:
            session.state.close(session.now)
        except IllegalTransition as early:
            raise Unavailable(str(early)) from early
        closed_at = uow.lifecycle.close_if_closing(session_id)
        assert closed_at is not None, "the change holds the session's row lock and saw it closing"
        uow.outbox.add(rules.closed_document(session_id, closed_at))
        slot_freed(uow, session)
        committed = uow.commit()
    projector.deliver(ports, committed)
    return "closed"


def slot_freed(uow: UnitOfWork, session: LockedSession) -> None:
    """A closed session frees a slot of its mitra, inside the closing change: the event that offers them the
    searching requests they can take (shared.services.pairing.offer_freed_slot). Every path that closes a session
    calls it."""
    uow.outbox.add(pairing_events.slot_freed(session.mitra_id))


# -- participants ------------------------------------------------------------------------------------------------------


def end_early(ports: Ports, participant: Participant, *, session_id: str, keyed: KeyedCall | None = None) -> Ended:
    """A participant ends the session before its time, where the control center allows it for their role. Asked
    again (the reply was lost), the session this side ended answers `closing` again (`ended_early_by`)."""
    ended = Ended(session_id, SessionStatus.CLOSING)
    with ports.uow() as uow:
        if (first := idempotency.first_answer(uow, keyed, Ended)) is not None:
            return first
        session = _locked_for(uow, participant, session_id)
        if session.state.status is not SessionStatus.ACTIVE and rules.ended_early_by(
            uow.lifecycle.ending_of(session_id), participant.side
        ):
            return ended
        config = uow.settings.load()
        if not rules.may_end_early(participant.side, config):
            raise Forbidden("ending a session early is switched off for you", code="early_end_disabled")
        try:
            closing = session.state.end_early(session.now, _goodbye_window(config))
        except IllegalTransition as late:
            raise Conflict("this session has already ended", code="session_not_active") from late
        _begin_closing(uow, session, closing, rules.early_end_reason(participant.side), closed_by=participant.uid)
        idempotency.remember(uow, keyed, ended)
        committed = uow.commit()
    projector.deliver(ports, committed)
    return ended


def goodbye(
    ports: Ports, participant: Participant, *, session_id: str, text: str, keyed: KeyedCall | None = None
) -> Sent:
    """One goodbye note per side, only inside the goodbye window. The same note sent again (the reply was lost) is
    answered with the note stored, even after the window; another note is `goodbye_already_sent`."""
    with ports.uow() as uow:
        if (first := idempotency.first_answer(uow, keyed, Sent)) is not None:
            return first
        session = _locked_for(uow, participant, session_id)
        said = uow.lifecycle.goodbye_of(session_id, participant.side)
        if said is not None:
            if said.text != text:
                raise Conflict("you have already said goodbye", code="goodbye_already_sent")
            return said.sent
        if not session.state.accepts_goodbye(session.now):
            raise Conflict("the goodbye window is closed", code="goodbye_window_closed")
        note = NewMessage(
            message_id=str(uuid.uuid4()),
            session_id=session_id,
            kind="goodbye",
            sender_role=participant.side,
            sender_uid=participant.uid,
            text=text,
        )
        sent = chat.post(uow, note, sender_id=participant.account_id)
        idempotency.remember(uow, keyed, sent)
        committed = uow.commit()
    projector.deliver(ports, committed)
    return sent


# -- extensions --------------------------------------------------------------------------------------------------------


def request_extension(
    ports: Ports, client: Participant, *, session_id: str, tier_id: str, keyed: KeyedCall | None = None
) -> Extension:
    """The client asks the mitra for more time: one pending request per session, expiring unanswered. Asked again
    for the same tier while it is pending (the reply was lost), the pending one is the answer
    (`repeats_extension_request`)."""
    with ports.uow() as uow:
        if (first := idempotency.first_answer(uow, keyed, Extension)) is not None:
            return first
        session = _locked_for(uow, client, session_id)
        pending = uow.lifecycle.pending_extension(session_id)
        if pending is not None and rules.repeats_extension_request(pending, tier_id):
            return Extension(pending.extension_id, ExtensionStatus.REQUESTED, pending.respond_by)
        if not session.state.accepts_messages(session.now):
            raise Conflict("extensions are for an active session", code="session_not_active")
        tier = uow.lifecycle.active_tier(tier_id)
        if tier is None:
            raise InvalidRequest(
                "no such pricing tier", fields=[{"field": "tier_id", "problem": "unknown or inactive"}]
            )
        within = uow.settings.load().extension_timeout_s
        requested = uow.lifecycle.request_extension_if_none_pending(session_id, tier, respond_within_s=within)
        if requested is None:
            raise Conflict("an extension is already pending", code="extension_pending")
        uow.outbox.add(*rules.extension_requested_events(session, requested, tier))
        extension = Extension(requested.extension_id, ExtensionStatus.REQUESTED, requested.respond_by)
        idempotency.remember(uow, keyed, extension)
        committed = uow.commit()
    projector.deliver(ports, committed)
    return extension


def respond_extension(
    ports: Ports, *, mitra_id: str, extension_id: str, accept: bool, keyed: KeyedCall | None = None
) -> Extension:
    """Rejected, or accepted: then the client pays through billing (a free tier applies at once). The same answer
    given again (the reply was lost) is answered as the first time (`repeats_answer`), whatever became of the
    extension since."""
    with ports.uow() as uow:
        if (first := idempotency.first_answer(uow, keyed, Extension)) is not None:
            return first
        extension = uow.lifecycle.locked_extension(extension_id)
        if extension is None or extension.mitra_id != mitra_id:
            raise NotFound("no such extension request")
        target = rules.extension_answer(accept=accept, price=extension.price)
        answered = Extension(extension_id, target, extension.respond_by)
        if rules.repeats_answer(extension.answer, accept):
            return answered
        if not extension.answerable:
            raise Conflict("this extension request is no longer open", code="extension_closed")
        uow.lifecycle.record_answer(extension_id, ExtensionAnswer.of(accept))
        if target is ExtensionStatus.APPLIED:
            _apply(uow, extension)
        else:
            _move_extension(uow, extension, target)
        idempotency.remember(uow, keyed, answered)
        committed = uow.commit()
    projector.deliver(ports, committed)
    return answered


def expire_extension(ports: Ports, extension_id: str) -> str:
    """The extension's timeout task: a request the mitra has not answered expires."""
    with ports.uow() as uow:
        extension = uow.lifecycle.locked_extension(extension_id)
        if extension is None or extension.status is not ExtensionStatus.REQUESTED:
            return "stale"
        if not rules.extension_timed_out(extension.respond_by, extension.now):
            raise Unavailable("the mitra may still answer")
        _move_extension(uow, extension, ExtensionStatus.EXPIRED)
        committed = uow.commit()
    projector.deliver(ports, committed)
    return ExtensionStatus.EXPIRED


# -- what billing asks of an extension (shared/services/billing/purposes.py) ------------------------------------------


def extension_payable(uow: UnitOfWork, extension_id: str | None, client_id: str, tier_id: str) -> None:
    """What billing may charge for: an accepted extension of this client's active session, at its own tier. Locks
    the extension and its session until billing's change ends."""
    extension = uow.lifecycle.locked_extension(extension_id) if extension_id else None
    if extension is None or extension.client_id != client_id:
        raise Conflict("no such extension to pay for", code="extension_not_found")
    if not extension.payable:
        raise Conflict("this extension cannot be paid for now", code="extension_closed")
    if extension.tier_id != tier_id:
        raise InvalidRequest(
            "pay for the tier the extension asked for",
            fields=[{"field": "tier_id", "problem": f"must be {extension.tier_id}"}],
        )


def apply_paid_extension(uow: UnitOfWork, extension_id: str) -> bool:
    """An extension's payment has landed, inside billing's change: the time is added. False when it can no longer
    be (the session ended meanwhile, voiding it), so billing keeps the money aside for the client."""
    extension = uow.lifecycle.locked_extension(extension_id)
    if extension is None or extension.status is not ExtensionStatus.ACCEPTED:
        return False
    if not extension.payable:
        _move_extension(uow, extension, ExtensionStatus.VOID)
        return False
    _apply(uow, extension)
    return True


# -- shared steps ------------------------------------------------------------------------------------------------------


def _locked_for(uow: UnitOfWork, participant: Participant, session_id: str) -> LockedSession:
    """The session, locked, if the participant takes part in it."""
    session = uow.lifecycle.locked_session(session_id)
    if session is None or not session.is_party(participant.side, participant.account_id):
        raise NotFound("no such session")
    return session


def _begin_closing(
    uow: UnitOfWork, session: LockedSession, ended: Session, reason: ClosureReason, *, closed_by: str
) -> None:
    assert ended.goodbye_until is not None, "a session that ends has a goodbye window"
    closing = uow.lifecycle.start_closing_if_active(
        session.session_id, goodbye_until=ended.goodbye_until, reason=reason, closed_by=closed_by
    )
    assert closing is not None, "the change holds the session's row lock and saw it active"
    uow.outbox.add(*rules.closing_events(session, closing, reason))


def _apply(uow: UnitOfWork, extension: LockedExtension) -> None:
    """The extension's time is added: a new version of the session, with its own timer."""
    extended = extension.session.extend(extension.duration_s)
    saved = uow.lifecycle.extend_if_active(
        extension.session_id, extended=extended, from_version=extension.session.version
    )
    assert saved, "the change holds the session's row lock and saw it active"
    _save_move(uow, extension, ExtensionStatus.APPLIED)
    uow.outbox.add(*rules.extended_events(extension, extended, _warning(uow.settings.load())))


def _move_extension(uow: UnitOfWork, extension: LockedExtension, target: ExtensionStatus) -> None:
    _save_move(uow, extension, target)
    uow.outbox.add(rules.extension_document(extension.session_id, extension.extension_id, target))


def _save_move(uow: UnitOfWork, extension: LockedExtension, target: ExtensionStatus) -> None:
    if not rules.extension_can_become(extension.status, target):
        raise Conflict("this extension request is no longer open", code="extension_closed")
    moved = uow.lifecycle.move_extension(extension.extension_id, from_status=extension.status, to=target)
    assert moved, "the change holds the extension's row lock"


def _system_message(session_id: str, text_key: str, params: dict[str, str]) -> NewMessage:
    """`text` in the default language; the message's document carries it in every language (shared/domain/texts)."""
    return NewMessage(
        message_id=str(uuid.uuid4()),
        session_id=session_id,
        kind="system",
        sender_role="system",
        sender_uid=None,
        text=texts.text(text_key, texts.DEFAULT_LOCALE, **params),
        text_key=text_key,
        params=params,
    )


def _goodbye_window(config: AppConfig) -> timedelta:
    return timedelta(seconds=config.goodbye_window_s)


def _warning(config: AppConfig) -> timedelta:
    return timedelta(seconds=config.session_warning_s)


# -- an admin ends a session (shared/services/admin_sessions.py `end_session`) ----------------------------------------


def end_by_admin(
    uow: UnitOfWork, session: LockedSession, admin_uid: str, *, goodbye: bool
) -> tuple[SessionStatus, datetime | None]:
    """Inside the admin's change, on the session's locked row (`shared.domain.admin.may_end` allowed it): an active
    session starts closing with `close_reason` admin, with the goodbye window, or closes at once; one already in its
    goodbye window closes at once. Its timers find themselves stale: the warning and expiry speak for an active
    session (`Session.timer_is_current`), the close timer for a closing one, and its pending extension is voided.
    The status it is left in, and the end of its goodbye window when it has one."""
    if session.state.status is SessionStatus.CLOSING:
        closed_at = uow.lifecycle.close_if_closing(session.session_id)
        assert closed_at is not None, "the change holds the session's row lock and saw it closing"
        uow.outbox.add(rules.closed_document(session.session_id, closed_at))
        slot_freed(uow, session)
        return SessionStatus.CLOSED, None
    window = _goodbye_window(uow.settings.load()) if goodbye else timedelta(0)
    ended = session.state.end_early(session.now, window)
    assert ended.goodbye_until is not None, "a session that ends has a goodbye window"
    closing = uow.lifecycle.start_closing_if_active(
        session.session_id, goodbye_until=ended.goodbye_until, reason=ClosureReason.ADMIN, closed_by=admin_uid
    )
    assert closing is not None, "the change holds the session's row lock and saw it active"
    closed_at = None
    if not goodbye:
        ended.close(session.now)
        closed_at = uow.lifecycle.close_if_closing(session.session_id)
        assert closed_at is not None, "the change holds the session's row lock and saw it closing"
        slot_freed(uow, session)
    uow.outbox.add(*rules.ended_by_admin_events(session, closing, closed_at=closed_at))
    return (SessionStatus.CLOSING, closing.goodbye_until) if goodbye else (SessionStatus.CLOSED, None)
