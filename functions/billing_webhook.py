"""Xendit's invoice and refund callbacks, on their own instance apart from the rest of billing (functions/billing.py).

Nothing here checks a Firebase token or parses a request model, so its cold start loads the framework and no more:
the billing service, the settings and the Xendit callback model load with the first delivery, which needs them.
"""

from __future__ import annotations

import functools
from typing import Any

import flask

from functions._webhook import Delivery, webhook


def _signed_by_xendit(req: flask.Request) -> bool:
    from shared.adapters.xendit_payments import callback_token_matches
    from shared.config import get_settings

    return callback_token_matches(req.headers.get("x-callback-token"), get_settings().xendit_callback_token)


@functools.cache
def _purposes_registered() -> None:
    """A paid transaction is delivered by the owner of its purpose (billing.register_purpose); this instance imports
    no other function's module, so it registers every purpose itself, once, before the first callback is applied."""
    from shared.services import lifecycle

    lifecycle.register_extension_purpose()


@webhook(verify=_signed_by_xendit)
def xendit_webhook(delivery: Delivery) -> dict[str, Any]:
    """Xendit's invoice callbacks and refund callbacks (`event: refund.succeeded | refund.failed`), both under the
    same callback token: recorded, applied at most once, acknowledged at once (replays too)."""
    from shared import bootstrap
    from shared.adapters.xendit_payments import is_refund_callback
    from shared.services import billing

    webhook_id = delivery.headers.get("webhook-id")
    if is_refund_callback(delivery.body):
        return {"outcome": billing.receive_refund_callback(bootstrap.ports(), delivery.body, webhook_id=webhook_id)}
    _purposes_registered()
    return {"outcome": billing.receive_callback(bootstrap.ports(), delivery.body, webhook_id=webhook_id)}
