"""Hostile requests are refused early: a body over the limit before it is read (by our code or functions-framework's),
JSON nested thousands deep as a 400, and every 503 and 429 says when to retry. Driven through real Flask requests and
functions-framework apps built from main.py, as an instance builds them; no stack is needed."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import flask
import functions_framework
import pytest
from werkzeug.test import EnvironBuilder

from functions._http import parse
from functions._replies import (
    MAX_BODY_BYTES,
    MAX_EVENT_BODY_BYTES,
    MAX_JSON_DEPTH,
    error_response,
    read_body,
    read_json_object,
)
from shared.adapters.postgres.database import RETRY_AFTER_S
from shared.errors import InvalidRequest, PayloadTooLarge, RateLimited, Unavailable
from shared.schemas import Model

ROOT = Path(__file__).resolve().parents[2]
HUGE = 32 * 1024 * 1024


class Greeting(Model):
    name: str


class Tripwire(io.RawIOBase):
    """A body of `size` bytes that counts what was read of it, without holding any of it."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.read_bytes = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        n = min(len(buffer), self.size - self.read_bytes)
        buffer[:n] = b" " * n
        self.read_bytes += n
        return n


def _environ(body: Tripwire | bytes, *, chunked: bool = False, path: str = "/fn") -> dict[str, Any]:
    environ = EnvironBuilder(path=path, method="POST", content_type="application/json").get_environ()
    environ["wsgi.input"] = io.BytesIO(body) if isinstance(body, bytes) else io.BufferedReader(body)
    if chunked:  # as gunicorn hands a chunked body over: no length, the input ends where the body ends
        environ.pop("CONTENT_LENGTH", None)
        environ["wsgi.input_terminated"] = True
    else:
        environ["CONTENT_LENGTH"] = str(body.size if isinstance(body, Tripwire) else len(body))
    return environ


def _request(body: Tripwire | bytes, *, chunked: bool = False) -> flask.Request:
    return flask.Request(_environ(body, chunked=chunked))


# -- the body, bounded -------------------------------------------------------------------------------------------


def test_a_declared_length_over_the_limit_is_refused_without_reading_a_byte() -> None:
    body = Tripwire(HUGE)

    with pytest.raises(PayloadTooLarge) as raised:
        read_body(_request(body))

    assert body.read_bytes == 0
    assert raised.value.status == 413
    assert raised.value.envelope()["error"] == {
        "code": "payload_too_large",
        "message": f"the body is larger than {MAX_BODY_BYTES} bytes",
        "fields": [{"field": "body", "problem": "too large"}],
        "limit_bytes": MAX_BODY_BYTES,
    }


def test_a_chunked_body_is_read_only_up_to_the_limit_then_refused() -> None:
    body = Tripwire(HUGE)

    with pytest.raises(PayloadTooLarge):
        read_body(_request(body, chunked=True))

    # Buffered reads may run a little ahead, never far.
    assert MAX_BODY_BYTES < body.read_bytes <= MAX_BODY_BYTES + io.DEFAULT_BUFFER_SIZE + 1


def test_a_chunked_body_within_the_limit_is_read_whole_and_once() -> None:
    data = json.dumps({"name": "Sari"}).encode()
    request = _request(data, chunked=True)

    assert read_body(request) == data
    assert read_body(request) == data, "kept for the rest of the request"
    assert read_json_object(request) == (data, {"name": "Sari"})


def test_a_body_at_the_limit_is_read() -> None:
    assert len(read_body(_request(Tripwire(MAX_BODY_BYTES)))) == MAX_BODY_BYTES


# -- JSON nested thousands deep ------------------------------------------------------------------------------------


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 5_000, 30_000])
def test_json_nested_too_deep_is_a_400_naming_the_body(depth: int) -> None:
    data = b'{"name": ' + b"[" * depth + b"]" * depth + b"}"
    assert len(data) <= MAX_BODY_BYTES

    with pytest.raises(InvalidRequest) as raised:
        parse(_request(data), Greeting)

    assert raised.value.status == 400
    assert raised.value.details["fields"] == [
        {"field": "body", "problem": f"nested deeper than {MAX_JSON_DEPTH} levels"}
    ]


def test_json_as_deep_as_the_limit_is_parsed_and_then_judged_by_the_model() -> None:
    inner = MAX_JSON_DEPTH - 1  # the object itself is the first level
    data = b'{"name": ' + b"[" * inner + b"]" * inner + b"}"

    with pytest.raises(InvalidRequest) as raised:
        parse(_request(data), Greeting)

    assert [field["field"] for field in raised.value.details["fields"]] == ["name"]


# -- when to retry ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("err", "retry_after"),
    [
        (Unavailable("Firestore did not answer"), "1"),
        (Unavailable("the database refused a connection", retry_after_s=RETRY_AFTER_S), str(RETRY_AFTER_S)),
        (RateLimited("slow down", retry_after_s=30), "30"),
    ],
)
def test_every_503_and_429_says_when_to_retry(err: Unavailable | RateLimited, retry_after: str) -> None:
    response = error_response(err)

    assert response.status_code in (429, 503)
    assert response.headers["Retry-After"] == retry_after


# -- through functions-framework, as an instance serves them -----------------------------------------------------


@pytest.fixture(scope="module")
def apps() -> Iterator[dict[str, flask.Flask]]:
    """Apps built from main.py the way functions-framework builds a deployed instance's."""
    built = {
        name: functions_framework.create_app(name, str(ROOT / "main.py"), signature)
        for name, signature in (
            ("client_profile", "http"),
            ("task_project_outbox", "http"),
            ("xendit_webhook", "http"),
            ("outbox_sweep", "cloudevent"),
        )
    }
    yield built


def _post(app: flask.Flask, body: Tripwire, *, chunked: bool = False, path: str = "/") -> tuple[int, dict[str, Any]]:
    """The app called as the WSGI server calls it."""
    started: list[str] = []
    chunks = app(_environ(body, chunked=chunked, path=path), lambda status, headers, *_: started.append(status))
    data = b"".join(chunks)
    return int(started[0].split()[0]), json.loads(data)


@pytest.mark.parametrize("function", ["client_profile", "task_project_outbox", "xendit_webhook"])
def test_a_function_refuses_a_huge_body_before_anyone_reads_it(apps: dict[str, flask.Flask], function: str) -> None:
    declared, chunked = Tripwire(HUGE), Tripwire(HUGE)

    status, body = _post(apps[function], declared)
    chunked_status, _ = _post(apps[function], chunked, chunked=True)

    assert (status, body["error"]["code"], body["error"]["limit_bytes"]) == (413, "payload_too_large", MAX_BODY_BYTES)
    assert declared.read_bytes == 0, "neither the function nor functions-framework read the body"
    assert chunked_status == 413
    assert chunked.read_bytes <= MAX_BODY_BYTES + 64 * 1024


def test_an_event_functions_app_refuses_a_huge_push_before_functions_framework_reads_it(
    apps: dict[str, flask.Flask],
) -> None:
    declared, chunked = Tripwire(HUGE), Tripwire(HUGE)
    path = "/projects/demo-halo/topics/outbox-sweep"

    status, body = _post(apps["outbox_sweep"], declared, path=path)
    chunked_status, chunked_body = _post(apps["outbox_sweep"], chunked, chunked=True, path=path)

    assert (status, body["error"]["limit_bytes"]) == (413, MAX_EVENT_BODY_BYTES)
    assert declared.read_bytes == 0
    assert (chunked_status, chunked_body["error"]["code"]) == (413, "payload_too_large")
    assert chunked.read_bytes <= MAX_EVENT_BODY_BYTES + 64 * 1024
