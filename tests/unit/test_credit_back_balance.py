"""The credited-back balance (the unused time of sessions an admin ended, `admin_session_end` with `credit_unused`)
as the client spends it, on the in-memory unit of work and Xendit: a checkout it covers is paid at once with no
invoice, one it covers in part invoices the rest, and what a checkout took comes back when it expires unpaid or its
credit is refunded. The same on PostgreSQL: tests/integration/test_credit_back_race.py (two checkouts at once) and
tests/e2e/test_admin_end.py."""

from __future__ import annotations

from typing import Any

import pytest

from shared.domain.billing import CheckoutRequest, CreditStatus, Outcome, Purpose, TransactionStatus
from shared.domain.events import DocumentWrite, TaskRequest
from shared.errors import Conflict
from shared.services import pricing
from shared.services.billing import checkout, payments, refunds
from tests.support.fake_billing import FakeXendit
from tests.support.fake_chat import add_session
from tests.support.fake_lifecycle import add_tier
from tests.support.fakes import FakeDatabase, FakePorts, fake_ports

PRICE = 35_000
SESSION = "5e551011-0000-4000-8000-000000000003"
BUY_A_SESSION = CheckoutRequest(tier_id="sesi-30", purpose=Purpose.SESSION, extension_id=None)


@pytest.fixture
def db() -> FakeDatabase:
    database = FakeDatabase()
    add_session(
        database,
        SESSION,
        client={"id": "c1", "firebase_uid": "uid-client", "display_name": "Sari"},
        mitra={"id": "m1", "firebase_uid": "uid-mitra", "display_name": "Mitra Anisa"},
    )
    add_tier(database, "sesi-30", duration_s=1800, price=PRICE)
    database.table("pricing_tiers")["sesi-30"]["sort_order"] = 1
    return database


@pytest.fixture
def ports(db: FakeDatabase) -> FakePorts:
    return fake_ports(db)


@pytest.fixture
def xendit(db: FakeDatabase) -> FakeXendit:
    return FakeXendit(db)


def _credit_back(db: FakeDatabase, amount: int) -> None:
    db.table("session_credit_backs")[SESSION] = {
        "session_id": SESSION,
        "client_id": "c1",
        "unused_s": 1200,
        "amount": amount,
        "created_by": "admin-uid",
        "created_at": db.now,
    }


def _checkout(ports: FakePorts, xendit: FakeXendit, key: str | None = None) -> checkout.Checkout:
    return checkout.open_invoice(ports, xendit, "c1", BUY_A_SESSION, idempotency_key=key)


def _balance(ports: FakePorts) -> int:
    return pricing.quote(ports, "c1").credit_back_balance


def _uses(db: FakeDatabase) -> list[tuple[str, int]]:
    return [(u["kind"], u["amount"]) for u in db.table("credit_back_uses").values()]


def _pay(ports: FakePorts, xendit: FakeXendit, transaction_id: str) -> None:
    invoice = next(i for i in xendit.invoices.values() if i.external_id == transaction_id)
    callback = {
        "id": invoice.invoice_id,
        "external_id": transaction_id,
        "status": "PAID",
        "amount": invoice.amount,
        "paid_amount": invoice.amount,
        "currency": "IDR",
    }
    assert payments.receive_callback(ports, callback, webhook_id="w") is Outcome.APPLIED


def _payment_writes(ports: FakePorts, transaction_id: str) -> list[dict[str, Any]]:
    return [
        dict(e.data)
        for e in ports.documents.written
        if isinstance(e, DocumentWrite) and e.paths == (f"payments/{transaction_id}",)
    ]


def test_a_balance_that_covers_the_price_pays_the_checkout_at_once_without_an_invoice(
    ports: FakePorts, xendit: FakeXendit, db: FakeDatabase
) -> None:
    _credit_back(db, 50_000)
    assert pricing.quote(ports, "c1").charge(pricing.quote(ports, "c1").tiers[0]) == 0

    paid = _checkout(ports, xendit, key="k1")
    again = _checkout(ports, xendit, key="k1")

    assert (paid.status, paid.invoice_url, paid.amount, paid.credit_back_used) == ("paid", None, 0, PRICE)
    assert again == paid, "the same Idempotency-Key is the same answer"
    assert xendit.invoices == {}
    transaction = db.table("customer_transactions")[paid.transaction_id]
    assert (transaction["status"], transaction["payment_method"], transaction["amount"]) == ("paid", "credit_back", 0)
    assert db.table("session_credits")[paid.transaction_id]["status"] == CreditStatus.AVAILABLE
    quote = pricing.quote(ports, "c1")
    assert [(c.tier_id, c.available) for c in quote.credits] == [("sesi-30", 1)]
    assert quote.credit_back_balance == 50_000 - PRICE and _uses(db) == [("use", PRICE)], "used once"
    assert _payment_writes(ports, paid.transaction_id)[-1]["status"] == TransactionStatus.PAID
    assert not [r for r in db.pending() if isinstance(r.event, TaskRequest)], "no payment timeout: nothing to pay"
    assert [e for e in db.table("ledger_entries").values()] == [], "no money went through Xendit"


