"""A session's life as a state machine: active → closing (goodbye window) → closed; the timer and extensions.

The lifecycle service (shared/services/lifecycle.py) asks these rules before every move, and the lifecycle
repository (shared/adapters/postgres/lifecycle.py) saves each move with a guarded statement named for the rule it
enforces, so a move decided on a row that changed meanwhile changes nothing. Each such rule here names its statement,
and each statement names its rule. The property tests drive the same rules with arbitrary event sequences.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING

from shared.domain import texts
from shared.domain.chat import Sent, Side
from shared.domain.config import AppConfig
from shared.domain.documents import SessionDocument, session_path
from shared.domain.events import DocumentWrite, Event, TaskRequest, ts
from shared.domain.notify import push

if TYPE_CHECKING:
    from shared.domain.pricing import PricingTier  # a type only

# Cloud Tasks may fire a little early; a timer within this of its moment counts as due.
TIMER_TOLERANCE = timedelta(seconds=1)
TIMER_QUEUE = "session-timers"
EXTENSION_QUEUE = "extension-timeouts"


class SessionStatus(StrEnum):
    ACTIVE = "active"
    CLOSING = "closing"
    CLOSED = "closed"


class ClosureReason(StrEnum):
    EXPIRED = "expired"
    ENDED_BY_CLIENT = "ended_by_client"
    ENDED_BY_MITRA = "ended_by_mitra"
    ADMIN = "admin"
    REROUTED = "rerouted"


class ExtensionStatus(StrEnum):
    REQUESTED = "requested"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    EXPIRED = "expired"
    APPLIED = "applied"
    VOID = "void"

    @property
    def is_pending(self) -> bool:
        """Waiting for the mitra's answer or the client's payment. A session has at most one pending extension:
        enforced by `LifecycleRepository.request_extension_if_none_pending` (the unique index
        session_extensions_one_pending), and a session that starts closing voids it
        (`LifecycleRepository.start_closing_if_active`)."""
        return self in (ExtensionStatus.REQUESTED, ExtensionStatus.ACCEPTED)


_EXTENSION_MOVES = {
    ExtensionStatus.REQUESTED: {
        ExtensionStatus.ACCEPTED,
        ExtensionStatus.REJECTED,
        ExtensionStatus.EXPIRED,
        ExtensionStatus.VOID,
        ExtensionStatus.APPLIED,
    },
    ExtensionStatus.ACCEPTED: {ExtensionStatus.APPLIED, ExtensionStatus.VOID},
}


class IllegalTransition(ValueError):
    pass


def extension_can_become(current: ExtensionStatus, target: ExtensionStatus) -> bool:
    """A free extension goes straight from requested to applied; nothing leaves rejected/expired/applied/void.
    Saved by `LifecycleRepository.move_extension`, guarded by the status the move was decided on."""
    return target in _EXTENSION_MOVES.get(current, set())


def extension_answer(*, accept: bool, price: int) -> ExtensionStatus:
    """The mitra's answer: rejected; or accepted, and then the client pays through billing, unless the tier is free
    and the time is added at once."""
    if not accept:
        return ExtensionStatus.REJECTED
    return ExtensionStatus.APPLIED if price == 0 else ExtensionStatus.ACCEPTED


def extension_timed_out(respond_by: datetime, now: datetime) -> bool:
    """An extension request the mitra has not answered by `respond_by` expires (its timer may fire a little early)."""
    return now >= respond_by - TIMER_TOLERANCE


@dataclass(frozen=True)
class Session:
    status: SessionStatus
    ends_at: datetime
    version: int
    goodbye_until: datetime | None = None

    def expire(self, now: datetime, goodbye: timedelta) -> Session:
        """The timer ends an active session whose time is up. Saved by `LifecycleRepository.start_closing_if_active`."""
        if self.status is not SessionStatus.ACTIVE:
            raise IllegalTransition(f"a {self.status} session cannot expire")
        if now < self.ends_at - TIMER_TOLERANCE:
            raise IllegalTransition("the session's time is not up yet")
        return self._closing(now, goodbye)

    def end_early(self, now: datetime, goodbye: timedelta) -> Session:
        """A participant ends an active session before its time. Saved by
        `LifecycleRepository.start_closing_if_active`."""
        if self.status is not SessionStatus.ACTIVE:
            raise IllegalTransition(f"a {self.status} session cannot be ended")
        return self._closing(now, goodbye)

    def close(self, now: datetime) -> Session:
        """The goodbye window is over. Saved by `LifecycleRepository.close_if_closing`."""
        if self.status is not SessionStatus.CLOSING or self.goodbye_until is None:
            raise IllegalTransition(f"a {self.status} session cannot close")
        if now < self.goodbye_until - TIMER_TOLERANCE:
            raise IllegalTransition("the goodbye window is still open")
        return replace(self, status=SessionStatus.CLOSED)

    def extend(self, seconds: int) -> Session:
        """A new version: timers scheduled for the old one find themselves stale. Saved by
        `LifecycleRepository.extend_if_active`."""
        if self.status is not SessionStatus.ACTIVE:
            raise IllegalTransition(f"a {self.status} session cannot be extended")
        if seconds <= 0:
            raise IllegalTransition("an extension adds time")
        return replace(self, ends_at=self.ends_at + timedelta(seconds=seconds), version=self.version + 1)

    def accepts_messages(self, now: datetime) -> bool:
        return self.status is SessionStatus.ACTIVE and now < self.ends_at

    def accepts_goodbye(self, now: datetime) -> bool:
        """Goodbye notes are for the goodbye window only, one per side (`LifecycleRepository.goodbye_of`)."""
        return self.status is SessionStatus.CLOSING and self.goodbye_until is not None and now < self.goodbye_until

    def timer_is_current(self, version: int) -> bool:
        """A warning or expiry task speaks for one version of an active session; any other finds itself stale."""
        return self.status is SessionStatus.ACTIVE and self.version == version

    def _closing(self, now: datetime, goodbye: timedelta) -> Session:
        return replace(self, status=SessionStatus.CLOSING, goodbye_until=now + goodbye)


def may_end_early(side: Side, config: AppConfig) -> bool:
    """The control center decides, per role, whether a participant may end a session before its time."""
    return config.early_end_client if side == "client" else config.early_end_mitra


def early_end_reason(side: Side) -> ClosureReason:
    return ClosureReason.ENDED_BY_CLIENT if side == "client" else ClosureReason.ENDED_BY_MITRA


# -- a participant's call repeated (its reply was lost): answered as the first time (shared/domain/idempotency.py) --


class ExtensionAnswer(StrEnum):
    """The mitra's word on an extension request, kept whatever the extension became afterwards."""

    ACCEPT = "accept"
    REJECT = "reject"

    @classmethod
    def of(cls, accept: bool) -> ExtensionAnswer:
        return cls.ACCEPT if accept else cls.REJECT


