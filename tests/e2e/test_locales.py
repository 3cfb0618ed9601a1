"""Two languages end to end: a person's `locale` (a client's in `client_profile`, a mitra's at `mitra_login`;
Indonesian until chosen) decides the language of the pushes the FCM stand-in receives for their devices, while a
session's system messages carry every language in their Firestore document."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from emulators.simulator import App, Watch
from emulators.stack import LocalStack
from tests.support import people
from tests.support.delivery import pushes_to, register_device
from tests.support.people import Pair, Stage, pair_up

pytestmark = pytest.mark.needs_gcloud


def _push(stack_token: tuple[LocalStack, str], kind: str, *, timeout: float = 15) -> dict[str, Any]:
    """The first push of this type the device received, waited for."""
    stack, token = stack_token
    deadline = time.monotonic() + timeout
    while True:
        found = [p for p in pushes_to(stack, token, timeout=0) if p["data"].get("type") == kind]
        if found or time.monotonic() > deadline:
            assert found, f"no {kind} push reached {token}"
            return found[0]
        time.sleep(0.1)


def _paired_once_offered(stack: LocalStack, client: App, mitra: App, mitra_token: str) -> tuple[Pair, dict[str, Any]]:
    """Paired, the mitra accepting once the offer's push reached their phone (a push still on its way when the
    request is taken is not sent: shared/domain/notify.py `offered_request`); the pair, and that push."""
    pushed: list[dict[str, Any]] = []
    pair = pair_up(
        client,
        mitra,
        {"free_trial": True},
        before_accept=lambda _: pushed.append(_push((stack, mitra_token), "pairing_offer")),
    )
    return pair, pushed[0]


def test_a_client_who_chose_english_gets_english_pushes_and_the_mitra_keeps_indonesian(
    stack: LocalStack,
    new_client: Callable[..., App],
    new_mitra: Callable[..., App],
    app_config: Callable[..., None],
    quiet_world: None,
) -> None:
    app_config(early_end_client=True)
    mitra, client = new_mitra(), new_client()
    assert client.get("client_profile").body["locale"] == "id", "Indonesian by default"
    chose = client.post("client_profile", {"locale": "en"})
    assert chose.status == 200 and chose.body["locale"] == "en", chose.body
    assert client.get("client_profile").body["locale"] == "en"
    client_token, mitra_token = register_device(client), register_device(mitra)

    pair, offer = _paired_once_offered(stack, client, mitra, mitra_token)

    matched = _push((stack, client_token), "matched")
    assert matched["notification"]["title"] == "Your Bestie is ready"
    assert matched["notification"]["body"].endswith("is ready to listen")
    assert offer["notification"]["title"] == "Ada yang ingin curhat", "the mitra never chose: Indonesian"
    assert pair.client.post("session_end", {"session_id": pair.session_id}).status == 200
    closing = _push((stack, client_token), "session_closing")
    assert closing["notification"] == {"title": "The session has ended", "body": "Say your goodbyes"}
    assert _push((stack, mitra_token), "session_closing")["notification"]["title"] == "Sesi berakhir"


def test_a_mitra_chooses_english_at_sign_in(
    stack: LocalStack, stage: Stage, new_client: Callable[..., App], new_mitra: Callable[..., App], quiet_world: None
) -> None:
    mitra = new_mitra()
    chose = mitra.post("mitra_login", {"locale": "en"})
    assert chose.status == 200 and chose.body["locale"] == "en", chose.body
    client = new_client()
    mitra_token, client_token = register_device(mitra), register_device(client)

    _, offer = _paired_once_offered(stack, client, mitra, mitra_token)

    assert offer["notification"]["title"] == "Someone wants to talk"
    assert "minutes" in offer["notification"]["body"]
    assert _push((stack, client_token), "matched")["notification"]["title"] == "Bestie kamu sudah siap"
    assert mitra.post("mitra_login").body["locale"] == "en", "kept by a sign-in that names none"


def test_a_locale_we_do_not_have_is_a_400_naming_it(
    new_client: Callable[..., App], new_mitra: Callable[..., App]
) -> None:
    client, mitra = new_client(), new_mitra(online=False)

    for reply in (client.post("client_profile", {"locale": "fr"}), mitra.post("mitra_login", {"locale": 7})):
        assert reply.status == 400 and "locale" in str(reply.body), reply.body
    assert client.get("client_profile").body["locale"] == "id"


def test_a_sessions_system_message_carries_every_language_and_the_english_client_is_warned_in_english(
    stack: LocalStack,
    stage: Stage,
    new_client: Callable[..., App],
    new_mitra: Callable[..., App],
    short_tier: Callable[[int], str],
    quiet_world: None,
) -> None:
    tier_id = short_tier(3)
    mitra, client = new_mitra(), new_client()
    assert client.post("client_profile", {"locale": "en"}).status == 200
    client_token = register_device(client)
    people.pay_checkout(client, stage.db, stage.xendit_port, {"tier_id": tier_id, "purpose": "session"}, timeout=10)

    pair = pair_up(client, mitra, {"tier_id": tier_id})
    messages = Watch.collection(f"sessions/{pair.session_id}/messages")
    try:
        docs = messages.wait_for(lambda found: any(d.get("kind") == "system" for d in found.values()), timeout=15)
    finally:
        messages.close()

    (warning,) = [d for d in docs.values() if d["kind"] == "system"]
    assert warning["text_key"] in {"system.time_left_minutes", "system.time_left_seconds"}
    assert warning["text"].startswith("Sesi tinggal"), "text stays Indonesian, as apps read it before"
    assert warning["text_by_locale"]["id"] == warning["text"]
    assert "left in this session" in warning["text_by_locale"]["en"]
    pushed = _push((stack, client_token), "session_warning")
    assert pushed["notification"]["title"] == "Your session is almost over"
