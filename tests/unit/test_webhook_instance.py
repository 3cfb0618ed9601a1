"""Xendit's webhook runs on an instance that imports nothing but its own module: in a fresh interpreter, as Cloud
Functions starts it, it must load none of checkout's weight cold, refuse strangers, and deliver a paid transaction of
every purpose (billing's purpose table) without loading any other function's module. No stack is needed: the
instance runs on the in-memory unit of work (tests/support/fakes.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from functions.manifest import BY_NAME, FUNCTIONS

ROOT = Path(__file__).resolve().parents[2]

_INSTANCE = """
import json, sys
import main

main.xendit_webhook
cold = set(sys.modules)

import flask
from shared import bootstrap
from shared.domain.billing import Purpose
from tests.support.fake_chat import add_session
from tests.support.fake_lifecycle import add_tier
from tests.support.fakes import FakeDatabase, fake_ports

db = FakeDatabase()
client = {"id": "c1", "firebase_uid": "uid-c1", "display_name": "Sari"}
add_session(db, "s1", client=client, mitra={"id": "m1", "firebase_uid": "uid-m1", "display_name": "Anisa"})
add_tier(db, "tambah-10", duration_s=600, price=35000)
db.table("session_extensions")["e1"] = {
    "id": "e1", "session_id": "s1", "tier_id": "tambah-10", "duration_s": 600, "price": 35000, "status": "accepted",
    "respond_by": db.now, "responded_at": db.now, "applied_at": None,
}
for purpose in Purpose:
    db.table("customer_transactions")[f"t-{purpose}"] = {
        "id": f"t-{purpose}", "client_id": "c1", "purpose": purpose, "tier_id": "tambah-10",
        "extension_id": "e1" if purpose is Purpose.EXTENSION else None, "duration_s": 600, "amount": 35000,
        "currency": "IDR", "status": "pending", "xendit_invoice_id": f"inv-{purpose}", "invoice_url": "https://x",
        "expires_at": db.now,
    }
ports = fake_ports(db)
bootstrap.ports = lambda: ports
app = flask.Flask("probe")


def deliver(token, body):
    headers = {"webhook-id": "w-1", **({"x-callback-token": token} if token else {})}
    with app.test_request_context("/xendit_webhook", method="POST", json=body, headers=headers):
        reply = main.xendit_webhook(flask.request)
        return reply.status_code, reply.get_json()


def paid(purpose):
    return {"id": f"inv-{purpose}", "external_id": f"t-{purpose}", "status": "PAID", "amount": 35000,
            "paid_amount": 35000, "currency": "IDR"}


refused = [deliver(token, paid(Purpose.SESSION))[0] for token in ("wrong", None)]
outcomes = {purpose: deliver("secret", paid(purpose)) for purpose in Purpose}
print(json.dumps({
    "cold": sorted(cold), "warm": sorted(sys.modules), "refused": refused,
    "outcomes": {purpose: [status, body.get("outcome")] for purpose, (status, body) in outcomes.items()},
    "credits": sorted(db.table("session_credits")),
    "extension": [db.table("session_extensions")["e1"]["status"], db.table("sessions")["s1"]["version"]],
    "webhook_ids": sorted({event["record"].webhook_id for event in db.table("payment_events").values()}),
}))
"""


def _run_instance() -> dict[str, Any]:
    env = {**os.environ, "HALO_XENDIT_CALLBACK_TOKEN": "secret"}
    completed = subprocess.run(
        [sys.executable, "-c", _INSTANCE], cwd=ROOT, env=env, capture_output=True, text=True, check=True, timeout=60
    )
    result: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
    return result


def test_the_webhook_instance_loads_lightly_verifies_and_delivers_every_purpose() -> None:
    result = _run_instance()
    cold = set(result["cold"])
    heavy = {"functions._http", "functions.billing", "shared.config", "shared.services.billing", "pydantic.main"}
    assert not cold & heavy, f"the webhook's cold start loads {sorted(cold & heavy)}: import them on first delivery"
    assert result["refused"] == [401, 401]
    assert result["outcomes"] == {"session": [200, "applied"], "extension": [200, "applied"]}
    assert result["credits"] == ["t-session"], "a paid session is a credit"
    assert result["extension"] == ["applied", 2], "a paid extension adds its time"
    assert result["webhook_ids"] == ["w-1"]
    modules = {spec.module for spec in FUNCTIONS} - {BY_NAME["xendit_webhook"].module}
    loaded = modules & set(result["warm"])
    assert loaded == set(), f"delivering loads other functions' modules: {sorted(loaded)}"
