"""Signed-in apps for e2e tests, made the way the real apps make them."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from emulators import world
from emulators.simulator import App, AuthEmulator, Watch
from emulators.stack import DATABASE, LocalStack
from shared.adapters.postgres.database import Database


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


@dataclass(frozen=True)
class Pair:
    client: App
    mitra: App
    session_id: str
    request_id: str


@pytest.fixture
def paired(new_client: Callable[..., App], new_mitra: Callable[..., App], quiet_world: None) -> Callable[..., Pair]:
    """A client and a mitra in an active session, reached through the real pairing flow."""

    def make(client_name: str = "Sari", mitra_name: str = "Mitra Uji") -> Pair:
        return pair_up(new_client(client_name), new_mitra(mitra_name), {"free_trial": True})

    return make


def pair_up(client: App, mitra: App, request_body: dict[str, object]) -> Pair:
    """The client taps "Mulai Curhat", the (only available) mitra sees the offer on Firestore and accepts."""
    assert mitra.session is not None
    offers = Watch.collection(f"mitras/{mitra.session.uid}/offers")
    try:
        request = client.post("pairing_request", request_body)
        assert request.body["status"] == "searching", request.body
        offers.wait_for(lambda docs: any(path.endswith(request.body["request_id"]) for path in docs))
    finally:
        offers.close()
    accepted = mitra.post("pairing_accept", {"request_id": request.body["request_id"]})
    assert accepted.status == 200, accepted.body
    return Pair(client, mitra, accepted.body["session_id"], request.body["request_id"])


@pytest.fixture
def watches() -> Iterator[Callable[[Watch], Watch]]:
    """Firestore listeners opened by a test, closed after it."""
    opened: list[Watch] = []

    def keep(watch: Watch) -> Watch:
        opened.append(watch)
        return watch

    yield keep
    for watch in opened:
        watch.close()


@pytest.fixture
def short_tier(halo_db: Database) -> Iterator[Callable[[int], str]]:
    """A paid tier lasting seconds (as an admin could configure), so a test can watch a session run out."""
    created: list[str] = []

    def make(duration_s: int, price: int = 5000) -> str:
        tier_id = f"uji-{uuid.uuid4().hex[:8]}"
        with halo_db.transaction() as tx:
            tx.execute(
                "INSERT INTO pricing_tiers (id, duration_s, price, sort_order) VALUES (:id, :d, :p, 99)",
                {"id": tier_id, "d": duration_s, "p": price},
            )
        created.append(tier_id)
        return tier_id

    yield make
    with halo_db.transaction() as tx:
        tx.execute("UPDATE pricing_tiers SET active = false WHERE id = ANY(:ids)", {"ids": created})


def pay_checkout(stack: LocalStack, client: App, halo_db: Database, body: dict[str, object]) -> str:
    """Checkout, then pay on the Xendit stand-in's page; returns once the webhook has marked it paid."""
    opened = client.post("billing_checkout", body)
    assert opened.status == 200, opened.body
    return world.pay_invoice(halo_db, stack.ports.xendit, str(opened.body["transaction_id"]), timeout=10)


@pytest.fixture
def timed_session(
    stack: LocalStack,
    new_client: Callable[..., App],
    new_mitra: Callable[..., App],
    short_tier: Callable[[int], str],
    halo_db: Database,
    quiet_world: None,
) -> Callable[[int], Pair]:
    """A paid session of `duration_s` seconds, bought, paid and paired through the real flow."""

    def make(duration_s: int) -> Pair:
        tier_id = short_tier(duration_s)
        mitra = new_mitra()
        client = new_client()
        pay_checkout(stack, client, halo_db, {"tier_id": tier_id, "purpose": "session"})
        return pair_up(client, mitra, {"tier_id": tier_id})

    return make
