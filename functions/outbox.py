"""Catching up on side effects that could not be published right after their commit."""

from __future__ import annotations

import logging
import time

from pydantic import BaseModel, Field

from functions._events import pubsub_handler
from functions._tasks import task_handler
from shared import bootstrap
from shared.errors import Unavailable
from shared.logging import event
from shared.services import projector

log = logging.getLogger("halo.outbox")

# A scheduled sweep stops well before the function's timeout; the next run picks up the rest.
_SWEEP_BUDGET_S = 45
# What each run reports for the on-call alerts (infra/monitoring.tf): the rows still waiting and the age of the oldest,
# and crisis alerts no admin has acknowledged within 5 minutes (PostgreSQL is the only place that knows).
_BACKLOG = """SELECT (SELECT count(*) FROM outbox WHERE published_at IS NULL) AS pending,
       (SELECT COALESCE(EXTRACT(EPOCH FROM now() - min(created_at)), 0)::float8 FROM outbox
         WHERE published_at IS NULL) AS oldest_s,
       (SELECT count(*) FROM safety_flags WHERE acknowledged_at IS NULL AND created_at < now() - interval '5 minutes')
         AS unacknowledged"""


class SweepTick(BaseModel):
    pass


class OutboxIds(BaseModel):
    ids: list[int] = Field(min_length=1, max_length=1000)


@pubsub_handler(SweepTick)
def outbox_sweep(_tick: SweepTick, _message_id: str) -> None:
    """Publish every pending outbox row that is due (scheduled every minute)."""
    ports = bootstrap.ports()
    deadline = time.monotonic() + _SWEEP_BUDGET_S
    published = 0
    while time.monotonic() < deadline:
        result = projector.project(ports)
        published += result.published
        if result.published == 0 or result.remaining <= 0:
            break
    backlog = ports.db.read_one(_BACKLOG) or {}
    oldest = round(float(backlog.get("oldest_s") or 0), 1)
    event(log, "outbox sweep", logging.WARNING if oldest > 300 else logging.INFO, published=published,
          pending=backlog.get("pending", 0), oldest_unpublished_s=oldest,
          unacknowledged_alerts=backlog.get("unacknowledged", 0))  # fmt: skip


@task_handler(OutboxIds)
def task_project_outbox(payload: OutboxIds) -> str:
    """Retry publishing the rows one request committed; Cloud Tasks backs off between attempts."""
    result = projector.project(bootstrap.ports(), ids=payload.ids)
    if result.failed:
        raise Unavailable(f"{result.failed} outbox rows still failing")
    return "published" if result.published else "already_published"
