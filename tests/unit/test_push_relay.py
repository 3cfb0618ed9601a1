"""The local stack's push relay (emulators/push_relay.py): every push it forwards carries a token the event functions
accept, from the first push after the machine booted on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from emulators.oidc_issuer import LocalIssuer, ensure_key
from emulators.push_relay import Relay
from shared.adapters.google_oidc import OidcVerifier

PUSH = "eventarc@demo-halo.iam.gserviceaccount.com"
FUNCTIONS = "http://127.0.0.1:5001"


class CountingIssuer(LocalIssuer):
    def __init__(self, key_path: Path) -> None:
        super().__init__(key_path)
        self.issued = 0

    def token(self, *, email: str, audience: str, now: float | None = None, **claims: Any) -> str:
        self.issued += 1
        return super().token(email=email, audience=audience, now=now, **claims)


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def issuer(tmp_path_factory: pytest.TempPathFactory) -> CountingIssuer:
    return CountingIssuer(ensure_key(tmp_path_factory.mktemp("oidc") / "key.pem"))


def _verified(issuer: LocalIssuer, token: str, audience: str) -> dict[str, Any]:
    verifier = OidcVerifier("http://certs.local", fetch=lambda _url: (issuer.certs(), 300))
    return dict(verifier.verify(token, audience=lambda aud: aud == audience, email=PUSH))


@pytest.mark.parametrize("uptime_s", [0.5, 60.0, 10_000.0])
def test_the_first_push_carries_a_valid_token_however_long_the_machine_has_been_up(
    issuer: CountingIssuer, uptime_s: float
) -> None:
    # The monotonic clock counts from boot: a relay on a machine up for less than the reuse window (45 minutes) once
    # sent every push with an empty bearer, and every event function answered 401.
    relay = Relay(issuer, FUNCTIONS, PUSH, clock=Clock(uptime_s))

    token = relay.token_for("on_chat_message")

    claims = _verified(issuer, token, f"{FUNCTIONS}/on_chat_message")
    assert claims["email"] == PUSH


def test_a_token_is_reused_per_function_for_45_minutes_then_made_again(issuer: CountingIssuer) -> None:
    clock = Clock(1.0)
    relay = Relay(issuer, FUNCTIONS, PUSH, clock=clock)
    before = issuer.issued

    first = relay.token_for("on_notify")
    clock.now += 45 * 60
    assert relay.token_for("on_notify") == first
    other = relay.token_for("on_chat_message")
    clock.now += 1
    renewed = relay.token_for("on_notify")

    assert issuer.issued - before == 3, "one for on_notify, one for on_chat_message, one on_notify renewal"
    assert other != first
    assert _verified(issuer, renewed, f"{FUNCTIONS}/on_notify")["email"] == PUSH
