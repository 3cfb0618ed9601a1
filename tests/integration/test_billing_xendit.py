"""Billing's conversations with Xendit (the stand-in, through our production adapter) on a real PostgreSQL: the
timeout defers to Xendit when money arrived at the last second, and a refund asked again after a lost answer is
still one refund."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import requests

from emulators import world
from emulators.stack import LocalStack
from shared.adapters import runtime
from shared.adapters.db import Database
from shared.adapters.xendit_payments import Invoice, XenditInvoices
from shared.errors import Unavailable
from shared.services import billing
from shared.services.ports import Ports

pytestmark = pytest.mark.needs_gcloud

PRICE = 35_000


@pytest.fixture
def ports(stack: LocalStack, db: Database) -> Iterator[Ports]:
    yield Ports(db=db, documents=runtime.firestore(), publisher=runtime.publisher(), tasks=runtime.tasks())


@pytest.fixture
def xendit(stack: LocalStack) -> XenditInvoices:
    return runtime.payments()


def _order(db: Database, xendit: XenditInvoices, *, expires_in_s: int) -> tuple[str, Invoice]:
    """A pending transaction and its real invoice at the stand-in, as checkout leaves them."""
    transaction_id = str(uuid.uuid4())
    invoice = xendit.create_invoice(external_id=transaction_id, amount=PRICE, description="x", invoice_duration_s=900)
    with db.transaction() as tx:
        tx.execute(
            """INSERT INTO customer_transactions (id, client_id, purpose, tier_id, duration_s, amount,
                                                  xendit_invoice_id, invoice_url, expires_at)
               VALUES (CAST(:id AS uuid), CAST(:client AS uuid), 'session', 'sesi-30', 1800, :price, :invoice, :url,
                       now() + make_interval(secs => :expires_in))""",
            {"id": transaction_id, "client": world.add_client(db), "price": PRICE, "invoice": invoice.invoice_id,
             "url": invoice.invoice_url, "expires_in": expires_in_s},
        )  # fmt: skip
    return transaction_id, invoice


def _pay_at_xendit(stack: LocalStack, invoice: Invoice, **options: object) -> None:
    # Its callback reaches the stack's own database, where this transaction does not exist: quarantined there.
    url = f"http://127.0.0.1:{stack.ports.xendit}/_standin/invoices/{invoice.invoice_id}/pay"
    requests.post(url, json=options, timeout=10).raise_for_status()


def _status(db: Database, transaction_id: str) -> str:
    with db.transaction() as tx:
        return str(
            tx.scalar("SELECT status FROM customer_transactions WHERE id = CAST(:id AS uuid)", {"id": transaction_id})
        )


def test_the_timeout_waits_while_the_window_is_open_and_is_stale_afterwards(
    ports: Ports, db: Database, xendit: XenditInvoices
) -> None:
    transaction_id, invoice = _order(db, xendit, expires_in_s=600)

    with pytest.raises(Unavailable):
        billing.expire_unpaid(ports, xendit, transaction_id)  # fired early: Cloud Tasks retries it

    with db.transaction() as tx:
        tx.execute("UPDATE customer_transactions SET expires_at = now() WHERE id = CAST(:id AS uuid)",
                   {"id": transaction_id})  # fmt: skip
    assert billing.expire_unpaid(ports, xendit, transaction_id) == "expired"
    assert xendit.get_invoice(invoice.invoice_id).status == "EXPIRED"
    assert billing.expire_unpaid(ports, xendit, transaction_id) == "stale"
    assert billing.expire_unpaid(ports, xendit, str(uuid.uuid4())) == "stale"


def test_the_timeout_leaves_an_invoice_xendit_reports_paid_to_its_callback(
    stack: LocalStack, ports: Ports, db: Database, xendit: XenditInvoices
) -> None:
    transaction_id, invoice = _order(db, xendit, expires_in_s=0)
    _pay_at_xendit(stack, invoice)

    outcome = billing.expire_unpaid(ports, xendit, transaction_id)

    assert outcome == "paid_at_provider"
    assert _status(db, transaction_id) == "pending", "never expired while Xendit holds the client's money"


def test_a_refund_asked_again_after_a_lost_answer_is_one_refund(
    stack: LocalStack, ports: Ports, db: Database, xendit: XenditInvoices
) -> None:
    transaction_id, invoice = _order(db, xendit, expires_in_s=600)
    _pay_at_xendit(stack, invoice, payment_method="EWALLET")
    with db.transaction() as tx:
        tx.execute(
            """UPDATE customer_transactions SET status = 'paid', paid_at = now(), paid_amount = amount
               WHERE id = CAST(:id AS uuid)""",
            {"id": transaction_id},
        )
        tx.execute(
            """INSERT INTO session_credits (transaction_id, client_id, tier_id, duration_s, status)
               SELECT id, client_id, tier_id, duration_s, 'refunding' FROM customer_transactions
               WHERE id = CAST(:id AS uuid)""",
            {"id": transaction_id},
        )
    # An earlier attempt reached Xendit, but its answer never came back (the credit was left `refunding`).
    lost = xendit.refund_invoice(invoice_id=invoice.invoice_id, amount=PRICE, reference_id=f"refund-{transaction_id}",
                                 reason=billing.REFUND_REASON)  # fmt: skip

    done = billing.refund(ports, xendit, "admin-uid", transaction_id, "klien minta dana kembali")

    assert (done.refund_id, done.amount) == (lost.refund_id, PRICE)
    refunds = requests.get(f"http://127.0.0.1:{stack.ports.xendit}/_standin/refunds", timeout=10).json()
    assert [r["id"] for r in refunds if r["invoice_id"] == invoice.invoice_id] == [lost.refund_id]
    with db.transaction() as tx:
        kinds = tx.all(
            "SELECT kind FROM ledger_entries WHERE transaction_id = CAST(:id AS uuid)", {"id": transaction_id}
        )
    assert [row["kind"] for row in kinds] == ["refund"]
