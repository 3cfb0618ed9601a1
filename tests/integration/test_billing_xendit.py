"""Billing's conversations with Xendit (the stand-in, through our production adapter) on a real PostgreSQL: the
timeout defers to Xendit when money arrived at the last second, a refund asked again after a lost answer is still
one refund, a refund's callback settles it once however it races Xendit's answer or its own duplicates, and a refund
whose callback was lost is settled by looking it up at Xendit (an admin asking again, the refund sweep), once."""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import pytest
import requests

from emulators.process import free_port
from emulators.stack import LocalStack
from shared import bootstrap
from shared.adapters.postgres.database import Database
from shared.adapters.xendit_payments import XenditInvoices
from shared.config import get_settings
from shared.domain.billing import CreditStatus, Invoice, Outcome, Refund
from shared.errors import Conflict, Unavailable
from shared.services.billing import payments, reconciliation, refunds
from shared.services.ports import Ports
from tests.support import world

pytestmark = pytest.mark.needs_gcloud

PRICE = 35_000
NOTHING_DUE = reconciliation.RefundSweep(settled=0, pending=0, failed=0)


@pytest.fixture
def ports(stack: LocalStack, db: Database) -> Iterator[Ports]:
    yield bootstrap.ports_on(db)


@pytest.fixture
def xendit(stack: LocalStack) -> XenditInvoices:
    return bootstrap.payments()


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
            {
                "id": transaction_id,
                "client": world.add_client(db),
                "price": PRICE,
                "invoice": invoice.invoice_id,
                "url": invoice.invoice_url,
                "expires_in": expires_in_s,
            },
        )
    return transaction_id, invoice


def _pay_at_xendit(stack: LocalStack, invoice: Invoice, **options: object) -> None:
    # Its callback reaches the stack's own database, where this transaction does not exist: quarantined there.
    url = f"http://127.0.0.1:{stack.ports.xendit}/_standin/invoices/{invoice.invoice_id}/pay"
    requests.post(url, json=options, timeout=10).raise_for_status()


def _paid_credit(stack: LocalStack, db: Database, xendit: XenditInvoices, credit: str) -> tuple[str, Invoice]:
    """A transaction paid by e-wallet (refundable through the API) and its credit, in the state given."""
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
               SELECT id, client_id, tier_id, duration_s, :credit FROM customer_transactions
               WHERE id = CAST(:id AS uuid)""",
            {"id": transaction_id, "credit": credit},
        )
    return transaction_id, invoice


def _refunds_answer(stack: LocalStack, invoice: Invoice, status: str) -> None:
    url = f"http://127.0.0.1:{stack.ports.xendit}/_standin/invoices/{invoice.invoice_id}/refund_answer"
    requests.post(url, json={"status": status}, timeout=10).raise_for_status()


def _refund_callback(refund: Refund, reference_id: str, *, succeeded: bool) -> dict[str, Any]:
    """Xendit's callback about a refund, as the stand-in would send it once the refund settles."""
    now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return {
        "event": "refund.succeeded" if succeeded else "refund.failed",
        "business_id": "64a1b2c3d4e5f6a7b8c9d0e1",
        "created": now,
        "data": {
            "id": refund.refund_id,
            "payment_request_id": None,
            "invoice_id": refund.invoice_id,
            "amount": refund.amount,
            "currency": refund.currency,
            "status": "SUCCEEDED" if succeeded else "FAILED",
            "reason": refunds.REFUND_REASON,
            "reference_id": reference_id,
            "failure_code": None if succeeded else "INSUFFICIENT_BALANCE",
            "refund_fee_amount": 0,
            "created": now,
            "updated": now,
            "metadata": None,
        },
    }


class CallbackFirst(XenditInvoices):
    """Xendit whose refund callback reaches us before its answer to our own call does."""

    def __init__(self, callback: Callable[[Refund, str], None]) -> None:
        settings = get_settings()
        super().__init__(secret_key=settings.xendit_secret_key, host=settings.xendit_host)
        self._callback = callback

    def refund_invoice(self, *, invoice_id: str, amount: int, reference_id: str, reason: str) -> Refund:
        answer = super().refund_invoice(invoice_id=invoice_id, amount=amount, reference_id=reference_id, reason=reason)
        self._callback(answer, reference_id)
        return answer


def _ledger(db: Database, transaction_id: str) -> list[str]:
    with db.transaction() as tx:
        rows = tx.all(
            "SELECT kind FROM ledger_entries WHERE transaction_id = CAST(:id AS uuid) ORDER BY id",
            {"id": transaction_id},
        )
    return [row["kind"] for row in rows]


