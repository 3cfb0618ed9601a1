"""Looking a refund up at Xendit when its callback was lost: what Xendit's Get Refund states mean to us, and the
sweep's instance, which loads the billing service and nothing of checkout. No stack is needed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from shared.domain.billing import Refund

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        ("SUCCEEDED", "succeeded"),
        ("FAILED", "failed"),
        ("CANCELLED", "failed"),
        ("PENDING", "pending"),
        ("REQUESTED", "pending"),
    ],
)
def test_a_looked_up_refund_is_settled_only_once_xendit_says_how_it_ended(status: str, outcome: str) -> None:
    found = Refund(refund_id="rfd-1", invoice_id="inv-1", amount=35_000, currency="IDR", status=status)

    assert found.outcome == outcome


def test_the_refund_sweep_instance_loads_none_of_checkout_cold() -> None:
    probe = "import json, sys, main\nmain.refund_sweep\nprint(json.dumps(sorted(sys.modules)))"
    completed = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True, timeout=60
    )
    cold = set(json.loads(completed.stdout.strip().splitlines()[-1]))

    heavy = {"functions.billing", "functions._http", "shared.services.lifecycle", "xendit", "firebase_admin"}
    assert not cold & heavy, f"the refund sweep's cold start loads {sorted(cold & heavy)}"
