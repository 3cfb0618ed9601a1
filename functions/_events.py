"""The shape every Pub/Sub-triggered function shares: decode the message into a model, run, let failures retry.

Delivery is at least once, so every handler is idempotent. A message that can never be parsed is logged and
acknowledged (retrying it cannot help; the dead-letter policy is for handlers that fail). A dependency that is down
(`Unavailable`) is a 503 that Pub/Sub redelivers, logged as a warning; anything else unexpected is a 500.

functions-framework reads and parses the request before the handler runs (the function's app bounds its body:
main.py, functions/_replies.py `limit_bodies`); the handler then checks the caller before anything else: the push
account's OIDC token (functions/_callers.py), or 401, which Pub/Sub redelivers later.
"""

from __future__ import annotations

import base64
import functools
import logging
from collections.abc import Callable
from typing import Any, TypeVar

import flask
import functions_framework
from pydantic import BaseModel, ValidationError

from functions._callers import verify_push_caller
from functions._replies import error_response, json_response, with_retry_after
from shared.config import get_settings
from shared.errors import AppError
from shared.logging import TRACE_ATTRIBUTE, configure, event, set_trace

log = logging.getLogger("halo.events")

Payload = TypeVar("Payload", bound=BaseModel)


def pubsub_handler(model: type[Payload]) -> Callable[[Callable[[Payload, str], None]], Callable[[Any], None]]:
    def decorate(handler: Callable[[Payload, str], None]) -> Callable[[Any], None]:
        @functions_framework.cloud_event
        @functools.wraps(handler)
        def cloud_event_function(cloud_event: Any) -> None:
            configure(get_settings().log_level)
            try:
                verify_push_caller(flask.request, handler.__name__)
            except AppError as err:
                flask.abort(error_response(err))
            message = (cloud_event.data or {}).get("message") or {}
            message_id = str(message.get("messageId") or message.get("message_id") or "")
            # The trace of the request whose change published this (a message attribute), else the push's own.
            attributes = message.get("attributes")
            carried = attributes.get(TRACE_ATTRIBUTE) if isinstance(attributes, dict) else None
            trace = carried or flask.request.headers.get("X-Cloud-Trace-Context")
            set_trace(trace if isinstance(trace, str) else None, get_settings().project_id)
            try:
                raw = base64.b64decode(message.get("data") or b"") or b"{}"
                payload = model.model_validate_json(raw)
            except (ValueError, ValidationError):
                event(log, "unparseable message dropped", logging.ERROR, function=handler.__name__, id=message_id)
                return
            try:
                handler(payload, message_id)
            except AppError as err:
                if err.status < 500:
                    raise
                # A dependency is down: Pub/Sub redelivers with its back-off. A warning, not an unhandled error.
                event(log, "event will retry", logging.WARNING, function=handler.__name__, id=message_id, code=err.code)
                flask.abort(with_retry_after(json_response(503, err.envelope()), err))
            event(log, "event done", function=handler.__name__, id=message_id)

        return cloud_event_function

    return decorate
