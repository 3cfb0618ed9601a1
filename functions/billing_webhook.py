"""Xendit's invoice callback, deployed on its own instance apart from the rest of billing (functions/billing.py).

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
    """Xendit's invoice callback: recorded, applied at most once, acknowledged at once (replays too)."""
    from shared.adapters import runtime
    from shared.services import billing

    _purposes_registered()
    outcome = billing.receive_callback(runtime.ports(), delivery.body, webhook_id=delivery.headers.get("webhook-id"))
    return {"outcome": outcome}
