"""The life of a pairing request and its offers."""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum

from shared.domain.events import TaskRequest


class RequestStatus(StrEnum):
    SEARCHING = "searching"
    MATCHED = "matched"
    NO_MITRA = "no_mitra"
    CANCELLED = "cancelled"

    @property
    def is_open(self) -> bool:
        return self is RequestStatus.SEARCHING

    def can_become(self, target: RequestStatus) -> bool:
        """A request ends exactly once: searching → matched | no_mitra | cancelled, nothing after."""
        return self is RequestStatus.SEARCHING and target is not RequestStatus.SEARCHING


class OfferStatus(StrEnum):
    OFFERED = "offered"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    WITHDRAWN = "withdrawn"


class RequestKind(StrEnum):
    PAID = "paid"
    FREE_TRIAL = "free_trial"


def search_deadline(created_at: datetime, window_s: int) -> datetime:
    return created_at + timedelta(seconds=window_s)


def has_capacity(open_sessions: int, max_concurrent_clients: int) -> bool:
    return open_sessions < max_concurrent_clients


def heartbeat_fresh(last_heartbeat_at: datetime | None, now: datetime, grace_s: int) -> bool:
    return last_heartbeat_at is not None and now - last_heartbeat_at <= timedelta(seconds=grace_s)


def pairing_timeout_task_id(request_id: str) -> str:
    return f"pairing-timeout-{request_id}"


TIMEOUT_QUEUE = "pairing-timeouts"


def search_timeout(request_id: str, deadline: datetime) -> TaskRequest:
    """The search ends `no_mitra` at its deadline unless a mitra accepted first."""
    return TaskRequest(
        TIMEOUT_QUEUE, pairing_timeout_task_id(request_id), "task_pairing_timeout", {"request_id": request_id}, deadline
    )
