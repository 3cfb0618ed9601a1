"""The shape of a payment provider's webhook: no Firebase token but the provider's own proof, a JSON object body,
and the same error envelope and logging discipline as functions/_http.py.

Any 2xx tells the provider to stop retrying, so a handler answers 200 for every delivery it has recorded, replays
included; a 5xx (the database was unreachable, say) makes the provider deliver it again later.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import flask
import functions_framework
from werkzeug.datastructures import Headers

from functions._http import _MAX_BODY_BYTES, HttpFunction, error_response
from shared.config import get_settings
from shared.errors import AppError, InvalidRequest, MethodNotAllowed, Unauthenticated
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
            configure(get_settings().log_level)
            set_trace(req.headers.get("X-Cloud-Trace-Context"), get_settings().project_id)
            try:
                if req.method != "POST":
                    raise MethodNotAllowed(f"{handler.__name__} takes POST")
                if not verify(req):
                    event(log, "webhook refused", logging.WARNING, function=handler.__name__, code="unauthenticated")
                    raise Unauthenticated("this webhook needs the provider's proof")
                return _json(200, handler(Delivery(_json_object(req), req.headers)))
            except AppError as err:
                return error_response(err)
            except Exception:
                log.exception("unhandled error", extra={"fields": {"function": handler.__name__}})
                return _json(500, {"error": {"code": "internal", "message": "something went wrong on our side"}})

        return webhook_function

    return decorate


def _json_object(req: flask.Request) -> dict[str, Any]:
    data = req.get_data(cache=False)
    if len(data) > _MAX_BODY_BYTES:
        raise InvalidRequest("the body is too large", fields=[{"field": "body", "problem": "too large"}])
    try:
        body = json.loads(data or b"{}")
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidRequest("the body must be JSON", fields=[{"field": "body", "problem": "not JSON"}]) from exc
    if not isinstance(body, dict):
        raise InvalidRequest("the body must be a JSON object", fields=[{"field": "body", "problem": "not an object"}])
    return body


def _json(status: int, payload: dict[str, Any]) -> flask.Response:
    return flask.Response(json.dumps(payload), status=status, mimetype="application/json")