def ended_early_by(ending: ClosureReason | None, side: Side) -> bool:
    """This side's early end, asked again: the session it ended is closing (or closed since), ended by this side
    (`LifecycleRepository.ending_of`)."""
    return ending is early_end_reason(side)


@dataclass(frozen=True)
class GoodbyeNote:
    """A side's goodbye note as stored: where it stands, and what it said (None once erased). The same note sent
    again is answered with it; another is `goodbye_already_sent`."""

    sent: Sent
    text: str | None


@dataclass(frozen=True)
class PendingExtension:
    """A session's pending extension request, as the client made it."""

    extension_id: str
    tier_id: str
    respond_by: datetime


def repeats_extension_request(pending: PendingExtension | None, tier_id: str) -> bool:
    """The client asking again for the tier of the extension already pending asks for that one again: it is
    answered as it was (`requested`, its id and its deadline), whatever the mitra did with it since. Another tier
    while one is pending is `extension_pending`."""
    return pending is not None and pending.tier_id == tier_id


def repeats_answer(previous: ExtensionAnswer | None, accept: bool) -> bool:
    """The mitra giving the same answer again (`LockedExtension.answer`) is answered as the first time; the other
    answer after one was given is `extension_closed`."""
    return previous is ExtensionAnswer.of(accept)


# -- what the lifecycle's repository hands over ------------------------------------------------------------------------


@dataclass(frozen=True)
class LockedSession:
    """A session as a lifecycle change finds it, its row locked until the change ends; `now` is PostgreSQL's clock
    for the change."""

    session_id: str
    state: Session
    started_at: datetime
    warned_version: int | None
    client_id: str
    mitra_id: str
    client_uid: str | None
    mitra_uid: str | None
    now: datetime

    def is_party(self, side: Side, account_id: str) -> bool:
        return account_id == (self.client_id if side == "client" else self.mitra_id)

    def needs_warning(self, version: int) -> bool:
        """One warning per version of a session, however often its warning task is delivered."""
        return self.warned_version != version


