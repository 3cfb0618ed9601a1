"""Billing's use cases as stories, on the in-memory unit of work (tests/support/fakes.py) and an in-memory Xendit
(tests/support/fake_billing.py): checkout, callbacks, the payment timeout, what each purpose delivers, refunds, the
refund sweep and the quarantine. The same rules on PostgreSQL and the Xendit stand-in are proven by
tests/e2e/test_billing.py, tests/integration/test_billing_race.py and tests/integration/test_billing_xendit.py."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from shared.domain.billing import CheckoutRequest, CreditStatus, Outcome, Purpose, TransactionStatus
from shared.domain.chat import Participant
from shared.domain.events import DocumentWrite, TaskRequest
from shared.domain.roles import Role
from shared.errors import Conflict, InvalidRequest, NotFound, Unavailable
from shared.services import lifecycle
from shared.services.billing import checkout, payments, purposes, quarantine, reconciliation, refunds
from tests.support.fake_billing import FakeXendit
from tests.support.fake_chat import add_session
from tests.support.fake_lifecycle import add_tier
from tests.support.fakes import FakeDatabase, FakePorts, fake_ports

PRICE = 35_000
SESSION = "5e551011-0000-4000-8000-000000000003"
CLIENT = Participant(Role.CLIENT, "c1", "uid-client")
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
    add_tier(database, "tambah-10", duration_s=600, price=10_000)
    add_tier(database, "gratis", duration_s=600, price=0)
    return database


@pytest.fixture
def ports(db: FakeDatabase) -> FakePorts:
    return fake_ports(db)


@pytest.fixture
def xendit(db: FakeDatabase) -> FakeXendit:
    return FakeXendit(db)


def _checkout(
    ports: FakePorts, xendit: FakeXendit, request: CheckoutRequest = BUY_A_SESSION, key: str | None = None
) -> checkout.Checkout:
    return checkout.open_invoice(ports, xendit, "c1", request, idempotency_key=key)


def _callback(xendit: FakeXendit, transaction_id: str, status: str = "PAID", **changes: Any) -> dict[str, Any]:
    invoice = next(i for i in xendit.invoices.values() if i.external_id == transaction_id)
    paid = {"paid_amount": invoice.amount} if status == "PAID" else {}
    return {
        "id": invoice.invoice_id,
        "external_id": transaction_id,
        "status": status,
        "amount": invoice.amount,
        "currency": "IDR",
        **paid,
        **changes,
    }


def _paid(ports: FakePorts, xendit: FakeXendit, request: CheckoutRequest = BUY_A_SESSION) -> str:
    opened = _checkout(ports, xendit, request)
    assert payments.receive_callback(ports, _callback(xendit, opened.transaction_id), webhook_id="w") is Outcome.APPLIED
    return opened.transaction_id


def _ledger(db: FakeDatabase, transaction_id: str) -> list[str]:
    return [e["kind"] for e in db.table("ledger_entries").values() if e["transaction_id"] == transaction_id]


def _payment_writes(ports: FakePorts, transaction_id: str) -> list[dict[str, Any]]:
    return [
        dict(e.data)
        for e in ports.documents.written
        if isinstance(e, DocumentWrite) and e.paths == (f"payments/{transaction_id}",)
    ]


# -- checkout ----------------------------------------------------------------------------------------------------------


def test_a_checkout_opens_a_transaction_its_invoice_its_document_and_its_timeout(
    ports: FakePorts, xendit: FakeXendit, db: FakeDatabase
) -> None:
    opened = _checkout(ports, xendit)

    (invoice,) = xendit.invoices.values()
    assert (opened.invoice_url, opened.expires_at) == (invoice.invoice_url, db.now + timedelta(seconds=900))
    assert (invoice.external_id, invoice.amount) == (opened.transaction_id, PRICE)
    (document,) = _payment_writes(ports, opened.transaction_id)
    assert (document["status"], document["amount"], document["client_uid"]) == ("pending", PRICE, "uid-client")
    timeout = ports.tasks.created[f"payment-timeout-{opened.transaction_id}"]
    assert (timeout.handler, timeout.at) == ("task_payment_timeout", opened.expires_at)


def test_one_idempotency_key_is_one_checkout(ports: FakePorts, xendit: FakeXendit) -> None:
    first = _checkout(ports, xendit, key="k-1")
    again = _checkout(ports, xendit, key="k-1")
    with pytest.raises(Conflict) as reused:
        _checkout(ports, xendit, CheckoutRequest("tambah-10", Purpose.SESSION, None), key="k-1")

    assert again == first
    assert len(xendit.invoices) == 1, "Xendit was asked once"
    assert reused.value.code == "idempotency_key_reused"


def test_a_checkout_needs_a_client_and_a_payable_active_tier(
    ports: FakePorts, xendit: FakeXendit, db: FakeDatabase
) -> None:
    with pytest.raises(NotFound):
        checkout.open_invoice(ports, xendit, "c-unknown", BUY_A_SESSION, idempotency_key=None)
    with pytest.raises(InvalidRequest):
        _checkout(ports, xendit, CheckoutRequest("tidak-ada", Purpose.SESSION, None))
    with pytest.raises(Conflict) as free:
        _checkout(ports, xendit, CheckoutRequest("gratis", Purpose.SESSION, None))

    assert free.value.code == "tier_not_payable"
    assert db.table("customer_transactions") == {} and xendit.invoices == {}


def test_xendit_unreachable_at_checkout_is_retried_with_the_same_key(ports: FakePorts, xendit: FakeXendit) -> None:
    xendit.outage = True
    with pytest.raises(Unavailable):
        _checkout(ports, xendit, key="k-2")

    xendit.outage = False
    opened = _checkout(ports, xendit, key="k-2")

    assert [i.external_id for i in xendit.invoices.values()] == [opened.transaction_id]


# -- what each purpose delivers ----------------------------------------------------------------------------------------


def test_every_purpose_has_a_handler() -> None:
    assert set(purposes.PURPOSES) == set(Purpose)


def test_a_paid_session_is_a_credit_and_its_replays_change_nothing(
    ports: FakePorts, xendit: FakeXendit, db: FakeDatabase
) -> None:
    transaction_id = _paid(ports, xendit)
    replay = payments.receive_callback(ports, _callback(xendit, transaction_id), webhook_id="w")

    assert replay is Outcome.DUPLICATE
    assert _ledger(db, transaction_id) == ["payment_received"]
    assert db.table("session_credits")[transaction_id]["status"] == CreditStatus.AVAILABLE
    assert _payment_writes(ports, transaction_id)[-1]["status"] == "paid"
    outcomes = [e["record"].outcome for e in db.table("payment_events").values()]
    assert outcomes == [Outcome.APPLIED, Outcome.DUPLICATE], "every delivery is recorded"


def test_an_extension_is_bought_only_once_accepted_and_its_payment_adds_the_time(
    ports: FakePorts, xendit: FakeXendit, db: FakeDatabase
) -> None:
    requested = lifecycle.request_extension(ports, CLIENT, session_id=SESSION, tier_id="tambah-10")
    buy = CheckoutRequest("tambah-10", Purpose.EXTENSION, requested.extension_id)
    with pytest.raises(Conflict) as unanswered:
        _checkout(ports, xendit, buy)
    lifecycle.respond_extension(ports, mitra_id="m1", extension_id=requested.extension_id, accept=True)

    transaction_id = _paid(ports, xendit, buy)

    assert unanswered.value.code == "extension_closed"
    assert db.table("sessions")[SESSION]["version"] == 2
    assert db.table("session_extensions")[requested.extension_id]["status"] == "applied"
    assert transaction_id not in db.table("session_credits")


def test_an_extension_paid_after_its_session_ended_stays_with_the_client_as_a_credit(
    ports: FakePorts, xendit: FakeXendit, db: FakeDatabase
) -> None:
    requested = lifecycle.request_extension(ports, CLIENT, session_id=SESSION, tier_id="tambah-10")
    lifecycle.respond_extension(ports, mitra_id="m1", extension_id=requested.extension_id, accept=True)
    opened = _checkout(ports, xendit, CheckoutRequest("tambah-10", Purpose.EXTENSION, requested.extension_id))
    lifecycle.end_early(ports, CLIENT, session_id=SESSION)

    outcome = payments.receive_callback(ports, _callback(xendit, opened.transaction_id), webhook_id="w")

    assert outcome is Outcome.APPLIED
    assert db.table("session_credits")[opened.transaction_id]["tier_id"] == "tambah-10"
    assert db.table("sessions")[SESSION]["version"] == 1


# -- what cannot be matched --------------------------------------------------------------------------------------------


def test_money_that_does_not_match_the_order_is_quarantined_and_moves_nothing(
    ports: FakePorts, xendit: FakeXendit, db: FakeDatabase
) -> None:
    opened = _checkout(ports, xendit)
    short = _callback(xendit, opened.transaction_id, paid_amount=PRICE - 1)

    assert payments.receive_callback(ports, short, webhook_id="w") is Outcome.QUARANTINED
    assert payments.receive_callback(ports, {"hello": "world"}, webhook_id="w") is Outcome.IGNORED
    assert db.table("customer_transactions")[opened.transaction_id]["status"] == "pending"
    assert _ledger(db, opened.transaction_id) == []

    (shown,), cursor = quarantine.list_quarantined(ports, reviewed=None, cursor=None, limit=10)
    assert (shown["reason"], shown["transaction_id"], cursor) == ("amount_mismatch", opened.transaction_id, None)
    first = quarantine.review(ports, "admin-1", shown["event_id"], "dana dikembalikan lewat dashboard")
    again = quarantine.review(ports, "admin-2", shown["event_id"], "lagi")
    assert (again["reviewed_by"], again["review_note"]) == ("admin-1", "dana dikembalikan lewat dashboard")
    assert first == again
    assert [a["action"] for a in db.audit] == ["payment_event.review"], "audited once"
    assert quarantine.list_quarantined(ports, reviewed=False, cursor=None, limit=10) == ([], None)
    with pytest.raises(NotFound):
        quarantine.review(ports, "admin-1", 10_000, "tidak ada")


def test_quarantined_callbacks_are_paged_newest_first(ports: FakePorts, xendit: FakeXendit, db: FakeDatabase) -> None:
    opened = _checkout(ports, xendit)
    for amount in (1, 2, 3):
        db.tick(1)
        payments.receive_callback(ports, _callback(xendit, opened.transaction_id, amount=amount), webhook_id="w")

    page, cursor = quarantine.list_quarantined(ports, reviewed=None, cursor=None, limit=2)
    rest, end = quarantine.list_quarantined(ports, reviewed=None, cursor=cursor, limit=2)

    assert [e["amount"] for e in page + rest] == [3, 2, 1]
    assert cursor is not None and end is None


# -- the payment window closes -----------------------------------------------------------------------------------------


def test_the_timeout_expires_what_stays_unpaid_and_leaves_a_late_payment_to_its_callback(
    ports: FakePorts, xendit: FakeXendit, db: FakeDatabase
) -> None:
    unpaid, paid_late = _checkout(ports, xendit), _checkout(ports, xendit)
    with pytest.raises(Unavailable):
        payments.expire_unpaid(ports, xendit, unpaid.transaction_id)  # fired early: Cloud Tasks retries it
    db.tick(900)
    xendit.pay(next(i.invoice_id for i in xendit.invoices.values() if i.external_id == paid_late.transaction_id))

    assert payments.expire_unpaid(ports, xendit, unpaid.transaction_id) == TransactionStatus.EXPIRED
    assert payments.expire_unpaid(ports, xendit, unpaid.transaction_id) == "stale"
    assert payments.expire_unpaid(ports, xendit, paid_late.transaction_id) == "paid_at_provider"

    statuses = {t["id"]: t["status"] for t in db.table("customer_transactions").values()}
    assert statuses == {unpaid.transaction_id: "expired", paid_late.transaction_id: "pending"}
    assert _payment_writes(ports, unpaid.transaction_id)[-1]["status"] == "expired"
    assert [i.status for i in xendit.invoices.values()] == ["EXPIRED", "PAID"]
    late = payments.receive_callback(ports, _callback(xendit, unpaid.transaction_id), webhook_id="w")
    assert late is Outcome.QUARANTINED, "paid after expiry: an admin's"


def test_the_timeout_is_a_task_committed_with_the_checkout(
    ports: FakePorts, xendit: FakeXendit, db: FakeDatabase
) -> None:
    ports.tasks.refuse = True

    opened = _checkout(ports, xendit)

    assert opened.invoice_url, "a Cloud Tasks outage refuses no checkout"
    (timer,) = [row.event for row in db.pending() if isinstance(row.event, TaskRequest)]
    assert timer.payload == {"transaction_id": opened.transaction_id}


# -- refunds -----------------------------------------------------------------------------------------------------------


def _refund(ports: FakePorts, xendit: FakeXendit, transaction_id: str) -> refunds.RefundDone:
    return refunds.refund(ports, xendit, "admin-uid", transaction_id, "klien minta dana kembali")


def _refund_callback(db: FakeDatabase, xendit: FakeXendit, transaction_id: str, status: str) -> dict[str, Any]:
    (reference, answer), *_ = [(k, r) for k, r in xendit.refunds.items() if transaction_id in k]
    settled = xendit.settle_refund(answer.refund_id, status)
    return {
        "event": "refund.succeeded" if status == "SUCCEEDED" else "refund.failed",
        "data": {
            "id": settled.refund_id,
            "status": status,
            "amount": float(settled.amount),
            "currency": "IDR",
            "reference_id": reference,
            "invoice_id": settled.invoice_id,
            "failure_code": None if status == "SUCCEEDED" else "INSUFFICIENT_BALANCE",
        },
    }


def test_an_unused_credit_is_refunded_once_however_often_an_admin_asks(
    ports: FakePorts, xendit: FakeXendit, db: FakeDatabase
) -> None:
    transaction_id = _paid(ports, xendit)

    done = _refund(ports, xendit, transaction_id)
    again = _refund(ports, xendit, transaction_id)

    assert (done.status, done.amount) == (CreditStatus.REFUNDED, PRICE)
    assert again == done
    assert len(xendit.refunds) == 1
    assert _ledger(db, transaction_id) == ["payment_received", "refund"]
    actions = [(a["action"], a["actor_role"]) for a in db.audit]
    assert actions == [("billing.refund", "admin"), ("billing.refund_succeeded", "provider")]


def test_only_a_paid_unused_credit_is_refunded(ports: FakePorts, xendit: FakeXendit, db: FakeDatabase) -> None:
    pending = _checkout(ports, xendit)
    in_use = _paid(ports, xendit)
    db.table("session_credits")[in_use]["status"] = CreditStatus.RESERVED

    with pytest.raises(NotFound):
        _refund(ports, xendit, "t-unknown")
    with pytest.raises(Conflict) as unpaid:
        _refund(ports, xendit, pending.transaction_id)
    with pytest.raises(Conflict) as reserved:
        _refund(ports, xendit, in_use)

    assert (unpaid.value.code, reserved.value.code) == ("not_refundable", "credit_in_use")
    assert xendit.refunds == {}


def test_a_pending_refund_is_settled_by_its_callback_and_a_failed_one_frees_the_credit_for_a_new_attempt(
    ports: FakePorts, xendit: FakeXendit, db: FakeDatabase
) -> None:
    transaction_id = _paid(ports, xendit)
    xendit.refund_status = "PENDING"

    pending = _refund(ports, xendit, transaction_id)
    assert pending.status is CreditStatus.REFUNDING
    failed = _refund_callback(db, xendit, transaction_id, "FAILED")
    assert refunds.receive_callback(ports, failed, webhook_id="w") is Outcome.APPLIED
    assert refunds.receive_callback(ports, failed, webhook_id="w") is Outcome.DUPLICATE
    assert db.table("session_credits")[transaction_id]["status"] == CreditStatus.AVAILABLE

    xendit.refund_status = "SUCCEEDED"
    done = _refund(ports, xendit, transaction_id)

    assert done.status is CreditStatus.REFUNDED
    references = sorted(xendit.refunds)
    assert references == [f"refund-{transaction_id}", f"refund-{transaction_id}-2"], "a new attempt, a new key"
    assert _ledger(db, transaction_id) == ["payment_received", "refund_failed", "refund"]


def test_a_refund_callback_that_contradicts_the_refund_is_quarantined(
    ports: FakePorts, xendit: FakeXendit, db: FakeDatabase
) -> None:
    transaction_id = _paid(ports, xendit)
    xendit.refund_status = "PENDING"
    _refund(ports, xendit, transaction_id)
    callback = _refund_callback(db, xendit, transaction_id, "SUCCEEDED")
    callback["data"]["amount"] = float(PRICE * 2)

    assert refunds.receive_callback(ports, callback, webhook_id="w") is Outcome.QUARANTINED
    assert db.table("session_credits")[transaction_id]["status"] == CreditStatus.REFUNDING
    (event,) = [e["record"] for e in db.table("payment_events").values() if e["record"].kind == "refund"]
    assert (event.reason, event.transaction_id) == ("amount_mismatch", transaction_id)


def test_the_sweep_settles_refunds_whose_callback_never_came(
    ports: FakePorts, xendit: FakeXendit, db: FakeDatabase
) -> None:
    settled, still_pending = _paid(ports, xendit), _paid(ports, xendit)
    xendit.refund_status = "PENDING"
    _refund(ports, xendit, settled)
    _refund(ports, xendit, still_pending)
    _refund_callback(db, xendit, settled, "SUCCEEDED")  # settled at Xendit; its callback is lost

    assert reconciliation.reconcile_refunds(ports, xendit, budget_s=30) == reconciliation.RefundSweep(0, 0, 0)
    db.tick(6 * 60)
    assert reconciliation.reconcile_refunds(ports, xendit, budget_s=30) == reconciliation.RefundSweep(1, 1, 0)
    assert reconciliation.reconcile_refunds(ports, xendit, budget_s=30) == reconciliation.RefundSweep(0, 0, 0)

    assert db.table("session_credits")[settled]["status"] == CreditStatus.REFUNDED
    assert db.table("session_credits")[still_pending]["status"] == CreditStatus.REFUNDING
    settlement = db.audit[-1]
    assert (settlement["action"], settlement["new"]["source"], settlement["new"]["asked_by"]) == (
        "billing.refund_succeeded",
        "reconciled",
        reconciliation.SWEEP_ACTOR,
    )
    assert [e["record"].kind for e in db.table("payment_events").values()] == ["invoice", "invoice"]


def test_a_paid_document_reaches_the_client_app(ports: FakePorts, xendit: FakeXendit) -> None:
    transaction_id = _paid(ports, xendit)

    pushed = [json.loads(data) for _, data, _ in ports.publisher.published]
    assert pushed == [], "the payment document is how the app learns it, not a push"
    assert [w["status"] for w in _payment_writes(ports, transaction_id)] == ["pending", "paid"]
