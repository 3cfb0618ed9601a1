"""What every HTTP-triggered function answers with: its JSON object body read once (and never more than the limit),
a JSON response, and the contract's failure envelope. Only flask and our own errors: a webhook's instance loads this
without the Firebase token and pydantic parsing of functions/_http.py.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

import flask
from werkzeug.exceptions import RequestEntityTooLarge

from shared.errors import AppError, InvalidRequest, PayloadTooLarge, RateLimited, Unavailable
from shared.logging import event

log = logging.getLogger("halo.http")

# What functions-framework serves: a request in, a Flask response out.
HttpFunction = Callable[[flask.Request], Any]
# Bodies the apps, Xendit and Cloud Tasks send are a few kilobytes; a Pub/Sub push carries a chat message's text,
# base64-encoded inside its envelope.
MAX_BODY_BYTES = 64 * 1024
MAX_EVENT_BODY_BYTES = 256 * 1024
# No request of ours nests deeper than a handful of levels; this is far past them and far short of Python's stack.
MAX_JSON_DEPTH = 32
_BODY_LIMIT_KEY = "halo.body_limit"


def failure_response(exc: Exception, function: str) -> flask.Response:
    """The contract's envelope for a typed error; a generic 500 (and a logged trace) for anything else."""
    if isinstance(exc, AppError):
        return error_response(exc)
    log.error("unhandled error", exc_info=exc, extra={"fields": {"function": function}})
    return json_response(500, {"error": {"code": "internal", "message": "something went wrong on our side"}})


def read_body(req: flask.Request, *, limit: int = MAX_BODY_BYTES) -> bytes:
    """The body, read once and kept for whoever asks next. 413 before any of it is read when its Content-Length is
    over `limit`; a body sent without a length (chunked) is read up to `limit` + 1 bytes and refused there.
    Functions read it first, before checking the caller: functions-framework reads whatever is left of a body after
    the reply, unbounded."""
    length = req.content_length
    if length is not None and length > limit:
        raise _too_large(limit)
    # Werkzeug stops reading a body without a length there; one byte past the limit tells a body over it.
    req.max_content_length = limit + 1
    try:
        data = req.get_data(cache=True)
    except RequestEntityTooLarge as exc:
        raise _too_large(limit) from exc
    if len(data) > limit:
        raise _too_large(limit)
    return data


def limit_bodies(limit: int) -> None:
    """Refuse, in the function's own Flask app, any body over `limit` before its view runs: functions-framework
    reads a CloudEvent's body itself before calling the function, so the event functions cannot bound it
    themselves. Called by main.py while functions-framework builds the app (inside its app context); elsewhere,
    and for an app already limited, it does nothing."""
    if not flask.has_app_context():
        return
    app = flask.current_app
    if _BODY_LIMIT_KEY in app.extensions:
        return
    app.extensions[_BODY_LIMIT_KEY] = limit
    app.before_request(_refuse_a_large_body)
    app.register_error_handler(RequestEntityTooLarge, _too_large_reply)


def _refuse_a_large_body() -> flask.Response | None:
    try:
        read_body(flask.request, limit=int(flask.current_app.extensions[_BODY_LIMIT_KEY]))
    except PayloadTooLarge as err:
        return error_response(err)
    return None


def _too_large_reply(_exc: RequestEntityTooLarge) -> flask.Response:
    return error_response(_too_large(int(flask.current_app.extensions[_BODY_LIMIT_KEY])))


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"the body is larger than {limit} bytes", field="body", limit_bytes=limit)


def read_json_object(req: flask.Request) -> tuple[bytes, dict[str, Any]]:
    """The raw body and its JSON object; 413 when it is too large, 400 naming `body` when it is not JSON, not an
    object, or nested deeper than any request of ours."""
    data = read_body(req) or b"{}"
    return data, json_object(data)


def json_object(data: bytes) -> dict[str, Any]:
    try:
        raw = json.loads(data)
    except RecursionError as exc:  # the decoder recurses once per level: thousands of `[` exhaust the stack
        raise _too_deep() from exc
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidRequest("the body must be JSON", fields=[{"field": "body", "problem": "not JSON"}]) from exc
    if not isinstance(raw, dict):
        raise InvalidRequest("the body must be a JSON object", fields=[{"field": "body", "problem": "not an object"}])
    if _depth(raw) > MAX_JSON_DEPTH:
        raise _too_deep()
    return raw


def _too_deep() -> InvalidRequest:
    problem = {"field": "body", "problem": f"nested deeper than {MAX_JSON_DEPTH} levels"}
    return InvalidRequest("the body is nested too deeply", fields=[problem])


def _depth(value: Any) -> int:
    """How deeply objects and arrays nest in `value`, counted without recursion."""
    deepest, pending = 0, [(value, 1)]
    while pending:
        item, level = pending.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, level)
            if level <= MAX_JSON_DEPTH:
                pending.extend((child, level + 1) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


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
    """The envelope, and one log line `request failed` with the code and status: WARNING for a 5xx, INFO for a 4xx
    (the runbook counts refusals by code; a 400 also names the fields it refused, never their values)."""
    if err.status >= 500:
        event(log, "request failed", logging.WARNING, code=err.code, status=err.status)
    else:
        fields = [str(entry.get("field")) for entry in err.details.get("fields", []) if isinstance(entry, dict)]
        event(
            log,
            "request failed",
            logging.INFO,
            code=err.code,
            status=err.status,
            **({"fields": fields} if fields else {}),
        )
    if isinstance(err, PayloadTooLarge):
        return unread_body_response(err.status, err.envelope())
    return with_retry_after(json_response(err.status, err.envelope()), err)


def with_retry_after(response: flask.Response, err: AppError) -> flask.Response:
    """Every 429 and 503 says when to try again (RFC 9110 Retry-After, in seconds)."""
    if isinstance(err, RateLimited | Unavailable):
        response.headers["Retry-After"] = str(max(1, err.retry_after_s))
    return response


def json_response(status: int, payload: dict[str, Any]) -> flask.Response:
    return flask.Response(json.dumps(payload), status=status, mimetype="application/json")


def unread_body_response(status: int, payload: dict[str, Any]) -> flask.Response:
    """A reply that leaves the rest of the request's body unread. functions-framework reads every body in full
    after the reply unless the reply is a stream: so it is one, of one chunk (the server then discards what is
    left of the body piece by piece, holding none of it)."""
    body = json.dumps(payload).encode()
    response = flask.Response(iter([body]), status=status, mimetype="application/json")
    response.headers["Content-Length"] = str(len(body))
    return response
