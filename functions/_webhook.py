"""The shape of a payment provider's webhook: no Firebase token but the provider's own proof, a JSON object body,
and the same error envelope and logging discipline as functions/_http.py.

Any 2xx tells the provider to stop retrying, so a handler answers 200 for every delivery it has recorded, replays
included; a 5xx (the database was unreachable, say) makes the provider deliver it again later. A body PostgreSQL
could not keep, or one a handler cannot read as the provider's, is a 400 naming the field, and changes nothing.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import flask
import functions_framework
from werkzeug.datastructures import Headers

from functions._replies import (
    HttpFunction,
    failure_response,
    json_response,
    read_body,
    read_json_object,
    refuse_unstorable_text,
)
from shared.errors import MethodNotAllowed, Unauthenticated
from shared.logging import configure, event, set_trace

log = logging.getLogger("halo.webhook")


@dataclass(frozen=True)
class Delivery:
    body: dict[str, Any]
    # Case-insensitive, as HTTP headers are.
    headers: Headers


def webhook(
    *, verify: Callable[[flask.Request], bool]
) -> Callable[[Callable[[Delivery], dict[str, Any]]], HttpFunction]:
    """`verify` proves the sender before anything is read or recorded: a stranger gets 401 and changes nothing."""

    def decorate(handler: Callable[[Delivery], dict[str, Any]]) -> HttpFunction:
        @functions_framework.http
        @functools.wraps(handler)
        def webhook_function(req: flask.Request) -> flask.Response:
            # Settings load with the first delivery, not at cold start.
            from shared.config import get_settings

            configure(get_settings().log_level)
            set_trace(req.headers.get("X-Cloud-Trace-Context"), get_settings().project_id)
            try:
                read_body(req)  # first: a body over the limit is refused before anything else is done
                if req.method != "POST":
                    raise MethodNotAllowed(f"{handler.__name__} takes POST")
                if not verify(req):
                    event(log, "webhook refused", logging.WARNING, function=handler.__name__, code="unauthenticated")
                    raise Unauthenticated("this webhook needs the provider's proof")
                body = read_json_object(req)[1]
                refuse_unstorable_text(body)  # every delivery is kept as received, in a jsonb column
                return json_response(200, handler(Delivery(body, req.headers)))
            except Exception as exc:
                return failure_response(exc, handler.__name__)

        return webhook_function

    return decorate
