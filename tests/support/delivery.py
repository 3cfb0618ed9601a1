"""What Google's services deliver to the functions, and what FCM received, as e2e tests need them: a Pub/Sub push
(a scheduler's tick or a redelivered event) through the stack's relay, which signs it as Pub/Sub's push does, and the
FCM stand-in's record of the pushes a device got."""

from __future__ import annotations

import base64
import json
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import requests

from emulators.pubsub_wiring import push_endpoint
from emulators.simulator import App
from emulators.stack import PROJECT, LocalStack
from functions.manifest import BY_NAME


def push_event(stack: LocalStack, function: str, data: dict[str, Any] | None = None) -> requests.Response:
    """One Pub/Sub push of `data` to `function`, exactly as its subscription pushes it (a direct call is 401)."""
    topic = BY_NAME[function].topic
    assert topic is not None, f"{function} is not a Pub/Sub function"
    envelope: dict[str, Any] = {
        "message": {
            "data": base64.b64encode(json.dumps(data or {}).encode()).decode(),
            "messageId": uuid.uuid4().hex,
            "publishTime": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            "attributes": {},
        },
        "subscription": f"projects/{PROJECT}/subscriptions/{topic}--{function}",
    }
    return requests.post(push_endpoint(stack.relay_url, function, PROJECT, topic), json=envelope, timeout=60)


def register_device(app: App) -> str:
    """A device token of this app's user, registered for pushes."""
    assert app.session is not None
    token = f"fcm-token-{app.session.uid}-{uuid.uuid4().hex[:8]}"
    assert app.post("devices_register", {"token": token, "platform": "android"}).status == 200
    return token


def pushes_to(stack: LocalStack, token: str, *, at_least: int = 1, timeout: float = 15) -> list[dict[str, Any]]:
    """What the FCM stand-in received for this device, once at least `at_least` arrived (or the time is up)."""
    sink = f"http://127.0.0.1:{stack.ports.fcm}/_sink/messages"
    deadline = time.monotonic() + timeout
    while True:
        messages = requests.get(sink, params={"token": token}, timeout=5).json()["messages"]
        if len(messages) >= at_least or time.monotonic() > deadline:
            return [message["message"] for message in messages]
        time.sleep(0.1)
