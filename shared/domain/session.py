"""A session's life as a state machine: active → closing (goodbye window) → closed; the timer and extensions.

Services guard every move in SQL as well (`UPDATE … WHERE status = 'active'`); these methods are the rules the
statements implement, and what the property tests drive with arbitrary event sequences.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum

from shared.domain.events import TaskRequest

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
    """A free extension goes straight from requested to applied; nothing leaves rejected/expired/applied/void."""
    return target in _EXTENSION_MOVES.get(current, set())


@dataclass(frozen=True)
class Session:
    status: SessionStatus
    ends_at: datetime
    version: int
    goodbye_until: datetime | None = None

    def expire(self, now: datetime, goodbye: timedelta) -> Session:
        if self.status is not SessionStatus.ACTIVE:
            raise IllegalTransition(f"a {self.status} session cannot expire")
        if now < self.ends_at - TIMER_TOLERANCE:
            raise IllegalTransition("the session's time is not up yet")
        return self._closing(now, goodbye)

    def end_early(self, now: datetime, goodbye: timedelta) -> Session:
        if self.status is not SessionStatus.ACTIVE:
            raise IllegalTransition(f"a {self.status} session cannot be ended")
        return self._closing(now, goodbye)

    def close(self, now: datetime) -> Session:
        if self.status is not SessionStatus.CLOSING or self.goodbye_until is None:
            raise IllegalTransition(f"a {self.status} session cannot close")
        if now < self.goodbye_until - TIMER_TOLERANCE:
            raise IllegalTransition("the goodbye window is still open")
        return replace(self, status=SessionStatus.CLOSED)

    def extend(self, seconds: int) -> Session:
        """A new version: timers scheduled for the old one find themselves stale."""
        if self.status is not SessionStatus.ACTIVE:
            raise IllegalTransition(f"a {self.status} session cannot be extended")
        if seconds <= 0:
            raise IllegalTransition("an extension adds time")
        return replace(self, ends_at=self.ends_at + timedelta(seconds=seconds), version=self.version + 1)

    def accepts_messages(self, now: datetime) -> bool:
        return self.status is SessionStatus.ACTIVE and now < self.ends_at

    def accepts_goodbye(self, now: datetime) -> bool:
        return self.status is SessionStatus.CLOSING and self.goodbye_until is not None and now < self.goodbye_until

    def _closing(self, now: datetime, goodbye: timedelta) -> Session:
        return replace(self, status=SessionStatus.CLOSING, goodbye_until=now + goodbye)


def warning_at(ends_at: datetime, warning: timedelta, started_at: datetime) -> datetime:
    """`warning` before the end, or at the start for a session shorter than that."""
    return max(ends_at - warning, started_at)


def time_left_text(left: timedelta) -> str:
    """The warning's system message, in whole minutes (seconds in the last minute)."""
    seconds = max(0, int(left.total_seconds()))
    return f"Sesi tinggal {seconds // 60} menit lagi." if seconds >= 60 else f"Sesi tinggal {seconds} detik lagi."


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