def _credit(db: Database, transaction_id: str) -> str:
    with db.transaction() as tx:
        return str(
            tx.scalar(
                "SELECT status FROM session_credits WHERE transaction_id = CAST(:id AS uuid)", {"id": transaction_id}
            )
        )


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
        payments.expire_unpaid(ports, xendit, transaction_id)  # fired early: Cloud Tasks retries it

    with db.transaction() as tx:
        tx.execute(
            "UPDATE customer_transactions SET expires_at = now() WHERE id = CAST(:id AS uuid)", {"id": transaction_id}
        )
    assert payments.expire_unpaid(ports, xendit, transaction_id) == "expired"
    assert xendit.get_invoice(invoice.invoice_id).status == "EXPIRED"
    assert payments.expire_unpaid(ports, xendit, transaction_id) == "stale"
    assert payments.expire_unpaid(ports, xendit, str(uuid.uuid4())) == "stale"


def test_the_timeout_leaves_an_invoice_xendit_reports_paid_to_its_callback(
    stack: LocalStack, ports: Ports, db: Database, xendit: XenditInvoices
) -> None:
    transaction_id, invoice = _order(db, xendit, expires_in_s=0)
    _pay_at_xendit(stack, invoice)

    outcome = payments.expire_unpaid(ports, xendit, transaction_id)

    assert outcome == "paid_at_provider"
    assert _status(db, transaction_id) == "pending", "never expired while Xendit holds the client's money"


def test_a_refund_asked_again_after_a_lost_answer_is_one_refund(
    stack: LocalStack, ports: Ports, db: Database, xendit: XenditInvoices
) -> None:
    transaction_id, invoice = _paid_credit(stack, db, xendit, "refunding")
    # An earlier attempt reached Xendit, but its answer never came back (the credit was left `refunding`), under the
    # code before refund attempts were recorded: asking again uses the same reference.
    lost = xendit.refund_invoice(
        invoice_id=invoice.invoice_id,
        amount=PRICE,
        reference_id=f"refund-{transaction_id}",
        reason=refunds.REFUND_REASON,
    )

    done = refunds.refund(ports, xendit, "admin-uid", transaction_id, "klien minta dana kembali")

    assert (done.refund_id, done.amount, done.status) == (lost.refund_id, PRICE, CreditStatus.REFUNDED)
    made = requests.get(f"http://127.0.0.1:{stack.ports.xendit}/_standin/refunds", timeout=10).json()
    assert [r["id"] for r in made if r["invoice_id"] == invoice.invoice_id] == [lost.refund_id]
    assert _ledger(db, transaction_id) == ["refund"]


@pytest.mark.parametrize("succeeded", [True, False])
def test_a_refund_callback_landing_before_xendit_s_answer_settles_the_refund_once(
    stack: LocalStack, ports: Ports, db: Database, succeeded: bool
) -> None:
    transaction_id, invoice = _paid_credit(stack, db, bootstrap.payments(), "available")
    _refunds_answer(stack, invoice, "PENDING")
    delivered: list[dict[str, Any]] = []

    def callback_first(answer: Refund, reference_id: str) -> None:
        delivered.append(_refund_callback(answer, reference_id, succeeded=succeeded))
        assert refunds.receive_callback(ports, delivered[0], webhook_id="w-1") is Outcome.APPLIED

    xendit = CallbackFirst(callback_first)

    if succeeded:
        done = refunds.refund(ports, xendit, "admin-uid", transaction_id, "klien minta dana kembali")
        assert (done.refund_id, done.status) == (delivered[0]["data"]["id"], CreditStatus.REFUNDED)
    else:
        with pytest.raises(Conflict) as refused:
            refunds.refund(ports, xendit, "admin-uid", transaction_id, "klien minta dana kembali")
        assert (refused.value.code, refused.value.details["provider_code"]) == ("refund_failed", "INSUFFICIENT_BALANCE")

    assert _credit(db, transaction_id) == ("refunded" if succeeded else "available")
    assert _ledger(db, transaction_id) == ["refund" if succeeded else "refund_failed"]
    assert refunds.receive_callback(ports, delivered[0], webhook_id="w-1") is Outcome.DUPLICATE
    assert _ledger(db, transaction_id) == ["refund" if succeeded else "refund_failed"]


