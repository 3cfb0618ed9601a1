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


def refuse_unstorable_text(value: Any, field: str = "") -> None:
    """PostgreSQL text cannot hold U+0000, nor a lone UTF-16 surrogate (which JSON's \\u escapes can spell): a
    string carrying either is refused here, naming its field, rather than failing deep inside a statement."""
    if isinstance(value, str):
        if "\x00" in value:
            problem = {"field": field or "body", "problem": "contains NUL"}
            raise InvalidRequest("text may not contain NUL characters", fields=[problem])
        try:
            value.encode()
        except UnicodeEncodeError as exc:
            problem = {"field": field or "body", "problem": "not valid Unicode"}
            raise InvalidRequest("text must be valid Unicode", fields=[problem]) from exc
    elif isinstance(value, dict):
        for key, item in value.items():
            refuse_unstorable_text(key, field)
            refuse_unstorable_text(item, f"{field}.{key}" if field else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            refuse_unstorable_text(item, f"{field}.{index}" if field else str(index))


def error_response(err: AppError) -> flask.Response:
    if err.status >= 500:
        event(log, "request failed", logging.WARNING, code=err.code, status=err.status)
    response = json_response(err.status, err.envelope())
    if isinstance(err, RateLimited):
        response.headers["Retry-After"] = str(err.retry_after_s)
    return response


def json_response(status: int, payload: dict[str, Any]) -> flask.Response:
    return flask.Response(json.dumps(payload), status=status, mimetype="application/json")
