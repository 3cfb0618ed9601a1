"""What every HTTP-triggered function answers with: its JSON object body read once, a JSON response, and the
contract's failure envelope. Only flask and our own errors: a webhook's instance loads this without the Firebase
token and pydantic parsing of functions/_http.py.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

import flask

from shared.errors import AppError, InvalidRequest, RateLimited
from shared.logging import event

log = logging.getLogger("halo.http")

# What functions-framework serves: a request in, a Flask response out.
HttpFunction = Callable[[flask.Request], Any]
MAX_BODY_BYTES = 64 * 1024


def failure_response(exc: Exception, function: str) -> flask.Response:
    """The contract's envelope for a typed error; a generic 500 (and a logged trace) for anything else."""
    if isinstance(exc, AppError):
        return error_response(exc)
    log.error("unhandled error", exc_info=exc, extra={"fields": {"function": function}})
    return json_response(500, {"error": {"code": "internal", "message": "something went wrong on our side"}})


def read_json_object(req: flask.Request) -> tuple[bytes, dict[str, Any]]:
    """The raw body and its JSON object; 400 naming `body` when it is too large, not JSON, or not an object."""
    data = req.get_data(cache=False)
    if len(data) > MAX_BODY_BYTES:
        raise InvalidRequest("the body is too large", fields=[{"field": "body", "problem": "too large"}])
    try:
        raw = json.loads(data or b"{}")
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidRequest("the body must be JSON", fields=[{"field": "body", "problem": "not JSON"}]) from exc
    if not isinstance(raw, dict):
        raise InvalidRequest("the body must be a JSON object", fields=[{"field": "body", "problem": "not an object"}])
    return data or b"{}", raw


def error_response(err: AppError) -> flask.Response:
    if err.status >= 500:
        event(log, "request failed", logging.WARNING, code=err.code, status=err.status)
    response = json_response(err.status, err.envelope())
    if isinstance(err, RateLimited):
        response.headers["Retry-After"] = str(err.retry_after_s)
    return response


def json_response(status: int, payload: dict[str, Any]) -> flask.Response:
    return flask.Response(json.dumps(payload), status=status, mimetype="application/json")