def test_concurrent_duplicate_refund_callbacks_settle_the_refund_once(
    stack: LocalStack, ports: Ports, db: Database, xendit: XenditInvoices
) -> None:
    transaction_id, invoice = _paid_credit(stack, db, xendit, "available")
    _refunds_answer(stack, invoice, "PENDING")
    pending = refunds.refund(ports, xendit, "admin-uid", transaction_id, "klien minta dana kembali")
    assert pending.status is CreditStatus.REFUNDING
    answer = Refund(
        refund_id=pending.refund_id, invoice_id=invoice.invoice_id, amount=PRICE, currency="IDR", status="PENDING"
    )
    payload = _refund_callback(answer, f"refund-{transaction_id}", succeeded=True)
    racers = 16
    start = threading.Barrier(racers)

    def deliver(_: int) -> Outcome:
        start.wait()
        return refunds.receive_callback(ports, payload, webhook_id="w-1")

    with ThreadPoolExecutor(racers) as pool:
        outcomes = Counter(pool.map(deliver, range(racers)))

    assert outcomes == {Outcome.APPLIED: 1, Outcome.DUPLICATE: racers - 1}
    assert _credit(db, transaction_id) == "refunded"
    assert _ledger(db, transaction_id) == ["refund"]
    again = refunds.refund(ports, xendit, "admin-uid", transaction_id, "klien minta dana kembali")
    assert (again.refund_id, again.status) == (pending.refund_id, CreditStatus.REFUNDED)


@pytest.mark.parametrize(
    ("statement", "refusal"),
    [
        ("UPDATE credit_refunds SET status = 'failed' WHERE transaction_id = CAST(:id AS uuid)", "cannot become"),
        (
            "UPDATE credit_refunds SET xendit_refund_id = 'rfd-other' WHERE transaction_id = CAST(:id AS uuid)",
            "the refund cannot change",
        ),
        ("UPDATE credit_refunds SET reason = 'other' WHERE transaction_id = CAST(:id AS uuid)", "cannot change"),
        ("DELETE FROM credit_refunds WHERE transaction_id = CAST(:id AS uuid)", "never deleted"),
        (
            """INSERT INTO credit_refunds (transaction_id, attempt, reference_id, status, xendit_refund_id, reason,
                                        requested_by)
            VALUES (CAST(:id AS uuid), 2, 'refund-twice', 'succeeded', 'rfd-twice', 'again', 'admin-uid')""",
            "credit_refunds_one_succeeded",
        ),
    ],
)
def test_the_database_refuses_to_rewrite_a_settled_refund(
    stack: LocalStack, ports: Ports, db: Database, xendit: XenditInvoices, statement: str, refusal: str
) -> None:
    transaction_id, _ = _paid_credit(stack, db, xendit, "available")
    refunds.refund(ports, xendit, "admin-uid", transaction_id, "klien minta dana kembali")

    with pytest.raises(Exception, match=refusal), db.transaction() as tx:
        tx.execute(statement, {"id": transaction_id})

    assert _credit(db, transaction_id) == "refunded"


# -- refunds whose callback was lost ---------------------------------------------------------------------------------


def _complete_silently(stack: LocalStack, refund_id: str, status: str) -> dict[str, Any]:
    """The channel settles the refund at Xendit, and Xendit's refund callback never reaches us. The callback is
    returned, to deliver late."""
    url = f"http://127.0.0.1:{stack.ports.xendit}/_standin/refunds/{refund_id}/complete"
    completed = requests.post(url, json={"status": status, "callback": False}, timeout=10)
    assert completed.status_code == 200, completed.text
    callback: dict[str, Any] = completed.json()
    return callback


def _pending_refund(stack: LocalStack, ports: Ports, db: Database, xendit: XenditInvoices) -> tuple[str, Invoice, str]:
    """A credit whose refund Xendit accepted as PENDING: (transaction id, invoice, refund id)."""
    transaction_id, invoice = _paid_credit(stack, db, xendit, "available")
    _refunds_answer(stack, invoice, "PENDING")
    pending = refunds.refund(ports, xendit, "admin-uid", transaction_id, "klien minta dana kembali")
    assert pending.status is CreditStatus.REFUNDING
    return transaction_id, invoice, pending.refund_id


def _pending_since(db: Database, transaction_id: str, minutes: int) -> None:
    """As if Xendit had accepted the refund that long ago."""
    with db.transaction() as tx:
        tx.execute(
            """UPDATE credit_refunds SET updated_at = now() - make_interval(mins => :minutes)
               WHERE transaction_id = CAST(:id AS uuid) AND status = 'pending'""",
            {"id": transaction_id, "minutes": minutes},
        )


