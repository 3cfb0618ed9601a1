"""Signed-in apps for e2e tests, made the way the real apps make them."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator

import pytest

from emulators.simulator import App, AuthEmulator
from emulators.stack import DATABASE, LocalStack
from shared.adapters.db import Database


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


@pytest.fixture
def halo_db(stack: LocalStack) -> Iterator[Database]:
    """The database the gateway serves, for arranging what no function offers yet and for checking the record."""
    database = Database(lambda: stack.postgres.connect(DATABASE), max_idle=2)
    yield database
    database.close()


@pytest.fixture
def quiet_world(halo_db: Database) -> None:
    """Every earlier test's mitra offline and every earlier search ended, so offers go only to this test's mitras."""
    with halo_db.transaction() as tx:
        tx.execute("UPDATE mitras SET presence = 'offline' WHERE presence = 'online'")
        tx.execute("UPDATE pairing_requests SET status = 'cancelled', ended_at = now() WHERE status = 'searching'")
        tx.execute("UPDATE pairing_offers SET status = 'withdrawn' WHERE status = 'offered'")


@pytest.fixture
def app_config(halo_db: Database) -> Iterator[Callable[..., None]]:
    """Change settings for one test (as the control center would); restored afterwards."""
    saved: dict[str, object] = {}

    def change(**values: object) -> None:
        with halo_db.transaction() as tx:
            for key, value in values.items():
                if key not in saved:
                    saved[key] = tx.scalar("SELECT value FROM app_config WHERE key = :key", {"key": key})
                tx.execute(
                    "UPDATE app_config SET value = CAST(:value AS jsonb) WHERE key = :key",
                    {"key": key, "value": json.dumps(value)},
                )

    yield change
    with halo_db.transaction() as tx:
        for key, value in saved.items():
            tx.execute(
                "UPDATE app_config SET value = CAST(:value AS jsonb) WHERE key = :key",
                {"key": key, "value": json.dumps(value)},
            )


@pytest.fixture
def new_mitra(stack: LocalStack, auth: AuthEmulator, halo_db: Database) -> Callable[..., App]:
    """A mitra registered for this test (as an admin would), signed in by phone OTP, logged in, and online."""

    def make(name: str = "Mitra Uji", online: bool = True) -> App:
        phone = f"+62813{uuid.uuid4().int % 10**8:08d}"
        with halo_db.transaction() as tx:
            tx.execute("INSERT INTO mitras (phone, display_name) VALUES (:p, :n)", {"p": phone, "n": name})
        app = App(stack.functions_url, auth.sign_in_with_phone(phone))
        assert app.post("mitra_login").status == 200
        assert app.session is not None
        app.session.refresh()
        if online:
            assert app.post("mitra_set_status", {"status": "online"}).status == 200
        return app

    return make
