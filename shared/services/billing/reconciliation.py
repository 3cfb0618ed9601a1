"""The refund sweep: refunds whose callback never came are looked up at Xendit on a schedule, so none waits for an
admin to ask again. Each is settled exactly as its callback would have settled it (refunds.look_up)."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import timedelta

from shared.domain.billing import Outcome, StoredAttempt
from shared.logging import event
from shared.services.billing import refunds
from shared.services.ports import PaymentProvider, Ports

log = logging.getLogger(__name__)

# Xendit's refund callback normally follows a pending refund within minutes, so the sweep looks up only refunds
# pending for longer; and each again only after a while, since some channels take days to settle one.
RECONCILE_AFTER = timedelta(minutes=5)
RECONCILE_EVERY = timedelta(minutes=10)
# Refunds claimed at a time: a run stopped by its time budget leaves at most these few waiting for a later run.
_RECONCILE_BATCH = 10
SWEEP_ACTOR = "refund_sweep"


@dataclass(frozen=True)
class RefundSweep:
    """What one run did: refunds it settled, refunds Xendit still reports pending, and refunds it could not settle
    (Xendit could not be asked, or its answer did not match the refund we asked for)."""

    settled: int
    pending: int
    failed: int


def reconcile_refunds(ports: Ports, provider: PaymentProvider, *, budget_s: float) -> RefundSweep:
    """Batch after batch until none is due or the time budget is spent. Each refund stands alone: one that cannot be
    looked up now is looked up at a later run, and the others go on. Sweeps running at once claim different refunds,
    and a refund settled meanwhile (its callback, an admin) is not settled twice."""
    deadline = time.monotonic() + budget_s
    settled = pending = failed = 0
    while time.monotonic() < deadline:
        due = _claim_due(ports)
        if not due:
            break
        for attempt in due:
            if time.monotonic() >= deadline:
                break
            try:
                verdict = refunds.look_up(ports, provider, attempt, asked_by=SWEEP_ACTOR).verdict
            except Exception as exc:
                failed += 1
                event(
                    log,
                    "refund not reconciled",
                    logging.WARNING,
                    transaction=attempt.transaction_id,
                    attempt=attempt.attempt,
                    error=type(exc).__name__,
                    code=getattr(exc, "code", None),
                )
                continue
            if verdict is None:
                pending += 1
            elif verdict.outcome is Outcome.APPLIED:
                settled += 1
            elif verdict.outcome is Outcome.QUARANTINED:
                failed += 1
    level = logging.WARNING if failed else logging.INFO
    event(log, "refund sweep", level, settled=settled, pending=pending, failed=failed)
    return RefundSweep(settled=settled, pending=pending, failed=failed)


def _claim_due(ports: Ports) -> list[StoredAttempt]:
    """Refunds pending for a while and not looked up lately, marked as looked up as they are claimed: a sweep
    running at the same time (a redelivered tick) takes others, and one still pending goes to the back of the line."""
    with ports.uow(one_statement=True) as uow:
        return uow.refunds.claim_due(
            pending_for_s=int(RECONCILE_AFTER.total_seconds()),
            looked_up_every_s=int(RECONCILE_EVERY.total_seconds()),
            limit=_RECONCILE_BATCH,
        )