def _attempts(db: Database, transaction_id: str) -> list[tuple[int, str]]:
    with db.transaction() as tx:
        rows = tx.all(
            "SELECT attempt, status FROM credit_refunds WHERE transaction_id = CAST(:id AS uuid) ORDER BY attempt",
            {"id": transaction_id},
        )
    return [(row["attempt"], row["status"]) for row in rows]


def _settlements(db: Database, transaction_id: str) -> list[dict[str, Any]]:
    """How each refund attempt of the transaction was settled, as audited."""
    with db.transaction() as tx:
        rows = tx.all(
            """SELECT action, actor_role, new_value FROM audit_log
               WHERE target = :target AND action LIKE 'billing.refund\\_%' ORDER BY id""",
            {"target": f"customer_transactions/{transaction_id}"},
        )
    return [
        {
            "action": row["action"],
            "actor_role": row["actor_role"],
            "source": row["new_value"]["source"],
            "asked_by": row["new_value"].get("asked_by"),
        }
        for row in rows
    ]


def _refund_events(db: Database, transaction_id: str) -> list[str]:
    with db.transaction() as tx:
        rows = tx.all(
            "SELECT outcome FROM payment_events WHERE transaction_id = CAST(:id AS uuid) ORDER BY id",
            {"id": transaction_id},
        )
    return [row["outcome"] for row in rows]


@pytest.mark.parametrize("succeeded", [True, False])
def test_an_admin_asking_again_settles_a_refund_whose_callback_was_lost(
    stack: LocalStack, ports: Ports, db: Database, xendit: XenditInvoices, succeeded: bool
) -> None:
    transaction_id, invoice, refund_id = _pending_refund(stack, ports, db, xendit)
    late_callback = _complete_silently(stack, refund_id, "SUCCEEDED" if succeeded else "FAILED")

    if succeeded:
        done = refunds.refund(ports, xendit, "admin-2", transaction_id, "klien minta dana kembali")
        assert (done.refund_id, done.status) == (refund_id, CreditStatus.REFUNDED)
    else:
        with pytest.raises(Conflict) as failed:
            refunds.refund(ports, xendit, "admin-2", transaction_id, "klien minta dana kembali")
        assert (failed.value.code, failed.value.details["refund_id"]) == ("refund_failed", refund_id)

    assert _credit(db, transaction_id) == ("refunded" if succeeded else "available")
    assert _ledger(db, transaction_id) == ["refund" if succeeded else "refund_failed"]
    assert _settlements(db, transaction_id) == [
        {
            "action": "billing.refund_succeeded" if succeeded else "billing.refund_failed",
            "actor_role": "provider",
            "source": "reconciled",
            "asked_by": "admin-2",
        },
    ]
    assert _refund_events(db, transaction_id) == [], "no callback arrived"
    # Xendit's callback, arriving after all: it finds the refund settled as it says.
    assert refunds.receive_callback(ports, late_callback, webhook_id="w-late") is Outcome.DUPLICATE
    assert _ledger(db, transaction_id) == ["refund" if succeeded else "refund_failed"]
    assert _refund_events(db, transaction_id) == ["duplicate"]
    if succeeded:
        return
    _refunds_answer(stack, invoice, "SUCCEEDED")
    again = refunds.refund(ports, xendit, "admin-2", transaction_id, "klien minta dana kembali")
    assert (again.status, again.refund_id != refund_id) == (CreditStatus.REFUNDED, True)
    assert _attempts(db, transaction_id) == [(1, "failed"), (2, "succeeded")]
    assert _ledger(db, transaction_id) == ["refund_failed", "refund"]


def test_a_refund_still_pending_at_xendit_stays_pending_when_an_admin_asks_again(
    stack: LocalStack, ports: Ports, db: Database, xendit: XenditInvoices
) -> None:
    transaction_id, _, refund_id = _pending_refund(stack, ports, db, xendit)

    again = refunds.refund(ports, xendit, "admin-2", transaction_id, "klien minta dana kembali")

    assert (again.refund_id, again.status) == (refund_id, CreditStatus.REFUNDING)
    assert _attempts(db, transaction_id) == [(1, "pending")]
    assert _ledger(db, transaction_id) == []


