"""Signed-in apps for e2e tests, made the way the real apps make them."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest

from emulators.simulator import App, AuthEmulator
from emulators.stack import LocalStack


@pytest.fixture
def new_client(stack: LocalStack, auth: AuthEmulator) -> Callable[..., App]:
    """A fresh Google user registered as a client, token refreshed to carry the role claim."""

    def make(display_name: str = "Sari") -> App:
        app = App(stack.functions_url, auth.sign_in_with_google(f"{uuid.uuid4().hex[:10]}@example.com", display_name))
        reply = app.post("client_register", {"display_name": display_name})
        assert reply.status == 200, reply.body
        assert app.session is not None
        app.session.refresh()
        return app

    return make


@pytest.fixture
def seeded_mitra(stack: LocalStack, auth: AuthEmulator) -> Callable[[int], App]:
    """One of the three seeded mitras (1..3), signed in by phone OTP and logged in."""

    def make(number: int) -> App:
        app = App(stack.functions_url, auth.sign_in_with_phone(f"+628110000000{number}"))
        reply = app.post("mitra_login")
        assert reply.status == 200, reply.body
        assert app.session is not None
        app.session.refresh()
        return app

    return make
