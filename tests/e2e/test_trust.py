"""What leaves the building, and who a phone number lets in, end to end: pushes show no words unless the client opted
in and never a client's real name where anonymity applies; a crisis signal nobody is on duty for is escalated; a
mitra's phone on a new Firebase account waits for an admin; a client's takeover does not open the past."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
import requests

from emulators.simulator import App
from emulators.stack import LocalStack
from tests.support.people import Pair

pytestmark = pytest.mark.needs_gcloud


def _uid(app: App) -> str:
    assert app.session is not None
    return app.session.uid


def _register_device(app: App) -> str:
    token = f"fcm-token-{_uid(app)}-{uuid.uuid4().hex[:8]}"
    assert app.post("devices_register", {"token": token, "platform": "android"}).status == 200
    return token


def _pushes(stack: LocalStack, token: str, *, at_least: int = 1, timeout: float = 15) -> list[dict[str, Any]]:
    """What the FCM stand-in received for this device, once at least `at_least` arrived (or the time is up)."""
    sink = f"http://127.0.0.1:{stack.ports.fcm}/_sink/messages"
    deadline = time.monotonic() + timeout
    while True:
        messages = requests.get(sink, params={"token": token}, timeout=5).json()["messages"]
        if len(messages) >= at_least or time.monotonic() > deadline:
            return [message["message"] for message in messages]
        time.sleep(0.1)


def _send(app: App, session_id: str, text: str) -> str:
    reply = app.post("chat_send", {"session_id": session_id, "client_message_id": str(uuid.uuid4()), "text": text})
    assert reply.status == 200, reply.body
    return str(reply.body["message_id"])


def _message_push(stack: LocalStack, token: str, message_id: str, *, timeout: float = 15) -> dict[str, Any]:
    """The one push this device received for this message, waited for."""
    deadline = time.monotonic() + timeout
    while True:
        found = [p for p in _pushes(stack, token, timeout=0) if p["data"].get("message_id") == message_id]
        if found or time.monotonic() > deadline:
            (push,) = found
            return push
        time.sleep(0.1)


# -- pushes ----------------------------------------------------------------------------------------------------------


def test_pushes_show_no_words_by_default_and_the_client_s_own_only_when_they_opt_in(
    stack: LocalStack, paired: Callable[..., Pair]
) -> None:
    pair = paired()
    client_token, mitra_token = _register_device(pair.client), _register_device(pair.mitra)
    assert pair.client.get("client_profile").body["push_previews"] is False, "off by default"

    to_mitra = _send(pair.client, pair.session_id, "aku capek banget sama semuanya")
    to_client = _send(pair.mitra, pair.session_id, "aku dengar kamu, ceritakan pelan-pelan")
    for token, message_id in ((mitra_token, to_mitra), (client_token, to_client)):
        push = _message_push(stack, token, message_id)
        assert push["notification"] == {"title": "Halo Bestie", "body": "Pesan baru"}
        assert "capek" not in str(push) and "dengar" not in str(push)

    opted = pair.client.post("client_profile", {"push_previews": True})
    assert opted.status == 200 and opted.body["push_previews"] is True, opted.body
    assert pair.client.get("client_profile").body["push_previews"] is True
    shown = _send(pair.mitra, pair.session_id, "kamu sudah makan hari ini?")
    hidden = _send(pair.client, pair.session_id, "belum, ga nafsu")

    assert _message_push(stack, client_token, shown)["notification"]["body"] == ("kamu sudah makan hari ini?")
    push = _message_push(stack, mitra_token, hidden)
    assert push["notification"]["body"] == "Pesan baru", "a mitra's lock screen never shows a client's words"

    off = pair.client.post("client_profile", {"push_previews": False})
    assert off.status == 200 and off.body["push_previews"] is False
    again = _send(pair.mitra, pair.session_id, "oke, nanti makan ya")
    assert _message_push(stack, client_token, again)["notification"]["body"] == "Pesan baru"

    bad = pair.client.post("client_profile", {"push_previews": "yes please"})
    assert bad.status == 400 and "push_previews" in str(bad.body), bad.body


def test_a_mitra_s_offer_push_never_shows_an_anonymous_client_s_real_name(
    stack: LocalStack, new_client: Callable[..., App], new_mitra: Callable[..., App], quiet_world: None
) -> None:
    mitra = new_mitra()
    token = _register_device(mitra)
    client = new_client("Ratna Kusumawardani")
    hidden = client.post("client_profile", {"anonymous": True})
    assert hidden.status == 200, hidden.body
    alias = hidden.body["alias"]

    request = client.post("pairing_request", {"free_trial": True})
    assert request.status == 200 and request.body["status"] == "searching", request.body

    (push,) = [p for p in _pushes(stack, token) if p["data"]["type"] == "pairing_offer"]
    assert alias in push["notification"]["body"]
    assert "Ratna" not in str(push) and "Kusumawardani" not in str(push)
    assert client.post("pairing_cancel", {"request_id": request.body["request_id"]}).status == 200