@dataclass(frozen=True)
class LockedExtension:
    """An extension request and its session, both rows locked until the change ends."""

    extension_id: str
    status: ExtensionStatus
    tier_id: str
    duration_s: int
    price: int
    respond_by: datetime
    session_id: str
    session: Session
    started_at: datetime
    client_id: str
    mitra_id: str
    now: datetime
    # The mitra's answer, once given (`LifecycleRepository.record_answer`).
    answer: ExtensionAnswer | None = None

    @property
    def answerable(self) -> bool:
        """The mitra answers a request still waiting, of a session still active."""
        return self.status is ExtensionStatus.REQUESTED and self.session.status is SessionStatus.ACTIVE

    @property
    def payable(self) -> bool:
        """The client pays for an accepted extension of a session still active."""
        return self.status is ExtensionStatus.ACCEPTED and self.session.status is SessionStatus.ACTIVE


@dataclass(frozen=True)
class RequestedExtension:
    extension_id: str
    respond_by: datetime


@dataclass(frozen=True)
class Closing:
    """A session that has just started closing, and the pending extension that its end voided, if any."""

    closing_at: datetime
    goodbye_until: datetime
    voided_extension_id: str | None


# -- timers ------------------------------------------------------------------------------------------------------------


def warning_at(ends_at: datetime, warning: timedelta, started_at: datetime) -> datetime:
    """`warning` before the end, or at the start for a session shorter than that."""
    return max(ends_at - warning, started_at)


