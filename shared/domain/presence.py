"""Mitra presence: online or offline by the mitra's word, offline by silence, and every transition logged.

A mitra online keeps telling the backend so (a heartbeat); one not heard from within its lease (`heard_until`: the
grace its last heartbeat, or going online, gave it) is taken offline by the sweep. The heartbeats are paced (`pace`):
each reply tells the app when to beat next, longer as more mitras are online, so presence costs the same whatever the
population. The presence repository (shared/adapters/postgres/presence.py) guards each change in its statement; the
rules below name those statements.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from shared.domain.config import AppConfig
from shared.domain.idempotency import REPEAT_WINDOW


class Presence(StrEnum):
    ONLINE = "online"
    OFFLINE = "offline"


class PresenceReason(StrEnum):
    """Why a mitra's presence changed, as `mitra_status_logs` records it."""

    MANUAL = "manual"
    HEARTBEAT_TIMEOUT = "heartbeat_timeout"
    DEACTIVATED = "deactivated"


@dataclass(frozen=True)
class LoggedChange:
    """A mitra's latest transition as `mitra_status_logs` holds it."""

    to_status: Presence
    reason: PresenceReason
    at: datetime


@dataclass(frozen=True)
class MitraPresence:
    """An active mitra's presence, read under its row lock, with its latest logged transition and the change's
    moment (PostgreSQL's clock)."""

    presence: Presence
    firebase_uid: str
    last_change: LoggedChange | None
    now: datetime


@dataclass(frozen=True)
class PresenceChange:
    """What `set_status` left: the presence asked for, and whether it was a transition (and so logged)."""

    status: Presence
    changed: bool


def is_transition(before: Presence, after: Presence) -> bool:
    """Every transition, and only a transition, is logged in `mitra_status_logs` with its reason: the control
    center's activity logs and online hours are read from them."""
    return before is not after


def answer_changed(before: MitraPresence, asked: Presence) -> bool:
    """`changed` in `mitra_set_status`'s answer: whether this call, or the call it repeats, made the transition.
    A mitra asking again for the presence its own word set at most REPEAT_WINDOW ago, nothing having changed it
    since (the latest transition is that one), is repeating that call (its reply was lost), and is answered as it
    was: `changed: true`. Only the transition itself is logged (`is_transition`)."""
    if is_transition(before.presence, asked):
        return True
    last = before.last_change
    return (
        last is not None
        and last.to_status is asked
        and last.reason is PresenceReason.MANUAL
        and before.now - last.at <= REPEAT_WINDOW
    )


# A mitra beats this many times within its grace, so one or two lost beats never take it offline.
BEATS_PER_GRACE = 3


@dataclass(frozen=True)
class Pace:
    """How often online mitras are asked to heartbeat (`interval_s`, the replies' `next_heartbeat_s`) and how long
    one beat keeps a mitra heard from (`grace_s`, its lease)."""

    interval_s: int
    grace_s: int


def pace(online: int, config: AppConfig) -> Pace:
    """A beat every third of `heartbeat_grace_s` while the online mitras, so paced, stay within `heartbeats_per_s_max`
    beats a second together; beyond that each beats less often (online / the maximum seconds apart), so the fleet's
    heartbeats cost the same at 5,000 mitras as at 900 (the defaults). A mitra that vanishes without going offline is
    then noticed later, when many are online and so one missing matters least; the grace stays three beats."""
    interval = max(config.heartbeat_grace_s // BEATS_PER_GRACE, -(-online // config.heartbeats_per_s_max), 1)
    return Pace(interval_s=interval, grace_s=max(config.heartbeat_grace_s, interval * BEATS_PER_GRACE))


def heartbeat_fresh(heard_until: datetime | None, now: datetime) -> bool:
    """Within the lease its last heartbeat (or going online) gave it (`Pace.grace_s` at that moment). Only a mitra
    whose heartbeat is fresh is offered requests (shared.domain.pairing.is_available); one online whose heartbeat is
    not goes offline (`silent`)."""
    return heard_until is not None and now <= heard_until


@dataclass(frozen=True)
class Heard:
    """An online mitra, when it was last heard from, and until when that keeps it heard from."""

    mitra_id: str
    last_heartbeat_at: datetime | None
    heard_until: datetime | None


def silent(online: Sequence[Heard], *, now: datetime) -> list[Heard]:
    """The online mitras whose lease ran out: they go offline, reason `heartbeat_timeout`.
    `PresenceRepository.take_offline_unless_heard_since` applies the verdict unless a heartbeat (or the mitra's own
    word) came after it was reached."""
    return [mitra for mitra in online if not heartbeat_fresh(mitra.heard_until, now)]
