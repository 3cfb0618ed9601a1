"""Xendit's invoice and refund callbacks, on their own instance apart from the rest of billing (functions/billing.py).

Nothing here checks a Firebase token or parses a request model, so its cold start loads the framework and no more:
the billing services, the settings and the callback models load with the first delivery, which needs them. What a
paid transaction delivers is billing's purpose table (shared/services/billing/purposes.py), loaded with them.
"""

from __future__ import annotations

from typing import Any

import flask

from functions._webhook import Delivery, webhook


def _signed_by_xendit(req: flask.Request) -> bool:
    from shared.adapters.xendit_payments import callback_token_matches
    from shared.config import get_settings

    return callback_token_matches(req.headers.get("x-callback-token"), get_settings().xendit_callback_token)


@webhook(verify=_signed_by_xendit)
def xendit_webhook(delivery: Delivery) -> dict[str, Any]:
    """Xendit's invoice callbacks and refund callbacks (`event: refund.succeeded | refund.failed`), both under the
    same callback token: recorded, applied at most once, acknowledged at once (replays too)."""
    from shared import bootstrap
    from shared.schemas.billing import is_refund_callback
    from shared.services.billing import payments, refunds

    webhook_id = delivery.headers.get("webhook-id")
    receive = refunds.receive_callback if is_refund_callback(delivery.body) else payments.receive_callback
    return {"outcome": receive(bootstrap.ports(), delivery.body, webhook_id=webhook_id)}
