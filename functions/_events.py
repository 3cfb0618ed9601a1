"""The shape every Pub/Sub-triggered function shares: decode the message into a model, run, let failures retry.

Delivery is at least once, so every handler is idempotent. A message that can never be parsed is logged and
acknowledged (retrying it cannot help; the dead-letter policy is for handlers that fail).
"""

from __future__ import annotations

import base64
import functools
import logging
from collections.abc import Callable
from typing import Any, TypeVar

import functions_framework
from pydantic import BaseModel, ValidationError

from shared.config import get_settings
from shared.logging import configure, event

log = logging.getLogger("halo.events")

Payload = TypeVar("Payload", bound=BaseModel)


def pubsub_handler(model: type[Payload]) -> Callable[[Callable[[Payload, str], None]], Callable[[Any], None]]:
    def decorate(handler: Callable[[Payload, str], None]) -> Callable[[Any], None]:
        @functions_framework.cloud_event
        @functools.wraps(handler)
        def cloud_event_function(cloud_event: Any) -> None:
            configure(get_settings().log_level)
            message = (cloud_event.data or {}).get("message") or {}
            message_id = str(message.get("messageId") or message.get("message_id") or "")
            try:
                raw = base64.b64decode(message.get("data") or b"") or b"{}"
                payload = model.model_validate_json(raw)
            except (ValueError, ValidationError):
                event(log, "unparseable message dropped", logging.ERROR, function=handler.__name__, id=message_id)
                return
            handler(payload, message_id)

        return cloud_event_function

    return decorate