def test_xendit_unreachable_while_a_pending_refund_is_looked_up_is_a_503_and_changes_nothing(
    stack: LocalStack, ports: Ports, db: Database, xendit: XenditInvoices
) -> None:
    transaction_id, _, refund_id = _pending_refund(stack, ports, db, xendit)
    _complete_silently(stack, refund_id, "SUCCEEDED")
    nowhere = XenditInvoices(secret_key=get_settings().xendit_secret_key, host=f"http://127.0.0.1:{free_port()}")

    with pytest.raises(Unavailable):
        refunds.refund(ports, nowhere, "admin-2", transaction_id, "klien minta dana kembali")
    assert reconciliation.reconcile_refunds(ports, nowhere, budget_s=30) == NOTHING_DUE
    _pending_since(db, transaction_id, minutes=60)
    assert reconciliation.reconcile_refunds(ports, nowhere, budget_s=30) == reconciliation.RefundSweep(0, 0, 1)

    assert _credit(db, transaction_id) == "refunding"
    assert _attempts(db, transaction_id) == [(1, "pending")]
    assert (_ledger(db, transaction_id), _settlements(db, transaction_id)) == ([], [])
    done = refunds.refund(ports, xendit, "admin-2", transaction_id, "klien minta dana kembali")
    assert (done.refund_id, done.status) == (refund_id, CreditStatus.REFUNDED)


def test_the_refund_sweep_settles_refunds_pending_for_a_while_each_on_its_own(
    stack: LocalStack, ports: Ports, db: Database, xendit: XenditInvoices
) -> None:
    refunded, _, refunded_id = _pending_refund(stack, ports, db, xendit)
    failed, _, failed_id = _pending_refund(stack, ports, db, xendit)
    still_pending, _, _ = _pending_refund(stack, ports, db, xendit)
    just_accepted, _, just_accepted_id = _pending_refund(stack, ports, db, xendit)
    unknown, _ = _paid_credit(stack, db, xendit, "refunding")
    with db.transaction() as tx:  # a refund Xendit has no record of: the lookup fails, the others go on
        tx.execute(
            """INSERT INTO credit_refunds (transaction_id, attempt, reference_id, status, xendit_refund_id, reason,
                                           requested_by, updated_at)
               VALUES (CAST(:id AS uuid), 1, :reference, 'pending', :refund, 'x', 'admin-uid', now())""",
            {"id": unknown, "reference": f"refund-{unknown}", "refund": f"rfd-{uuid.uuid4()}"},
        )
    _complete_silently(stack, refunded_id, "SUCCEEDED")
    _complete_silently(stack, failed_id, "FAILED")
    _complete_silently(stack, just_accepted_id, "SUCCEEDED")
    for transaction_id in (refunded, failed, still_pending, unknown):
        _pending_since(db, transaction_id, minutes=60)

    swept = reconciliation.reconcile_refunds(ports, xendit, budget_s=30)

    assert swept == reconciliation.RefundSweep(settled=2, pending=1, failed=1)
    assert [_credit(db, t) for t in (refunded, failed, still_pending, just_accepted, unknown)] == [
        "refunded",
        "available",
        "refunding",
        "refunding",
        "refunding",
    ]
    assert (_ledger(db, refunded), _ledger(db, failed)) == (["refund"], ["refund_failed"])
    assert _settlements(db, refunded) == [
        {
            "action": "billing.refund_succeeded",
            "actor_role": "provider",
            "source": "reconciled",
            "asked_by": reconciliation.SWEEP_ACTOR,
        }
    ]
    assert _refund_events(db, refunded) == []
    # Looked up a moment ago: the next run leaves them for later, and a refund only just accepted waits for its
    # callback a little longer.
    assert reconciliation.reconcile_refunds(ports, xendit, budget_s=30) == NOTHING_DUE
    assert _credit(db, just_accepted) == "refunding"


def test_sweeps_delivered_at_once_and_the_late_callback_settle_a_refund_once(
    stack: LocalStack, ports: Ports, db: Database, xendit: XenditInvoices
) -> None:
    transaction_id, _, refund_id = _pending_refund(stack, ports, db, xendit)
    late_callback = _complete_silently(stack, refund_id, "SUCCEEDED")
    _pending_since(db, transaction_id, minutes=60)
    racers = 4
    start = threading.Barrier(racers + 1)

    def sweep(_: int) -> reconciliation.RefundSweep:
        start.wait()
        return reconciliation.reconcile_refunds(ports, xendit, budget_s=30)

    def callback() -> Outcome:
        start.wait()
        return refunds.receive_callback(ports, late_callback, webhook_id="w-late")

    with ThreadPoolExecutor(racers + 1) as pool:
        delivered = pool.submit(callback)
        sweeps = list(pool.map(sweep, range(racers)))

    applied = sum(s.settled for s in sweeps) + (delivered.result() is Outcome.APPLIED)
    assert applied == 1, (sweeps, delivered.result())
    assert _credit(db, transaction_id) == "refunded"
    assert _ledger(db, transaction_id) == ["refund"]
    assert len(_settlements(db, transaction_id)) == 1
