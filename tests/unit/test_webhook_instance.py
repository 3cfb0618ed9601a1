"""Xendit's webhook runs on an instance that imports nothing but its own module: in a fresh interpreter, as Cloud
Functions starts it, it must load none of checkout's weight cold, refuse strangers, and know every purpose a paid
transaction can have before it applies the first callback. No stack is needed: the service call is stubbed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]

_INSTANCE = """
import json, sys
import main

main.xendit_webhook
cold = set(sys.modules)

import flask
from shared.services import billing

seen = {}


def receive_callback(ports, payload, *, webhook_id):
    seen["purposes"] = sorted(billing._PURPOSES)
    seen["webhook_id"] = webhook_id
    return "applied"


billing.receive_callback = receive_callback
import shared.bootstrap as bootstrap

bootstrap.ports = lambda: None
app = flask.Flask("probe")


def deliver(token):
    headers = {"webhook-id": "w-1", **({"x-callback-token": token} if token else {})}
    with app.test_request_context("/xendit_webhook", method="POST", json={"id": "x"}, headers=headers):
        return main.xendit_webhook(flask.request).status_code


print(json.dumps({"cold": sorted(cold), "stranger": deliver("wrong"), "none": deliver(None),
                  "xendit": deliver("secret"), "seen": seen}))
"""


def _run_instance() -> dict[str, Any]:
    env = {**os.environ, "HALO_XENDIT_CALLBACK_TOKEN": "secret"}
    completed = subprocess.run(
        [sys.executable, "-c", _INSTANCE], cwd=ROOT, env=env, capture_output=True, text=True, check=True, timeout=60
    )
    result: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
    return result


def test_the_webhook_instance_loads_lightly_verifies_and_knows_every_purpose() -> None:
    result = _run_instance()
    cold = set(result["cold"])
    heavy = {"functions._http", "functions.billing", "shared.config", "shared.services.billing", "pydantic.main"}
    assert not cold & heavy, f"the webhook's cold start loads {sorted(cold & heavy)}: import them on first delivery"
    assert (result["stranger"], result["none"]) == (401, 401)
    assert result["xendit"] == 200
    assert result["seen"] == {"purposes": ["extension", "session"], "webhook_id": "w-1"}
