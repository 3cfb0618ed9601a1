"""A client's payment history and receipts end to end: checkouts through the gateway, paid on the Xendit stand-in
(which calls our webhook back as Xendit does), refunded by an admin, then read back by the client as the app does."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable

import pytest
import requests

from emulators.simulator import App
from shared.adapters.postgres.database import Database
from tests.support import people
from tests.support.people import Stage

pytestmark = pytest.mark.needs_gcloud

SESSION_30 = {"tier_id": "sesi-30", "purpose": "session"}


def _paid(client: App, stage: Stage, method: str | None = None) -> str:
    """A checkout paid on the Xendit stand-in's page (by bank transfer unless `method` says otherwise)."""
    if method is None:
        return people.pay_checkout(client, stage.db, stage.xendit_port, SESSION_30)
    transaction_id = _pending(client)
    invoice_id = _row(stage.db, transaction_id)["xendit_invoice_id"]
    standin = f"http://127.0.0.1:{stage.xendit_port}/_standin/invoices/{invoice_id}/pay"
    assert requests.post(standin, json={"payment_method": method}, timeout=10).status_code == 200
    deadline = time.monotonic() + 15
    while _row(stage.db, transaction_id)["paid_at"] is None:
        assert time.monotonic() < deadline, "never paid"
        time.sleep(0.05)
    return transaction_id


def _pending(client: App) -> str:
    opened = client.post("billing_checkout", SESSION_30)
    assert opened.status == 200, opened.body
    return str(opened.body["transaction_id"])


def _row(db: Database, transaction_id: str) -> dict[str, object]:
    with db.transaction() as tx:
        row = tx.one(
            """SELECT amount, xendit_invoice_id, payment_method, payment_channel, paid_at
               FROM customer_transactions WHERE id = CAST(:id AS uuid)""",
            {"id": transaction_id},
        )
    assert row is not None
    return row


def test_a_client_lists_their_own_transactions_newest_first_page_by_page(
    stage: Stage, new_client: Callable[..., App]
) -> None:
    client, other = new_client(), new_client("Rina")
    paid = _paid(client, stage)
    pending = _pending(client)
    _pending(other)

    first = client.get("billing_history", limit=1)
    assert first.status == 200, first.body
    second = client.get("billing_history", limit=1, cursor=first.body["next_cursor"])
    assert second.status == 200, second.body

    assert [t["transaction_id"] for t in first.body["transactions"] + second.body["transactions"]] == [pending, paid]
    assert second.body["next_cursor"] is None, "two transactions, two pages"
    shown = second.body["transactions"][0]
    stored = _row(stage.db, paid)
    assert (shown["status"], shown["amount"], shown["currency"], shown["tier_id"], shown["minutes"]) == (
        "paid",
        stored["amount"],
        "IDR",
        "sesi-30",
        30,
    )
    assert (shown["payment_method"], shown["payment_channel"]) == (stored["payment_method"], stored["payment_channel"])
    assert shown["paid_at"] is not None and shown["refunds"] == []
    assert first.body["transactions"][0]["status"] == "pending"
    assert first.body["transactions"][0]["paid_at"] is None
    listed_by_other = other.get("billing_history").body["transactions"]
    assert paid not in {t["transaction_id"] for t in listed_by_other}, "nobody else's"


def test_the_receipt_of_a_paid_transaction_has_what_an_indonesian_receipt_needs(
    stage: Stage, new_client: Callable[..., App]
) -> None:
    client = new_client()
    transaction_id = _paid(client, stage)
    stored = _row(stage.db, transaction_id)

    receipt = client.get("billing_receipt", transaction_id=transaction_id)

    assert receipt.status == 200, receipt.body
    body = receipt.body
    assert re.fullmatch(r"HB-\d{8}-[0-9A-F]{12}", body["receipt_number"]), body["receipt_number"]
    assert body["receipt_number"].endswith(transaction_id.replace("-", "")[:12].upper())
    assert client.get("billing_receipt", transaction_id=transaction_id).body["receipt_number"] == body["receipt_number"]
    assert body["paid_at"].endswith("+07:00") and body["paid_at_local"].endswith(" WIB")
    assert set(body["merchant"]) == {"name", "address", "npwp"} and all(body["merchant"].values())
    assert (body["total"], body["subtotal"], body["tax"], body["currency"]) == (
        stored["amount"],
        stored["amount"],
        None,
        "IDR",
    )
    assert (body["payment_method"], body["payment_channel"]) == (stored["payment_method"], stored["payment_channel"])
    assert (body["transaction_id"], body["external_id"], body["xendit_invoice_id"]) == (
        transaction_id,
        transaction_id,
        stored["xendit_invoice_id"],
    )
    assert body["locale"] == "id" and body["labels"]["title"] == "Bukti Pembayaran"
    assert body["description"] == "Sesi curhat sesi-30 (30 menit)"

    assert client.post("client_profile", {"locale": "en"}).status == 200
    english = client.get("billing_receipt", transaction_id=transaction_id).body
    assert english["locale"] == "en" and english["labels"]["title"] == "Payment Receipt"
    assert english["description"] == "sesi-30 session (30 minutes)"
    assert english["receipt_number"] == body["receipt_number"]


def test_another_clients_transaction_is_not_found_and_an_unpaid_one_has_no_receipt(
    stage: Stage, new_client: Callable[..., App]
) -> None:
    client, other = new_client(), new_client("Rina")
    theirs = _paid(other, stage)
    pending = _pending(client)

    stranger = client.get("billing_receipt", transaction_id=theirs)
    unknown = client.get("billing_receipt", transaction_id=str(uuid.uuid4()))
    unpaid = client.get("billing_receipt", transaction_id=pending)
    garbled = client.get("billing_receipt", transaction_id="not-an-id")
    too_many = client.get("billing_history", limit=1000)

    assert (stranger.status, stranger.error_code) == (404, "not_found"), "404, not 403: the id tells nothing"
    assert unknown.status == 404
    assert (unpaid.status, unpaid.error_code) == (409, "transaction_not_paid")
    assert garbled.status == 400 and "transaction_id" in str(garbled.body)
    assert too_many.status == 400 and "limit" in str(too_many.body)
    bad_cursor = client.get("billing_history", cursor="bm90IG91cnM=")
    assert bad_cursor.status == 400 and "cursor" in str(bad_cursor.body)


def test_a_refund_shows_in_the_history_and_on_the_receipt(
    stage: Stage, new_client: Callable[..., App], admin: App
) -> None:
    client = new_client()
    transaction_id = _paid(client, stage, "EWALLET")  # a bank transfer cannot be refunded through Xendit
    refunded = admin.post("admin_refund", {"transaction_id": transaction_id, "reason": "klien minta dana kembali"})
    assert refunded.status == 200, refunded.body

    deadline = time.monotonic() + 15
    while True:
        (item,) = [
            t for t in client.get("billing_history").body["transactions"] if t["transaction_id"] == transaction_id
        ]
        if (item["refunds"] and item["refunds"][0]["status"] == "succeeded") or time.monotonic() > deadline:
            break
        time.sleep(0.1)

    (refund,) = item["refunds"]
    assert (refund["status"], refund["amount"], refund["reason"]) == (
        "succeeded",
        item["amount"],
        "requested_by_customer",
    )
    assert "klien minta" not in str(item), "the admin's own words stay in the control center"
    receipt = client.get("billing_receipt", transaction_id=transaction_id).body
    assert receipt["refunds"] == item["refunds"]