def test_a_balance_that_covers_part_of_the_price_invoices_the_rest(
    ports: FakePorts, xendit: FakeXendit, db: FakeDatabase
) -> None:
    _credit_back(db, 20_000)
    quote = pricing.quote(ports, "c1")
    assert (quote.credit_back_balance, quote.charge(quote.tiers[0])) == (20_000, PRICE - 20_000)

    opened = _checkout(ports, xendit)
    _pay(ports, xendit, opened.transaction_id)

    assert (opened.status, opened.amount, opened.credit_back_used) == ("pending", PRICE - 20_000, 20_000)
    (invoice,) = xendit.invoices.values()
    assert invoice.amount == PRICE - 20_000
    assert _balance(ports) == 0
    assert db.table("session_credits")[opened.transaction_id]["status"] == CreditStatus.AVAILABLE
    (ledger,) = db.table("ledger_entries").values()
    assert (ledger["kind"], ledger["amount"]) == ("payment_received", PRICE - 20_000)


def test_without_a_balance_the_invoice_is_for_the_whole_price(
    ports: FakePorts, xendit: FakeXendit, db: FakeDatabase
) -> None:
    opened = _checkout(ports, xendit)

    assert (opened.status, opened.amount, opened.credit_back_used) == ("pending", PRICE, 0)
    assert [i.amount for i in xendit.invoices.values()] == [PRICE]
    assert _uses(db) == [] and _balance(ports) == 0


def test_a_refund_gives_back_through_xendit_only_what_went_through_it_and_returns_the_rest_to_the_balance(
    ports: FakePorts, xendit: FakeXendit, db: FakeDatabase
) -> None:
    _credit_back(db, 20_000)
    opened = _checkout(ports, xendit)
    _pay(ports, xendit, opened.transaction_id)

    done = refunds.refund(ports, xendit, "admin-uid", opened.transaction_id, "klien minta dana kembali")
    again = refunds.refund(ports, xendit, "admin-uid", opened.transaction_id, "klien minta dana kembali")

    assert (done.status, done.amount) == (CreditStatus.REFUNDED, PRICE - 20_000) and again == done
    assert [r.amount for r in xendit.refunds.values()] == [PRICE - 20_000]
    assert _balance(ports) == 20_000 and _uses(db) == [("use", 20_000), ("return", 20_000)], "returned once"


def test_a_failed_refund_returns_nothing_to_the_balance(ports: FakePorts, xendit: FakeXendit, db: FakeDatabase) -> None:
    _credit_back(db, 20_000)
    opened = _checkout(ports, xendit)
    _pay(ports, xendit, opened.transaction_id)
    xendit.refund_status = "PENDING"
    refunds.refund(ports, xendit, "admin-uid", opened.transaction_id, "klien minta dana kembali")
    (answer,) = xendit.refunds.values()
    xendit.settle_refund(answer.refund_id, "FAILED")
    with pytest.raises(Conflict) as failed:
        refunds.refund(ports, xendit, "admin-uid", opened.transaction_id, "klien minta dana kembali")

    assert failed.value.code == "refund_failed"
    assert db.table("session_credits")[opened.transaction_id]["status"] == CreditStatus.AVAILABLE
    assert _balance(ports) == 0, "the credit is the client's again, and so is what the balance paid of it"


def test_a_credit_the_balance_paid_whole_is_refunded_at_once_to_the_balance(
    ports: FakePorts, xendit: FakeXendit, db: FakeDatabase
) -> None:
    _credit_back(db, PRICE)
    paid = _checkout(ports, xendit)

    done = refunds.refund(ports, xendit, "admin-uid", paid.transaction_id, "klien minta dana kembali")
    again = refunds.refund(ports, xendit, "admin-uid", paid.transaction_id, "klien minta dana kembali")

    assert (done.status, done.refund_id, done.amount) == (CreditStatus.REFUNDED, None, 0) and again == done
    assert xendit.refunds == {}
    assert db.table("session_credits")[paid.transaction_id]["status"] == CreditStatus.REFUNDED
    assert _balance(ports) == PRICE and _uses(db) == [("use", PRICE), ("return", PRICE)]
    assert [(a["action"], a["new"]["credit_back_returned"]) for a in db.audit] == [("billing.refund", PRICE)]


def test_a_checkout_that_expires_unpaid_returns_what_it_took_once(
    ports: FakePorts, xendit: FakeXendit, db: FakeDatabase
) -> None:
    _credit_back(db, 20_000)
    opened = _checkout(ports, xendit)
    assert _balance(ports) == 0
    db.tick(900)

    assert payments.expire_unpaid(ports, xendit, opened.transaction_id) == TransactionStatus.EXPIRED
    assert payments.expire_unpaid(ports, xendit, opened.transaction_id) == "stale"

    assert _balance(ports) == 20_000 and _uses(db) == [("use", 20_000), ("return", 20_000)]
    again = _checkout(ports, xendit)
    assert again.credit_back_used == 20_000, "the balance is spendable again"