def time_left(left: timedelta) -> tuple[str, dict[str, str]]:
    """The warning's system message (its text key and fillers, shared/domain/texts), in whole minutes (seconds in
    the last minute)."""
    seconds = max(0, int(left.total_seconds()))
    if seconds >= 60:
        return "system.time_left_minutes", {"minutes": str(seconds // 60)}
    return "system.time_left_seconds", {"seconds": str(seconds)}


def time_left_text(left: timedelta, locale: str = texts.DEFAULT_LOCALE) -> str:
    """The warning's system message as written in `locale`."""
    key, params = time_left(left)
    return texts.text(key, locale, **params)


def warning_task_id(session_id: str, version: int) -> str:
    return f"session-warning-{session_id}-{version}"


def expire_task_id(session_id: str, version: int) -> str:
    return f"session-expire-{session_id}-{version}"


def close_task_id(session_id: str) -> str:
    return f"session-close-{session_id}"


def extension_timeout_task_id(extension_id: str) -> str:
    return f"extension-timeout-{extension_id}"


def session_timers(
    session_id: str, version: int, *, started_at: datetime, ends_at: datetime, warning: timedelta
) -> list[TaskRequest]:
    """The backend-authoritative timer of one version of a session: the warning, then the expiry. A version that
    changes (an extension) makes the old version's tasks find themselves stale."""
    payload = {"session_id": session_id, "version": version}
    return [
        TaskRequest(
            TIMER_QUEUE,
            warning_task_id(session_id, version),
            "task_session_warning",
            payload,
            warning_at(ends_at, warning, started_at),
        ),
        TaskRequest(TIMER_QUEUE, expire_task_id(session_id, version), "task_session_expire", payload, ends_at),
    ]


def close_timer(session_id: str, goodbye_until: datetime) -> TaskRequest:
    """The end of the goodbye window."""
    return TaskRequest(
        TIMER_QUEUE, close_task_id(session_id), "task_session_close", {"session_id": session_id}, goodbye_until
    )


def extension_timer(extension_id: str, respond_by: datetime) -> TaskRequest:
    """An extension request the mitra has not answered by `respond_by` expires."""
    return TaskRequest(
        EXTENSION_QUEUE,
        extension_timeout_task_id(extension_id),
        "task_extension_timeout",
        {"extension_id": extension_id},
        respond_by,
    )


# -- what the apps see -------------------------------------------------------------------------------------------------


def session_document(session_id: str, data: dict[str, object]) -> DocumentWrite:
    """A change to the session document the participants' apps listen to (fields of `SessionDocument`)."""
    return DocumentWrite.at(
        session_path(session_id), SessionDocument.model_validate({"session_id": session_id, **data})
    )


def _push_to(
    recipients: list[str | None],
    *,
    dedup_key: str,
    data: dict[str, str],
    text_key: str,
    params: dict[str, object] | None = None,
) -> list[Event]:
    """A push to whoever of `recipients` still has an account; none when nobody does. Its texts are `text_key`'s
    (shared/domain/texts), in each recipient's language."""
    uids = [uid for uid in recipients if uid is not None]
    return [push(dedup_key=dedup_key, recipients=uids, data=data, text_key=text_key, params=params)] if uids else []


def warning_events(session: LockedSession) -> list[Event]:
    """The "5 minutes left, extend?" warning: on the session document, and a push to the client."""
    version = session.state.version
    return [
        session_document(session.session_id, {"warning": {"version": version, "at": ts(session.now)}}),
        *_push_to(
            [session.client_uid],
            dedup_key=f"warning:{session.session_id}:{version}",
            data={"type": "session_warning", "session_id": session.session_id},
            text_key="push.session_warning",
        ),
    ]


def closing_events(session: LockedSession, closing: Closing, reason: ClosureReason) -> list[Event]:
    """The session is closing: its document, a push to both participants, and the timer ending the goodbye window."""
    data: dict[str, object] = {
        "status": SessionStatus.CLOSING,
        "close_reason": reason,
        "closing_at": ts(closing.closing_at),
        "goodbye_until": ts(closing.goodbye_until),
    }
    if closing.voided_extension_id is not None:
        data["extension"] = {"extension_id": closing.voided_extension_id, "status": ExtensionStatus.VOID}
    return [
        session_document(session.session_id, data),
        *_push_to(
            [session.client_uid, session.mitra_uid],
            dedup_key=f"closing:{session.session_id}",
            data={"type": "session_closing", "session_id": session.session_id, "reason": reason},
            text_key="push.session_closing",
        ),
        close_timer(session.session_id, closing.goodbye_until),
    ]


def closed_document(session_id: str, closed_at: datetime) -> DocumentWrite:
    return session_document(session_id, {"status": SessionStatus.CLOSED, "closed_at": ts(closed_at)})


def extension_requested_events(session: LockedSession, requested: RequestedExtension, tier: PricingTier) -> list[Event]:
    """The request on the session document, a push to the mitra, and the timer that expires it unanswered."""
    extension = {
        "extension_id": requested.extension_id,
        "status": ExtensionStatus.REQUESTED,
        "minutes": tier.minutes,
        "duration_s": tier.duration_s,
        "price": tier.price,
        "respond_by": ts(requested.respond_by),
    }
    return [
        session_document(session.session_id, {"extension": extension}),
        *_push_to(
            [session.mitra_uid],
            dedup_key=f"extension:{requested.extension_id}",
            data={
                "type": "extension_request",
                "session_id": session.session_id,
                "extension_id": requested.extension_id,
            },
            text_key="push.extension_request",
            params={"minutes": tier.minutes},
        ),
        extension_timer(requested.extension_id, requested.respond_by),
    ]


def extension_document(session_id: str, extension_id: str, status: ExtensionStatus) -> DocumentWrite:
    return session_document(session_id, {"extension": {"extension_id": extension_id, "status": status}})


def extended_events(extension: LockedExtension, extended: Session, warning: timedelta) -> list[Event]:
    """The new end and version on the session document, and the timer of the new version."""
    data = {
        "ends_at": ts(extended.ends_at),
        "version": extended.version,
        "extension": {"extension_id": extension.extension_id, "status": ExtensionStatus.APPLIED},
    }
    return [
        session_document(extension.session_id, data),
        *session_timers(
            extension.session_id,
            extended.version,
            started_at=extension.started_at,
            ends_at=extended.ends_at,
            warning=warning,
        ),
    ]


# -- an admin ends a session (shared/services/lifecycle.py `end_by_admin`) -------------------------------------------


def ended_by_admin_events(session: LockedSession, closing: Closing, *, closed_at: datetime | None) -> list[Event]:
    """An admin ended the session: with the goodbye window (`closed_at` None) it is closing as any ending is, and its
    close timer ends the window; without it, it is closed at once (no timer). Both participants are pushed."""
    data: dict[str, object] = {
        "status": SessionStatus.CLOSING if closed_at is None else SessionStatus.CLOSED,
        "close_reason": ClosureReason.ADMIN,
        "closing_at": ts(closing.closing_at),
        "goodbye_until": ts(closing.goodbye_until),
    }
    if closed_at is not None:
        data["closed_at"] = ts(closed_at)
    if closing.voided_extension_id is not None:
        data["extension"] = {"extension_id": closing.voided_extension_id, "status": ExtensionStatus.VOID}
    events: list[Event] = [
        session_document(session.session_id, data),
        *_push_to(
            [session.client_uid, session.mitra_uid],
            dedup_key=f"closing:{session.session_id}",
            data={"type": "session_closing", "session_id": session.session_id, "reason": ClosureReason.ADMIN},
            text_key="push.session_closing_admin" if closed_at is None else "push.session_closed_admin",
        ),
    ]
    if closed_at is None:
        events.append(close_timer(session.session_id, closing.goodbye_until))
    return events
