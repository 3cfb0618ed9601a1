"""Refunds whose callback never came: looked up at Xendit on a schedule, so none waits for an admin to ask again.

Its own module, as the other sweeps: its instance loads billing's refunds and the Xendit adapter, not checkout's
request models or the session lifecycle that billing's purposes bring.
"""

from __future__ import annotations

from pydantic import BaseModel

from functions._events import pubsub_handler
from shared import bootstrap
from shared.services.billing import reconciliation

# A scheduled sweep stops well before the function's timeout; the next run picks up the rest.
_SWEEP_BUDGET_S = 45


class RefundTick(BaseModel):
    pass


@pubsub_handler(RefundTick)
def refund_sweep(_tick: RefundTick, _message_id: str) -> None:
    """Scheduled every 15 minutes: ask Xendit about refunds pending longer than a few minutes, and settle those it has
    settled as their lost refund callbacks would have."""
    reconciliation.reconcile_refunds(bootstrap.ports(), bootstrap.payments(), budget_s=_SWEEP_BUDGET_S)
