"""Catching up on side effects that could not be published right after their commit."""

from __future__ import annotations

import logging

from pydantic import BaseModel, Field

from functions._events import pubsub_handler
from functions._tasks import task_handler
from shared import bootstrap
from shared.config import get_settings
from shared.errors import Unavailable
from shared.logging import event
from shared.services import health, projector

log = logging.getLogger("halo.outbox")

# A scheduled sweep stops well before the function's timeout (and Pub/Sub's 60 s ack deadline); the next run picks
# up the rest.
_SWEEP_BUDGET_S = 45


class SweepTick(BaseModel):
    pass


class OutboxIds(BaseModel):
    ids: list[int] = Field(min_length=1, max_length=1000)


@pubsub_handler(SweepTick)
def outbox_sweep(_tick: SweepTick, _message_id: str) -> None:
    """Publish every pending outbox row that is due (scheduled every minute)."""
    ports = bootstrap.ports()
    swept = projector.sweep(
        ports, budget_s=_SWEEP_BUDGET_S, stay_s=min(_SWEEP_BUDGET_S, get_settings().outbox_sweep_stay_s)
    )
    # Every run reports what on-call's alert policies read (infra/monitoring.tf).
    now = health.now(ports)
    event(
        log,
        "outbox sweep",
        logging.WARNING if now.outbox_behind else logging.INFO,
        published=swept.published,
        still_failing=swept.failing,
        pending=now.outbox_pending,
        oldest_unpublished_s=now.oldest_unpublished_s,
        stuck=now.outbox_stuck,
        payments_quarantined=now.payments_quarantined,
        unacknowledged_alerts=now.unacknowledged_alerts,
    )


@task_handler(OutboxIds)
def task_project_outbox(payload: OutboxIds) -> str:
    """Retry publishing the rows one request committed; Cloud Tasks backs off between attempts."""
    result = projector.project(bootstrap.ports(), ids=payload.ids)
    if result.failed:
        raise Unavailable(f"{result.failed} outbox rows still failing")
    return "published" if result.published else "already_published"
