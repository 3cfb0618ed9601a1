"""A client's payment history and receipts as stories on the in-memory unit of work (tests/support/fakes.py) and an
in-memory Xendit: newest first and keyset paged, only the client's own, refunds shown, and the receipt of a paid
transaction with what an Indonesian receipt needs, in the client's language. The same on PostgreSQL and the real
stack: tests/e2e/test_payment_history.py."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from shared.config import get_settings
from shared.domain import billing_history as rules
from shared.domain.billing import CheckoutRequest, Outcome, Purpose
from shared.domain.billing_history import HistoryEntry, Merchant, ReceiptSource
from shared.errors import Conflict, InvalidRequest, NotFound
from shared.services.billing import checkout, history, payments, refunds
from tests.support.fake_billing import FakeXendit, add_client
from tests.support.fake_lifecycle import add_tier
from tests.support.fakes import FakeDatabase, FakePorts, fake_ports

PRICE = 35_000
BUY_A_SESSION = CheckoutRequest(tier_id="sesi-30", purpose=Purpose.SESSION, extension_id=None)


@pytest.fixture
def db() -> FakeDatabase:
    database = FakeDatabase()
    add_client(database, "c1", "uid-sari")
    add_client(database, "c2", "uid-rina")
    add_tier(database, "sesi-30", duration_s=1800, price=PRICE)
    return database


@pytest.fixture
def ports(db: FakeDatabase) -> FakePorts:
    return fake_ports(db)


@pytest.fixture
def xendit(db: FakeDatabase) -> FakeXendit:
    return FakeXendit(db)


def _checkout(ports: FakePorts, xendit: FakeXendit, client_id: str = "c1") -> str:
    return checkout.open_invoice(ports, xendit, client_id, BUY_A_SESSION, idempotency_key=None).transaction_id


def _pay(ports: FakePorts, xendit: FakeXendit, transaction_id: str) -> None:
    invoice = next(i for i in xendit.invoices.values() if i.external_id == transaction_id)
    callback: dict[str, Any] = {
        "id": invoice.invoice_id,
        "external_id": transaction_id,
        "status": "PAID",
        "amount": invoice.amount,
        "paid_amount": invoice.amount,
        "currency": "IDR",
        "payment_method": "EWALLET",
        "payment_channel": "OVO",
    }
    assert payments.receive_callback(ports, callback, webhook_id=f"w-{transaction_id}") is Outcome.APPLIED


def test_the_history_is_the_clients_own_newest_first_and_paged(
    ports: FakePorts, xendit: FakeXendit, db: FakeDatabase
) -> None:
    mine = []
    for _ in range(3):
        mine.append(_checkout(ports, xendit))
        db.tick(60)
    _checkout(ports, xendit, "c2")
    _pay(ports, xendit, mine[0])

    first, cursor = history.history(ports, "c1", cursor=None, limit=2)
    rest, end = history.history(ports, "c1", cursor=cursor, limit=2)

    assert [e.transaction_id for e in first + rest] == mine[::-1], "newest first, nobody else's"
    assert cursor is not None and end is None
    oldest = rest[0]
    assert (oldest.status, oldest.amount, oldest.tier_id, oldest.minutes) == ("paid", PRICE, "sesi-30", 30)
    assert (oldest.payment_method, oldest.payment_channel, oldest.paid_at) == ("EWALLET", "OVO", db.now)
    assert first[0].status == "pending" and first[0].paid_at is None


def test_a_cursor_we_did_not_issue_is_a_400_naming_it(ports: FakePorts) -> None:
    with pytest.raises(InvalidRequest) as refused:
        history.history(ports, "c1", cursor="not-a-cursor", limit=10)
    assert refused.value.details["fields"][0]["field"] == "cursor"


def test_a_refund_shows_in_the_history_and_on_the_receipt(ports: FakePorts, xendit: FakeXendit) -> None:
    transaction_id = _checkout(ports, xendit)
    _pay(ports, xendit, transaction_id)
    refunds.refund(ports, xendit, "uid-admin", transaction_id, "the client could not attend")

    (entry,), _ = history.history(ports, "c1", cursor=None, limit=10)
    receipt = history.receipt(ports, "c1", transaction_id)

    (refund,) = entry.refunds
    assert (refund.status, refund.amount, refund.reason, refund.attempt) == (
        "succeeded",
        PRICE,
        "requested_by_customer",
        1,
    )
    assert receipt.refunds == entry.refunds


def test_another_clients_transaction_is_not_found_never_forbidden(ports: FakePorts, xendit: FakeXendit) -> None:
    theirs = _checkout(ports, xendit, "c2")
    _pay(ports, xendit, theirs)

    with pytest.raises(NotFound):
        history.receipt(ports, "c1", theirs)
    with pytest.raises(NotFound):
        history.receipt(ports, "c1", "00000000-0000-4000-8000-000000000000")


def test_an_unpaid_transaction_has_no_receipt(ports: FakePorts, xendit: FakeXendit) -> None:
    pending = _checkout(ports, xendit)

    with pytest.raises(Conflict) as refused:
        history.receipt(ports, "c1", pending)

    assert refused.value.code == "transaction_not_paid"


def test_the_receipt_has_what_an_indonesian_receipt_needs(
    ports: FakePorts, xendit: FakeXendit, db: FakeDatabase
) -> None:
    transaction_id = _checkout(ports, xendit)
    _pay(ports, xendit, transaction_id)  # at 09:00 UTC: 16:00 in Jakarta

    receipt = history.receipt(ports, "c1", transaction_id)

    settings = get_settings()
    assert receipt.merchant == Merchant(
        settings.receipt_merchant_name, settings.receipt_merchant_address, settings.receipt_merchant_npwp
    )
    assert receipt.receipt_number == f"HB-20260105-{transaction_id.replace('-', '')[:12].upper()}"
    assert receipt.receipt_number == history.receipt(ports, "c1", transaction_id).receipt_number, "stable"
    assert receipt.paid_at.utcoffset() is not None and receipt.paid_at.isoformat().endswith("+07:00")
    assert receipt.paid_at_local == "05-01-2026 16:00 WIB"
    assert (receipt.total, receipt.subtotal, receipt.tax, receipt.currency) == (PRICE, PRICE, None, "IDR")
    assert (receipt.payment_method, receipt.payment_channel) == ("EWALLET", "OVO")
    invoice_id = next(i.invoice_id for i in xendit.invoices.values() if i.external_id == transaction_id)
    assert (receipt.transaction_id, receipt.external_id, receipt.xendit_invoice_id) == (
        transaction_id,
        transaction_id,
        invoice_id,
    )
    assert (receipt.locale, receipt.description) == ("id", "Sesi curhat sesi-30 (30 menit)")
    assert receipt.labels["title"] == "Bukti Pembayaran" and "tax" not in receipt.labels


def test_the_receipt_is_written_in_the_clients_language(ports: FakePorts, xendit: FakeXendit, db: FakeDatabase) -> None:
    db.table("clients")["c1"]["locale"] = "en"
    transaction_id = _checkout(ports, xendit)
    _pay(ports, xendit, transaction_id)

    receipt = history.receipt(ports, "c1", transaction_id)

    assert (receipt.locale, receipt.description) == ("en", "sesi-30 session (30 minutes)")
    assert receipt.labels["title"] == "Payment Receipt" and receipt.labels["total"] == "Total"


def _entry(**changes: Any) -> HistoryEntry:
    paid = datetime(2026, 12, 31, 18, 30, tzinfo=UTC)  # already 1 January in Jakarta
    fields: dict[str, Any] = {
        "transaction_id": "1a2b3c4d-5e6f-4000-8000-000000000001",
        "purpose": "extension",
        "tier_id": "tambah-10",
        "duration_s": 600,
        "amount": 11_100,
        "currency": "IDR",
        "status": "paid",
        "created_at": paid,
        "paid_at": paid,
        "expired_at": None,
        "payment_method": "QR_CODE",
        "payment_channel": "QRIS",
    }
    return HistoryEntry(**{**fields, **changes})


def test_a_ppn_rate_splits_the_tax_inclusive_price_into_base_and_tax() -> None:
    merchant = Merchant("PT Halo Bestie Indonesia", "Jl. Sudirman 1, Jakarta", "01.234.567.8-901.000")

    taxed = rules.receipt(ReceiptSource(_entry(), "en"), merchant, ppn_rate_percent=11)

    assert taxed.tax == rules.TaxLine(rate_percent=11, amount=1_100)
    assert (taxed.subtotal, taxed.total) == (10_000, 11_100)
    assert taxed.labels["tax"] == "VAT (PPN) 11%"
    assert taxed.receipt_number == "HB-20270101-1A2B3C4D5E6F", "the Jakarta date, not UTC's"
    assert taxed.description == "tambah-10 session extension (10 minutes)"
    assert rules.tax_split(35_000, 0) == (35_000, None)


def test_an_unknown_or_missing_locale_reads_indonesian() -> None:
    merchant = Merchant("m", "a", "n")
    assert rules.receipt(ReceiptSource(_entry(), "fr"), merchant, ppn_rate_percent=0).labels["date"] == "Tanggal"
    assert not rules.has_receipt(_entry(status="expired", paid_at=None))
