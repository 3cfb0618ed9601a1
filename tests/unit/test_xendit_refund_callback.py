"""Xendit's refund callbacks as our webhook reads them (shared/schemas/billing.py): the payloads in `payloads/` are
Xendit's documented shape; anything else is a 400 naming the field. And how Xendit's answer to a create-refund call
reads in our words."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from shared.domain.billing import Refund
from shared.errors import InvalidRequest
from shared.schemas.billing import is_refund_callback, parse_refund_callback

PAYLOADS = Path(__file__).parent / "payloads"


def _payload(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((PAYLOADS / f"{name}.json").read_text())
    return loaded


def _with(name: str, path: str, value: Any) -> dict[str, Any]:
    """The sample with one field set (or removed, for `...`), `path` dotted as the error names it."""
    payload = copy.deepcopy(_payload(name))
    *parents, last = path.split(".")
    target = payload
    for part in parents:
        target = target[part]
    if value is ...:
        del target[last]
    else:
        target[last] = value
    return payload


def test_a_refund_succeeded_callback_is_read_as_xendit_sends_it() -> None:
    callback = parse_refund_callback(_payload("xendit_refund_succeeded"))

    assert callback.succeeded
    assert (callback.data.id, callback.data.status, callback.data.amount, callback.data.currency) == (
        "rfd-6f4a377d-a201-437f-9119-f8b00cbbe857",
        "SUCCEEDED",
        35_000,
        "IDR",
    )
    assert callback.data.reference_id == "refund-0f8fad5b-d9cb-469f-a165-70867728950e"
    assert (callback.data.invoice_id, callback.data.failure_code) == ("64b0c0ffee0000000000beef", None)


def test_a_refund_failed_callback_carries_its_failure_code() -> None:
    callback = parse_refund_callback(_payload("xendit_refund_failed"))

    assert not callback.succeeded
    assert (callback.data.status, callback.data.failure_code) == ("FAILED", "INSUFFICIENT_BALANCE")


def test_a_callback_without_a_reference_is_still_read() -> None:
    callback = parse_refund_callback(_with("xendit_refund_succeeded", "data.reference_id", None))

    assert callback.data.reference_id is None


def test_refund_callbacks_are_told_apart_from_invoice_callbacks_by_their_event() -> None:
    assert is_refund_callback(_payload("xendit_refund_succeeded"))
    assert is_refund_callback({"event": "refund.pending"}), "read as a refund callback, then refused for its event"
    assert not is_refund_callback({"id": "64b0c0ffee0000000000beef", "external_id": "x", "status": "PAID"})
    assert not is_refund_callback({"event": "payment_method.activated"})
    assert not is_refund_callback({"event": 7})


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        (_with("xendit_refund_succeeded", "event", "refund.pending"), "event"),
        (_with("xendit_refund_succeeded", "event", ...), "event"),
        (_with("xendit_refund_succeeded", "data", ...), "data"),
        (_with("xendit_refund_succeeded", "data", "rfd-1"), "data"),
        (_with("xendit_refund_succeeded", "data.id", ...), "data.id"),
        (_with("xendit_refund_succeeded", "data.id", ""), "data.id"),
        (_with("xendit_refund_succeeded", "data.id", 42), "data.id"),
        (_with("xendit_refund_succeeded", "data.status", "PENDING"), "data.status"),
        (_with("xendit_refund_succeeded", "data.status", "FAILED"), "data.status"),
        (_with("xendit_refund_failed", "data.status", "SUCCEEDED"), "data.status"),
        (_with("xendit_refund_succeeded", "data.amount", ...), "data.amount"),
        (_with("xendit_refund_succeeded", "data.amount", "35000"), "data.amount"),
        (_with("xendit_refund_succeeded", "data.amount", True), "data.amount"),
        (_with("xendit_refund_succeeded", "data.amount", 0), "data.amount"),
        (_with("xendit_refund_succeeded", "data.amount", -35_000), "data.amount"),
        (_with("xendit_refund_succeeded", "data.currency", ...), "data.currency"),
        (_with("xendit_refund_succeeded", "data.reference_id", ""), "data.reference_id"),
        (_with("xendit_refund_succeeded", "data.reference_id", ["refund-x"]), "data.reference_id"),
        (_with("xendit_refund_succeeded", "data.invoice_id", 1), "data.invoice_id"),
        (_with("xendit_refund_failed", "data.failure_code", {"code": "X"}), "data.failure_code"),
    ],
)
def test_a_malformed_refund_callback_is_refused_naming_the_field(payload: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidRequest) as refused:
        parse_refund_callback(payload)

    assert field in [entry["field"] for entry in refused.value.details["fields"]]
    assert refused.value.status == 400


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        ("SUCCEEDED", "succeeded"),
        ("PENDING", "pending"),
        ("REQUIRES_ACTION", "pending"),
        ("FAILED", "failed"),
        ("CANCELLED", "failed"),
    ],
)
def test_xendit_s_answer_to_a_refund_reads_as_done_pending_or_failed(status: str, outcome: str) -> None:
    answer = Refund(refund_id="rfd-1", invoice_id="inv", amount=35_000, currency="IDR", status=status)

    assert answer.outcome == outcome
