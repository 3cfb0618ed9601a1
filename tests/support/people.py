"""People on a running stack, made the way the apps make them, for e2e tests and benchmarks alike.

Clients sign in through the Auth emulator and register through the gateway; mitras are registered with SQL (as an
admin would) and then sign in by phone OTP; a pair reaches its session through the real pairing flow, the mitra
seeing the offer on a Firestore listener before accepting.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from emulators.simulator import App, AuthEmulator, Reply, Watch
from shared.adapters.postgres.database import Database
from tests.support import world


@dataclass(frozen=True)
class Stage:
    """Where people are made: the gateway, the Auth emulator and the database the gateway serves."""

    functions_url: str
    auth: AuthEmulator
    db: Database
    xendit_port: int


@dataclass(frozen=True)
class Pair:
    client: App
    mitra: App
    session_id: str
    request_id: str


def ok(reply: Reply, what: str) -> Any:
    """The body of a 200 reply; anything else is an error naming the call."""
    if reply.status != 200:
        raise RuntimeError(f"{what}: HTTP {reply.status} {reply.body}")
    return reply.body


def new_client(stage: Stage, name: str = "Sari") -> App:
    """A fresh Google user registered as a client, token refreshed to carry the role claim."""
    app = App(stage.functions_url, stage.auth.sign_in_with_google(f"{uuid.uuid4().hex[:10]}@example.com", name))
    ok(app.post("client_register", {"display_name": name}), "client_register")
    assert app.session is not None
    app.session.refresh()
    return app


def seeded_mitra(stage: Stage, number: int) -> App:
    """One of the three seeded mitras (1..3), signed in by phone OTP and logged in."""
    app = App(stage.functions_url, stage.auth.sign_in_with_phone(f"+628110000000{number}"))
    ok(app.post("mitra_login"), "mitra_login")
    assert app.session is not None
    app.session.refresh()
    return app


def new_mitra(stage: Stage, name: str = "Mitra Uji", *, online: bool = True) -> App:
    """A mitra registered with SQL (as an admin would), signed in by phone OTP, logged in, and online."""
    phone = f"+62813{uuid.uuid4().int % 10**8:08d}"
    with stage.db.transaction() as tx:
        tx.execute("INSERT INTO mitras (phone, display_name) VALUES (:p, :n)", {"p": phone, "n": name})
    app = App(stage.functions_url, stage.auth.sign_in_with_phone(phone))
    ok(app.post("mitra_login"), "mitra_login")
    assert app.session is not None
    app.session.refresh()
    if online:
        ok(app.post("mitra_set_status", {"status": "online"}), "mitra_set_status")
    return app


def account_id(db: Database, app: App) -> str:
    """The client's or mitra's row id of a signed-in app."""
    assert app.session is not None
    with db.transaction() as tx:
        found = tx.scalar(
            """SELECT id::text FROM clients WHERE firebase_uid = :uid
               UNION ALL SELECT id::text FROM mitras WHERE firebase_uid = :uid LIMIT 1""",
            {"uid": app.session.uid},
        )
    return str(found)


def quiet_world(db: Database) -> None:
    """Every earlier mitra offline and every open search ended, so offers go only to the caller's own mitras."""
    with db.transaction() as tx:
        tx.execute("UPDATE mitras SET presence = 'offline' WHERE presence = 'online'")
        tx.execute("UPDATE pairing_requests SET status = 'cancelled', ended_at = now() WHERE status = 'searching'")
        tx.execute("UPDATE pairing_offers SET status = 'withdrawn' WHERE status = 'offered'")


def pair_up(
    client: App,
    mitra: App,
    request_body: dict[str, object],
    *,
    timeout: float = 20,
    before_accept: Callable[[str], object] | None = None,
) -> Pair:
    """The client taps "Mulai Curhat", the (only available) mitra sees the offer on Firestore and accepts; first
    `before_accept(request_id)`, when given (say, waiting for the offer's push to reach the mitra's phone)."""
    assert mitra.session is not None
    offers = Watch.collection(f"mitras/{mitra.session.uid}/offers")
    try:
        request = ok(client.post("pairing_request", request_body), "pairing_request")
        if request["status"] != "searching":
            raise RuntimeError(f"pairing_request: {request}")
        offers.wait_for(lambda docs: any(path.endswith(request["request_id"]) for path in docs), timeout=timeout)
    finally:
        offers.close()
    if before_accept is not None:
        before_accept(request["request_id"])
    accepted = ok(mitra.post("pairing_accept", {"request_id": request["request_id"]}), "pairing_accept")
    return Pair(client, mitra, accepted["session_id"], request["request_id"])


def pay_checkout(client: App, db: Database, xendit_port: int, body: dict[str, object], *, timeout: float = 15) -> str:
    """Checkout, then pay on the Xendit stand-in's page; returns once the webhook has marked it paid."""
    opened = ok(client.post("billing_checkout", body), "billing_checkout")
    return world.pay_invoice(db, xendit_port, str(opened["transaction_id"]), timeout=timeout)


def add_tier(db: Database, duration_s: int, price: int = 5000, *, prefix: str = "uji") -> str:
    """A paid tier lasting seconds (as an admin could configure), so a session can be watched running out."""
    tier_id = f"{prefix}-{uuid.uuid4().hex[:8]}"
    with db.transaction() as tx:
        tx.execute(
            "INSERT INTO pricing_tiers (id, duration_s, price, sort_order) VALUES (:id, :d, :p, 99)",
            {"id": tier_id, "d": duration_s, "p": price},
        )
    return tier_id


def retire_tiers(db: Database, tier_ids: Sequence[str]) -> None:
    if tier_ids:
        with db.transaction() as tx:
            tx.execute("UPDATE pricing_tiers SET active = false WHERE id = ANY(:ids)", {"ids": list(tier_ids)})


class Settings:
    """Settings changed as the control center would, each remembered at its first change and put back by
    `restore`."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._saved: dict[str, object] = {}

    def change(self, **values: object) -> None:
        with self._db.transaction() as tx:
            for key, value in values.items():
                if key not in self._saved:
                    self._saved[key] = tx.scalar("SELECT value FROM app_config WHERE key = :key", {"key": key})
                tx.execute(
                    "UPDATE app_config SET value = CAST(:value AS jsonb) WHERE key = :key",
                    {"key": key, "value": json.dumps(value)},
                )

    def restore(self) -> None:
        with self._db.transaction() as tx:
            for key, value in self._saved.items():
                tx.execute(
                    "UPDATE app_config SET value = CAST(:value AS jsonb) WHERE key = :key",
                    {"key": key, "value": json.dumps(value)},
                )
        self._saved.clear()


@contextmanager
def settings(db: Database, **values: object) -> Iterator[None]:
    """Settings changed for the block, put back afterwards."""
    changed = Settings(db)
    changed.change(**values)
    try:
        yield
    finally:
        changed.restore()


def uid_of(app: App) -> str:
    """The Firebase uid of a signed-in app."""
    assert app.session is not None
    return app.session.uid


def client_id_of(db: Database, app: App) -> str:
    """The client row id of a signed-in client app."""
    with db.transaction() as tx:
        return str(tx.scalar("SELECT id::text FROM clients WHERE firebase_uid = :uid", {"uid": uid_of(app)}))


def send_text(app: App, session_id: str, text: str) -> dict[str, Any]:
    """One chat message, sent as the app sends it; the reply's body (a refusal fails the test)."""
    reply = app.post("chat_send", {"session_id": session_id, "client_message_id": str(uuid.uuid4()), "text": text})
    assert reply.status == 200, reply.body
    return dict(reply.body)
