"""Mitra presence: online/offline by their word, offline by silence; every transition logged."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from shared.domain.idempotency import KeyedCall
from shared.domain.pairing import offers_withdrawn
from shared.domain.presence import (
    Heard,
    MitraPresence,
    Presence,
    PresenceChange,
    PresenceReason,
    answer_changed,
    is_transition,
    silent,
)
from shared.errors import NotFound
from shared.services import idempotency, pairing, projector
from shared.services.ports import Ports
from shared.services.unit_of_work import UnitOfWork


class PresenceRepository(Protocol):
    """What presence needs from storage (shared/adapters/postgres/presence.py)."""

    def lock_active_mitra(self, mitra_id: str) -> MitraPresence | None: ...

    def set_presence(self, mitra_id: str, presence: Presence) -> None: ...

    def heartbeat_if_online(self, mitra_id: str) -> int | None: ...

    def online_heartbeats(self) -> tuple[datetime, list[Heard]]: ...

    def set_online_count(self, online: int) -> None: ...

    def take_offline_unless_heard_since(self, silent: list[Heard]) -> list[str]: ...

    def log_transitions(self, mitra_ids: list[str], from_status: str, to_status: str, reason: str) -> None: ...


def set_status(ports: Ports, mitra_id: str, status: Presence, *, keyed: KeyedCall | None = None) -> PresenceChange:
    """Going online also offers the mitra every request still searching that they can take (offers withdrawn when
    they left made again); going offline withdraws open offers.
    Running sessions are not touched either way. Asked again (the reply was lost), the answer is the first one:
    `changed` says whether this call or the one it repeats made the transition (`answer_changed`)."""
    with ports.uow() as uow:
        if (first := idempotency.first_answer(uow, keyed, PresenceChange)) is not None:
            return first
        before = uow.presence.lock_active_mitra(mitra_id)
        if before is None:
            raise NotFound("no such mitra")
        uow.presence.set_presence(mitra_id, status)
        if is_transition(before.presence, status):
            log_presence_change(uow, [mitra_id], before.presence, status, PresenceReason.MANUAL)
        if status is Presence.ONLINE:
            pairing.offer_searching_requests_to(uow, mitra_id, before.firebase_uid)
        else:
            withdraw_open_offers(uow, [mitra_id])
        change = PresenceChange(status=status, changed=answer_changed(before, status))
        idempotency.remember(uow, keyed, change)
        committed = uow.commit()
    projector.deliver(ports, committed)
    return change


@dataclass(frozen=True)
class Beat:
    """A heartbeat's answer: the presence (an app swept offline must go online again) and, while online, the seconds
    until the next beat (the current pace)."""

    status: Presence
    next_heartbeat_s: int | None


def heartbeat(ports: Ports, mitra_id: str) -> Beat:
    """Keeps an online mitra online for the current pace's grace, in one statement."""
    with ports.uow(one_statement=True) as uow:
        next_heartbeat_s = uow.presence.heartbeat_if_online(mitra_id)
    if next_heartbeat_s is None:
        return Beat(Presence.OFFLINE, None)
    return Beat(Presence.ONLINE, next_heartbeat_s)


def sweep(ports: Ports) -> int:
    """Everyone whose lease ran out goes offline with reason `heartbeat_timeout`; the number still online sets the
    pace of the heartbeats to come (shared.domain.presence.pace, with the settings as they are at each beat)."""
    with ports.uow() as uow:
        now, online = uow.presence.online_heartbeats()
        gone = uow.presence.take_offline_unless_heard_since(silent(online, now=now))
        if gone:
            log_presence_change(uow, gone, Presence.ONLINE, Presence.OFFLINE, PresenceReason.HEARTBEAT_TIMEOUT)
            withdraw_open_offers(uow, gone)
        uow.presence.set_online_count(len(online) - len(gone))
        committed = uow.commit()
    projector.deliver(ports, committed)
    return len(gone)


def log_presence_change(uow: UnitOfWork, mitra_ids: list[str], from_status: str, to_status: str, reason: str) -> None:
    """One `mitra_status_logs` row per mitra (the control center's activity logs read them)."""
    uow.presence.log_transitions(mitra_ids, from_status, to_status, reason)


def withdraw_open_offers(uow: UnitOfWork, mitra_ids: list[str]) -> None:
    """Mitras who went offline (or were deactivated) stop holding offers: each one's offer document goes."""
    withdrawn = uow.pairing.withdraw_open_offers_of(mitra_ids)
    uow.outbox.add(*offers_withdrawn(withdrawn))
