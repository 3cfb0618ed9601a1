"""Idempotency keys live 24 hours (docs/contract.md "Retries and idempotency"); this sweep forgets older ones."""

from __future__ import annotations

import logging

from pydantic import BaseModel

from functions._events import pubsub_handler
from shared import bootstrap
from shared.logging import event
from shared.services import idempotency

log = logging.getLogger("halo.idempotency")


class SweepTick(BaseModel):
    pass


@pubsub_handler(SweepTick)
def idempotency_sweep(_tick: SweepTick, _message_id: str) -> None:
    """Scheduled hourly: keys older than their lifetime are deleted, in batches (safe to run twice)."""
    forgotten = idempotency.sweep(bootstrap.ports())
    event(log, "idempotency keys swept", forgotten=forgotten)
