"""Hostile requests through the gateway, as a stranger on the internet would send them: bodies over the limit are 413
before they are read, JSON nested thousands deep is a 400, and the internal functions (task handlers, Pub/Sub push
handlers) answer 401 to anyone without Google's token for them, while the real flows (Cloud Tasks timers and
Pub/Sub pushes, signed by the local stack as Google signs them) keep working."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from emulators.pubsub_wiring import push_endpoint
from emulators.simulator import App
from emulators.stack import PROJECT, XENDIT_CALLBACK_TOKEN, LocalStack
from functions._replies import MAX_BODY_BYTES, MAX_EVENT_BODY_BYTES, MAX_JSON_DEPTH
from functions.manifest import BY_NAME

pytestmark = pytest.mark.needs_gcloud

HUGE = 8 * 1024 * 1024


def _zeros(size: int, chunk: int = 256 * 1024) -> Iterator[bytes]:
    """A body sent chunked (no Content-Length), as a client streaming an upload sends it."""
    sent = 0
    while sent < size:
        part = min(chunk, size - sent)
        sent += part
        yield b"0" * part


def _deep(depth: int) -> bytes:
    return b'{"display_name": ' + b"[" * depth + b"]" * depth + b"}"


def _envelope(data: bytes) -> dict[str, Any]:
    return {
        "message": {"data": base64.b64encode(data).decode(), "messageId": uuid.uuid4().hex, "attributes": {}},
        "subscription": f"projects/{PROJECT}/subscriptions/notify--on_notify",
    }


@pytest.mark.parametrize("function", ["client_register", "chat_send", "xendit_webhook", "task_session_expire"])
def test_a_huge_body_is_refused_with_413_naming_the_limit(stack: LocalStack, function: str) -> None:
    url = f"{stack.functions_url}/{function}"

    declared = requests.post(url, data=b"0" * HUGE, headers={"Content-Type": "application/json"}, timeout=60)
    chunked = requests.post(url, data=_zeros(HUGE), headers={"Content-Type": "application/json"}, timeout=60)

    for reply in (declared, chunked):
        assert reply.status_code == 413, reply.text
        assert reply.json() == {
            "error": {
                "code": "payload_too_large",
                "message": f"the body is larger than {MAX_BODY_BYTES} bytes",
                "fields": [{"field": "body", "problem": "too large"}],
                "limit_bytes": MAX_BODY_BYTES,
            }
        }
    # The connection was kept, the rest of the body discarded: the next call on it is answered.
    session = requests.Session()
    assert session.post(url, data=_zeros(HUGE), timeout=60).status_code == 413
    assert session.get(f"{stack.functions_url}/pricing_quote", timeout=10).status_code == 401


def test_a_huge_push_to_an_event_function_is_refused_with_413(stack: LocalStack) -> None:
    url = push_endpoint(stack.functions_url, "on_notify", PROJECT, "notify")

    reply = requests.post(url, data=_zeros(2 * MAX_EVENT_BODY_BYTES), timeout=60)

    assert reply.status_code == 413
    assert reply.json()["error"]["limit_bytes"] == MAX_EVENT_BODY_BYTES


def test_json_nested_thousands_deep_is_a_400_naming_the_body(stack: LocalStack, new_client: Callable[..., App]) -> None:
    client = new_client()
    assert client.session is not None
    headers = {"Authorization": f"Bearer {client.session.id_token}", "Content-Type": "application/json"}
    webhook = {"x-callback-token": XENDIT_CALLBACK_TOKEN, "Content-Type": "application/json"}

    replies = [
        requests.post(f"{stack.functions_url}/client_profile", data=_deep(depth), headers=headers, timeout=10)
        for depth in (MAX_JSON_DEPTH, 20_000)
    ]
    replies.append(requests.post(f"{stack.functions_url}/xendit_webhook", data=_deep(20_000), headers=webhook))

    for reply in replies:
        assert reply.status_code == 400, reply.text
        assert reply.json()["error"]["code"] == "invalid_request"
        assert reply.json()["error"]["fields"] == [
            {"field": "body", "problem": f"nested deeper than {MAX_JSON_DEPTH} levels"}
        ]
    assert client.get("client_profile").status == 200, "the instance is whole"


@pytest.mark.parametrize("function", ["task_session_expire", "task_project_outbox", "task_payment_timeout"])
def test_a_task_handler_called_directly_is_401_without_the_tasks_invokers_token_for_it(
    stack: LocalStack, function: str
) -> None:
    url = f"{stack.functions_url}/{function}"
    other_handler = "task_session_warning" if function != "task_session_warning" else "task_session_close"
    wrong = [
        {},
        {"Authorization": "Bearer not-a-token"},
        {"Authorization": f"Bearer {stack.caller_token(other_handler)}"},  # another handler's audience
        {"Authorization": f"Bearer {stack.caller_token(function, email='intruder@example.com')}"},
        {"Authorization": f"Bearer {stack.caller_token('on_notify', audience=f'{stack.functions_url}/{function}')}"},
    ]

    for headers in wrong:
        reply = requests.post(url, json={"session_id": str(uuid.uuid4()), "ids": [1]}, headers=headers, timeout=10)
        assert (reply.status_code, reply.json()["error"]["code"]) == (401, "unauthenticated"), headers


def test_a_pubsub_handler_called_directly_is_401_and_the_signed_push_goes_through(stack: LocalStack) -> None:
    spec = BY_NAME["on_notify"]
    assert spec.topic is not None
    direct = push_endpoint(stack.functions_url, "on_notify", PROJECT, spec.topic)
    # An unparseable message: a caller that passes is acknowledged and nothing is pushed.
    envelope = _envelope(b"not json")

    unsigned = requests.post(direct, json=envelope, timeout=10)
    tasks_token = requests.post(
        direct, json=envelope, headers={"Authorization": f"Bearer {stack.caller_token('task_project_outbox')}"}
    )
    relayed = requests.post(push_endpoint(stack.relay_url, "on_notify", PROJECT, spec.topic), json=envelope)

    assert (unsigned.status_code, unsigned.json()["error"]["code"]) == (401, "unauthenticated")
    assert tasks_token.status_code == 401
    assert relayed.status_code == 200, relayed.text


def test_the_certificates_the_functions_verify_against_are_served_as_googles_are(stack: LocalStack) -> None:
    certs = requests.get(f"{stack.relay_url}/oauth2/v1/certs", timeout=10)

    assert certs.status_code == 200
    assert "max-age=" in certs.headers["Cache-Control"]
    assert all(pem.startswith("-----BEGIN CERTIFICATE-----") for pem in json.loads(certs.content).values())
