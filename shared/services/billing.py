"""Billing: checkout through a Xendit invoice, Xendit's callbacks, expiry of what stays unpaid, admin refunds, and
the reconciliation of refunds whose callback never came.

Xendit is called outside any database transaction, so a slow provider never holds a row lock; the short
transactions before and after each call are guarded so that repeating the whole call is always safe.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

from shared.adapters.postgres.database import Database, Row, Tx
from shared.adapters.xendit_payments import (
    Invoice,
    InvoiceCallback,
    PaymentProviderError,
    Refund,
    RefundCallback,
    parse_invoice_callback,
    parse_refund_callback,
)
from shared.domain import billing
from shared.domain.billing import CreditStatus, Outcome, Purpose, RefundStatus, TransactionStatus, Verdict
from shared.errors import AppError, Conflict, InvalidRequest, NotFound, Unavailable
from shared.logging import event
from shared.services import audit, credits, ledger, projections, settings_store
from shared.services.outbox import ts
from shared.services.ports import PaymentProvider, Ports
from shared.services.projector import project_after_commit

log = logging.getLogger(__name__)

TIMEOUT_QUEUE = "payment-timeouts"
TIMEOUT_HANDLER = "task_payment_timeout"
# The only thing refunded here is a credit the client never used and asked to have back.
REFUND_REASON = "REQUESTED_BY_CUSTOMER"
# A timeout task that fires a little early (Cloud Tasks' own jitter) still expires the transaction.
_DEADLINE_TOLERANCE = timedelta(seconds=1)


class PaymentProviderFailed(AppError):
    """Xendit refused a call that repeating will not fix (our configuration, or a bug): nothing can be paid now."""

    status = 502
    code = "payment_provider_error"


@dataclass(frozen=True)
class CheckoutRequest:
    tier_id: str
    purpose: Purpose
    extension_id: str | None


@dataclass(frozen=True)
class Checkout:
    transaction_id: str
    invoice_url: str
    expires_at: datetime


@dataclass(frozen=True)
class PaidTransaction:
    transaction_id: str
    client_id: str
    purpose: Purpose
    tier_id: str
    duration_s: int
    amount: int
    extension_id: str | None


@dataclass(frozen=True)
class RefundDone:
    transaction_id: str
    refund_id: str
    amount: int
    currency: str
    # `refunded` once Xendit confirmed the money is back; `refunding` while it has accepted the refund but not yet.
    status: CreditStatus


# -- what each purpose adds ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PurposeHandler:
    # Refuses (with a Conflict) a checkout for something that cannot be bought now, e.g. an unknown extension.
    check: Callable[[Tx, str, CheckoutRequest], None]
    # Delivers what was bought, inside the transaction that marks the payment paid. False when it no longer can be
    # (the session ended before the extension's payment landed): the money then stays with the client as a session
    # credit of the same tier, to use or to have refunded, as after a request nobody took.
    on_paid: Callable[[Tx, Ports, PaidTransaction], bool]


_PURPOSES: dict[Purpose, PurposeHandler] = {}


def register_purpose(purpose: Purpose, handler: PurposeHandler) -> None:
    """Called by the module that owns a purpose. The webhook runs in its own instance, so functions/billing_webhook.py
    must register that purpose too, or a paid transaction of that purpose is refused until it does."""
    _PURPOSES[purpose] = handler


def _handler(purpose: Purpose) -> PurposeHandler:
    handler = _PURPOSES.get(purpose)
    if handler is None:
        # Nothing of this purpose can be awaiting payment before its flow registers a handler.
        raise Conflict(f"there is no {purpose} awaiting payment", code=f"{purpose}_not_found")
    return handler


def _nothing_to_check(_tx: Tx, _client_id: str, _request: CheckoutRequest) -> None:
    """Any client may buy a session of any active tier; the tier itself is checked for every purpose."""


def _issue_credit(tx: Tx, _ports: Ports, paid: PaidTransaction) -> bool:
    credits.issue(tx, paid.transaction_id)
    return True


register_purpose(Purpose.SESSION, PurposeHandler(check=_nothing_to_check, on_paid=_issue_credit))


# -- checkout --------------------------------------------------------------------------------------------------------

_PENDING_COLUMNS = """id::text AS transaction_id, purpose, tier_id, extension_id::text, duration_s, amount, status,
                      invoice_url, expires_at, now() AS now"""


@dataclass(frozen=True)
class _Pending:
    transaction_id: str
    purpose: str
    tier_id: str
    extension_id: str | None
    duration_s: int
    amount: int
    status: str
    invoice_url: str | None
    expires_at: datetime
    now: datetime


def checkout(
    ports: Ports, payments: PaymentProvider, client_id: str, request: CheckoutRequest, *, idempotency_key: str | None
) -> Checkout:
    """A pending transaction and its Xendit invoice. The same Idempotency-Key gives back the same invoice."""
    pending = _open(ports, client_id, request, idempotency_key)
    if pending.invoice_url is not None:
        return Checkout(pending.transaction_id, pending.invoice_url, pending.expires_at)
    invoice = _create_invoice(payments, pending)
    return _attach(ports, payments, pending, invoice)


def _open(ports: Ports, client_id: str, request: CheckoutRequest, idempotency_key: str | None) -> _Pending:
    with ports.db.transaction() as tx:
        client_uid = tx.scalar(
            "SELECT firebase_uid FROM clients WHERE id = CAST(:id AS uuid) FOR UPDATE", {"id": client_id}
        )  # serialises one client's checkouts, so one Idempotency-Key makes one transaction
        if client_uid is None:
            raise NotFound("no such client")
        earlier = _replay(tx, client_id, request, idempotency_key)
        if earlier is not None:
            return earlier
        pending = _insert(tx, client_id, request, idempotency_key)
        projections.payment(tx, pending.transaction_id, client_uid=client_uid, at=pending.now, data=_shown(pending))
        # Scheduled before the commit: a task for a transaction that never committed finds nothing and stops.
        ports.tasks.schedule(
            queue=TIMEOUT_QUEUE, task_id=billing.payment_timeout_task_id(pending.transaction_id),
            handler=TIMEOUT_HANDLER, payload={"transaction_id": pending.transaction_id}, at=pending.expires_at,
        )  # fmt: skip
    project_after_commit(ports, tx.outbox_ids)
    return pending


def _replay(tx: Tx, client_id: str, request: CheckoutRequest, idempotency_key: str | None) -> _Pending | None:
    if not idempotency_key:
        return None
    row = tx.one(
        f"""SELECT {_PENDING_COLUMNS} FROM customer_transactions
            WHERE client_id = CAST(:client AS uuid) AND idempotency_key = :key""",
        {"client": client_id, "key": idempotency_key},
    )
    if row is None:
        return None
    if (row["tier_id"], row["purpose"], row["extension_id"]) != (
        request.tier_id,
        request.purpose,
        request.extension_id,
    ):
        raise Conflict("this Idempotency-Key was used for another checkout", code="idempotency_key_reused")
    return _Pending(**row)


def _insert(tx: Tx, client_id: str, request: CheckoutRequest, idempotency_key: str | None) -> _Pending:
    tier = tx.one("SELECT duration_s, price FROM pricing_tiers WHERE id = :id AND active", {"id": request.tier_id})
    if tier is None:
        raise InvalidRequest("no such pricing tier", fields=[{"field": "tier_id", "problem": "unknown or inactive"}])
    if not billing.is_payable(tier["price"]):
        raise Conflict("this tier costs nothing", code="tier_not_payable")
    _handler(request.purpose).check(tx, client_id, request)
    config = settings_store.load_config(tx)
    row = tx.one(
        f"""INSERT INTO customer_transactions
                (id, client_id, purpose, tier_id, duration_s, amount, extension_id, idempotency_key, expires_at)
            VALUES (CAST(:id AS uuid), CAST(:client AS uuid), :purpose, :tier, :duration, :amount,
                    CAST(:extension AS uuid), :key, now() + make_interval(secs => :expiry))
            RETURNING {_PENDING_COLUMNS}""",
        {"id": str(uuid.uuid4()), "client": client_id, "purpose": request.purpose, "tier": request.tier_id,
         "duration": tier["duration_s"], "amount": tier["price"], "extension": request.extension_id,
         "key": idempotency_key, "expiry": config.payment_expiry_s},
    )  # fmt: skip
    assert row is not None
    return _Pending(**row)


def _shown(pending: _Pending) -> dict[str, Any]:
    """What the client's app sees of its payment while it waits for Xendit."""
    return {"status": pending.status, "purpose": pending.purpose, "tier_id": pending.tier_id,
            "amount": pending.amount, "currency": billing.CURRENCY, "expires_at": ts(pending.expires_at)}  # fmt: skip


def _create_invoice(payments: PaymentProvider, pending: _Pending) -> Invoice:
    left = billing.seconds_left(pending.expires_at, pending.now)
    if pending.status != TransactionStatus.PENDING or left < 1:
        raise Conflict("this checkout has expired; start a new one", code="transaction_expired")
    try:
        return payments.create_invoice(
            external_id=pending.transaction_id, amount=pending.amount, description=_description(pending),
            invoice_duration_s=left,
        )  # fmt: skip
    except PaymentProviderError as exc:
        raise _provider_failure(exc, "create_invoice") from exc


def _description(pending: _Pending) -> str:
    """Shown to the payer on Xendit's page."""
    what = "Perpanjangan sesi" if pending.purpose == Purpose.EXTENSION else "Sesi curhat"
    return f"Halo Bestie: {what} {pending.duration_s // 60} menit"


def _attach(ports: Ports, payments: PaymentProvider, pending: _Pending, invoice: Invoice) -> Checkout:
    with ports.db.transaction() as tx:
        # Only the first attempt attaches its invoice; any other reads what is there.
        attached = tx.one(
            """UPDATE customer_transactions SET xendit_invoice_id = :invoice, invoice_url = :url
               WHERE id = CAST(:id AS uuid) AND xendit_invoice_id IS NULL AND status = 'pending'
               RETURNING invoice_url, expires_at""",
            {"id": pending.transaction_id, "invoice": invoice.invoice_id, "url": invoice.invoice_url},
        )
        row = attached or tx.one(
            "SELECT invoice_url, expires_at FROM customer_transactions WHERE id = CAST(:id AS uuid)",
            {"id": pending.transaction_id},
        )
    assert row is not None
    if row["invoice_url"] != invoice.invoice_url:
        # A concurrent retry with the same key attached its invoice first, or the transaction expired meanwhile:
        # this invoice was never shown to anyone and must never be paid.
        _discard(payments, invoice)
    if row["invoice_url"] is None:
        raise Conflict("this checkout has expired; start a new one", code="transaction_expired")
    return Checkout(pending.transaction_id, row["invoice_url"], row["expires_at"])


def _discard(payments: PaymentProvider, invoice: Invoice) -> None:
    try:
        payments.expire_invoice(invoice.invoice_id)
    except PaymentProviderError:
        # It still expires on its own at Xendit; were it paid first, its callback is quarantined (invoice_mismatch).
        event(log, "spare invoice not expired", logging.WARNING, invoice=invoice.invoice_id)


def _provider_failure(exc: PaymentProviderError, call: str) -> AppError:
    event(log, "xendit call failed", logging.WARNING, call=call, status=exc.status, code=exc.error_code,
          retryable=exc.retryable)  # fmt: skip
    if exc.retryable:
        return Unavailable("the payment provider is unavailable; retry the request")
    return PaymentProviderFailed("the payment provider refused the request")


# -- Xendit's callbacks ----------------------------------------------------------------------------------------------

# A signed body that is no invoice callback: recorded for a look, acknowledged (Xendit retrying it cannot help).
_MALFORMED = Verdict(Outcome.IGNORED, "malformed")
_ORDER_COLUMNS = """t.id::text AS transaction_id, t.client_id::text, c.firebase_uid AS client_uid, t.purpose,
                    t.tier_id, t.extension_id::text, t.duration_s, t.amount, t.currency, t.status,
                    t.xendit_invoice_id"""


def receive_callback(ports: Ports, payload: dict[str, Any], *, webhook_id: str | None) -> Outcome:
    """Record one delivery and apply it at most once: any number of replays, in any order, concurrently, moves a
    transaction once. The row lock makes concurrent duplicates wait for the first and then see it done."""
    callback = parse_invoice_callback(payload)
    with ports.db.transaction() as tx:
        order = _locked_order(tx, callback.external_id) if callback else None
        verdict = billing.judge(_as_order(order), _as_report(callback)) if callback else _MALFORMED
        if callback is not None and order is not None and verdict.move_to is not None:
            _apply(tx, ports, order, callback, verdict.move_to)
        _record(tx, verdict, payload=payload, webhook_id=webhook_id, callback=callback, order=order)
    project_after_commit(ports, tx.outbox_ids)
    level = logging.WARNING if verdict.outcome is Outcome.QUARANTINED else logging.INFO
    event(log, "xendit callback", level, outcome=verdict.outcome, reason=verdict.reason,
          transaction=order["transaction_id"] if order else None)  # fmt: skip
    return verdict.outcome


def _locked_order(tx: Tx, external_id: str) -> Row | None:
    try:
        uuid.UUID(external_id)
    except ValueError:
        return None
    return tx.one(
        f"""SELECT {_ORDER_COLUMNS} FROM customer_transactions t JOIN clients c ON c.id = t.client_id
            WHERE t.id = CAST(:id AS uuid) FOR UPDATE OF t""",
        {"id": external_id},
    )


def _as_order(order: Row | None) -> billing.Order | None:
    if order is None:
        return None
    return billing.Order(
        status=TransactionStatus(order["status"]), amount=order["amount"], currency=order["currency"],
        invoice_id=order["xendit_invoice_id"],
    )  # fmt: skip


def _as_report(callback: InvoiceCallback) -> billing.Report:
    status = callback.transaction_status
    return billing.Report(
        invoice_id=callback.id, status=TransactionStatus(status) if status else None, amount=callback.amount,
        paid_amount=callback.paid_amount, currency=callback.currency,
    )  # fmt: skip


def _apply(tx: Tx, ports: Ports, order: Row, callback: InvoiceCallback, target: TransactionStatus) -> None:
    if target is TransactionStatus.EXPIRED:
        _mark_expired(tx, order["transaction_id"])
        return
    paid = tx.one(
        """UPDATE customer_transactions
           SET status = 'paid', paid_at = now(), paid_amount = amount, payment_method = :method,
               payment_channel = :channel
           WHERE id = CAST(:id AS uuid) AND status = 'pending' AND xendit_invoice_id = :invoice
           RETURNING paid_at""",
        {"id": order["transaction_id"], "invoice": callback.id, "method": callback.payment_method,
         "channel": callback.payment_channel},
    )  # fmt: skip
    if paid is None:
        raise Unavailable("the transaction changed while the callback was applied; retry")
    ledger.record(tx, transaction_id=order["transaction_id"], kind="payment_received", external_ref=callback.id)
    if not _handler(Purpose(order["purpose"])).on_paid(tx, ports, _paid(order)):
        credits.issue(tx, order["transaction_id"])
        event(log, "paid purpose undeliverable, kept as a credit", logging.WARNING,
              transaction=order["transaction_id"], purpose=order["purpose"])  # fmt: skip
    projections.payment(tx, order["transaction_id"], client_uid=order["client_uid"], at=paid["paid_at"],
                        data={"status": TransactionStatus.PAID})  # fmt: skip


def _paid(order: Row) -> PaidTransaction:
    return PaidTransaction(
        transaction_id=order["transaction_id"], client_id=order["client_id"], purpose=Purpose(order["purpose"]),
        tier_id=order["tier_id"], duration_s=order["duration_s"], amount=order["amount"],
        extension_id=order["extension_id"],
    )  # fmt: skip


def _mark_expired(tx: Tx, transaction_id: str) -> bool:
    expired = tx.one(
        """UPDATE customer_transactions t SET status = 'expired', expired_at = now()
           FROM clients c WHERE t.id = CAST(:id AS uuid) AND t.status = 'pending' AND c.id = t.client_id
           RETURNING c.firebase_uid, t.expired_at""",
        {"id": transaction_id},
    )
    if expired is None:
        return False
    projections.payment(tx, transaction_id, client_uid=expired["firebase_uid"], at=expired["expired_at"],
                        data={"status": TransactionStatus.EXPIRED})  # fmt: skip
    return True


def _record(
    tx: Tx, verdict: Verdict, *, payload: dict[str, Any], webhook_id: str | None, callback: InvoiceCallback | None,
    order: Row | None,
) -> None:  # fmt: skip
    reported = callback.model_dump() if callback else {}
    tx.execute(
        """INSERT INTO payment_events (webhook_id, xendit_invoice_id, external_id, transaction_id, provider_status,
                                       amount, paid_amount, currency, outcome, reason, payload)
           VALUES (:webhook, :invoice, :external, CAST(:transaction AS uuid), :status, :amount, :paid, :currency,
                   :outcome, :reason, CAST(:payload AS jsonb))""",
        {"webhook": webhook_id, "invoice": reported.get("id"), "external": reported.get("external_id"),
         "transaction": order["transaction_id"] if order else None, "status": reported.get("status"),
         "amount": reported.get("amount"), "paid": reported.get("paid_amount"), "currency": reported.get("currency"),
         "outcome": verdict.outcome, "reason": verdict.reason, "payload": json.dumps(payload)},
    )  # fmt: skip


# -- the payment window closes ---------------------------------------------------------------------------------------


def expire_unpaid(ports: Ports, payments: PaymentProvider, transaction_id: str) -> str:
    """The timeout task: expire the invoice at Xendit, then the transaction. Xendit decides the race with a payment
    at the last second: an invoice it reports paid is left to its callback. Returns what happened, for the log."""
    order = ports.db.read_one(
        """SELECT status, xendit_invoice_id, expires_at, now() AS now FROM customer_transactions
           WHERE id = CAST(:id AS uuid)""",
        {"id": transaction_id},
    )
    if order is None or order["status"] != TransactionStatus.PENDING:
        return "stale"
    if order["now"] < order["expires_at"] - _DEADLINE_TOLERANCE:
        raise Unavailable("the payment window is still open")  # fired early: Cloud Tasks retries shortly
    if order["xendit_invoice_id"] and _paid_at_provider(payments, order["xendit_invoice_id"]):
        return "paid_at_provider"
    with ports.db.transaction() as tx:
        expired = _mark_expired(tx, transaction_id)
    project_after_commit(ports, tx.outbox_ids)
    return TransactionStatus.EXPIRED if expired else "stale"


def _paid_at_provider(payments: PaymentProvider, invoice_id: str) -> bool:
    try:
        return payments.expire_invoice(invoice_id).is_paid
    except PaymentProviderError as exc:
        if exc.retryable:
            raise _provider_failure(exc, "expire_invoice") from exc
    # Xendit refuses to expire an invoice that is no longer pending; its own state says why.
    try:
        return payments.get_invoice(invoice_id).is_paid
    except PaymentProviderError as exc:
        if exc.status == 404:
            return False  # Xendit has no such invoice, so nothing can be paid on it
        raise Unavailable("Xendit could not say whether the invoice was paid") from exc


# -- refunds ---------------------------------------------------------------------------------------------------------

_ATTEMPT_COLUMNS = """r.transaction_id::text, r.attempt, r.reference_id, r.status, r.xendit_refund_id AS refund_id,
                      r.failure_code, r.reason, r.requested_by, t.xendit_invoice_id AS invoice_id, t.amount,
                      t.currency"""


@dataclass(frozen=True)
class _Attempt:
    transaction_id: str
    attempt: int
    reference_id: str
    status: RefundStatus
    refund_id: str | None
    failure_code: str | None
    reason: str
    requested_by: str
    invoice_id: str
    amount: int
    currency: str


def refund(ports: Ports, payments: PaymentProvider, admin_uid: str, transaction_id: str, reason: str) -> RefundDone:
    """Give an unused credit's money back through Xendit. The credit is `refunding` from the first ask until Xendit
    confirms the money is back (in its answer, or later by a refund callback), so no pairing request can take it
    meanwhile. Asking again returns the same refund: one whose answer was lost is asked for again with its
    idempotency key, and Xendit is asked where a pending one stands, in case its callback was lost. Once a refund
    failed, asking again is a new attempt."""
    claimed = _claim_for_refund(ports, admin_uid, transaction_id, reason)
    if isinstance(claimed, RefundDone):
        return claimed
    if claimed.status is RefundStatus.REQUESTED:
        claimed = _ask_xendit(ports, payments, claimed)
    elif claimed.status is RefundStatus.PENDING:
        claimed = _reconcile(ports.db, payments, claimed, asked_by=admin_uid).attempt
    return _done(claimed)


def _claim_for_refund(ports: Ports, admin_uid: str, transaction_id: str, reason: str) -> _Attempt | RefundDone:
    """The attempt open for this credit (a new one when none is), or the refund made before."""
    with ports.db.transaction() as tx:
        order = tx.one(
            "SELECT status, amount, currency FROM customer_transactions WHERE id = CAST(:id AS uuid)",
            {"id": transaction_id},
        )
        if order is None:
            raise NotFound("no such transaction")
        if order["status"] != TransactionStatus.PAID:
            raise Conflict("only a paid credit can be refunded", code="not_refundable")
        found = tx.scalar(
            "SELECT status FROM session_credits WHERE transaction_id = CAST(:id AS uuid) FOR UPDATE",
            {"id": transaction_id},
        )  # serialises one credit's refund requests, so they open one attempt between them
        if found is None:
            raise Conflict("this payment was delivered as bought and holds no credit", code="not_refundable")
        status = CreditStatus(found)
        refusal = billing.refund_refusal(status)
        if refusal is not None:
            raise Conflict(f"this credit is {status} and cannot be refunded", code=refusal)
        if status is CreditStatus.REFUNDED:
            refund_id = tx.scalar(
                "SELECT external_ref FROM ledger_entries WHERE transaction_id = CAST(:id AS uuid) AND kind = 'refund'",
                {"id": transaction_id},
            )
            return RefundDone(transaction_id, str(refund_id), order["amount"], order["currency"], status)
        if status is CreditStatus.AVAILABLE:
            tx.execute(
                """UPDATE session_credits SET status = :to, updated_at = now()
                   WHERE transaction_id = CAST(:id AS uuid) AND status = 'available'""",
                {"id": transaction_id, "to": status.move(CreditStatus.REFUNDING)},
            )
        return _open_attempt(tx, admin_uid, transaction_id, reason, credit_was=status)


def _open_attempt(tx: Tx, admin_uid: str, transaction_id: str, reason: str, *, credit_was: CreditStatus) -> _Attempt:
    """The attempt already open keeps the reference (and the reason) it was first asked with."""
    row = tx.one(
        f"""SELECT {_ATTEMPT_COLUMNS} FROM credit_refunds r JOIN customer_transactions t ON t.id = r.transaction_id
            WHERE r.transaction_id = CAST(:id AS uuid) AND r.status IN ('requested', 'pending')""",
        {"id": transaction_id},
    )
    if row is not None:
        return _attempt(row)
    number = tx.scalar(
        "SELECT coalesce(max(attempt), 0) + 1 FROM credit_refunds WHERE transaction_id = CAST(:id AS uuid)",
        {"id": transaction_id},
    )
    row = tx.one(
        f"""WITH r AS (
                INSERT INTO credit_refunds (transaction_id, attempt, reference_id, reason, requested_by)
                VALUES (CAST(:id AS uuid), :attempt, :reference, :reason, :uid) RETURNING *)
            SELECT {_ATTEMPT_COLUMNS} FROM r JOIN customer_transactions t ON t.id = r.transaction_id""",
        {"id": transaction_id, "attempt": number, "reference": billing.refund_reference(transaction_id, number),
         "reason": reason, "uid": admin_uid},
    )  # fmt: skip
    assert row is not None
    opened = _attempt(row)
    audit.record(
        tx, actor_uid=admin_uid, actor_role="admin", action="billing.refund",
        target=f"customer_transactions/{transaction_id}", old={"credit": credit_was},
        new={"credit": CreditStatus.REFUNDING, "attempt": number, "reference_id": opened.reference_id,
             "amount": opened.amount, "reason": reason},
    )  # fmt: skip
    return opened


def _attempt(row: Row) -> _Attempt:
    return _Attempt(**{**row, "status": RefundStatus(row["status"])})


def _ask_xendit(ports: Ports, payments: PaymentProvider, attempt: _Attempt) -> _Attempt:
    try:
        answer = payments.refund_invoice(
            invoice_id=attempt.invoice_id, amount=attempt.amount, reference_id=attempt.reference_id,
            reason=REFUND_REASON,
        )  # fmt: skip
    except PaymentProviderError as exc:
        if exc.retryable:
            # Xendit may or may not have made the refund: the attempt stays open until an admin asks again.
            raise _provider_failure(exc, "refund") from exc
        return _record_answer(ports, attempt, RefundStatus.REFUSED, refund_id=None, failure_code=exc.error_code)
    return _record_answer(ports, attempt, RefundStatus(answer.outcome), refund_id=answer.refund_id,
                          failure_code=answer.failure_code)  # fmt: skip


def _record_answer(
    ports: Ports, attempt: _Attempt, target: RefundStatus, *, refund_id: str | None, failure_code: str | None
) -> _Attempt:
    with ports.db.transaction() as tx:
        current = _locked_attempt(tx, "r.transaction_id = CAST(:id AS uuid) AND r.attempt = :attempt",
                                  {"id": attempt.transaction_id, "attempt": attempt.attempt})  # fmt: skip
        assert current is not None
        # Else its refund callback came before Xendit's answer (or an admin asking at the same moment recorded the
        # answer first), and the attempt stays as they left it.
        if current.status is RefundStatus.REQUESTED:
            current = _settle_attempt(tx, current, target, refund_id=refund_id, failure_code=failure_code,
                                      source="answer")  # fmt: skip
    return current


def _locked_attempt(tx: Tx, where: str, params: dict[str, Any]) -> _Attempt | None:
    """Locked, so callbacks about one refund and Xendit's answer to the admin apply one at a time, each seeing what
    the one before did."""
    row = tx.one(
        f"""SELECT {_ATTEMPT_COLUMNS} FROM credit_refunds r JOIN customer_transactions t ON t.id = r.transaction_id
            WHERE {where} FOR UPDATE OF r""",
        params,
    )
    return _attempt(row) if row else None


# Where Xendit's word on a refund came from: its answer to our refund call, its refund callback, or its Get Refund
# answer when we asked where the refund stands (`reconciled`: an admin asking again, or the refund sweep).
_RefundSource = Literal["answer", "callback", "reconciled"]


def _settle_attempt(
    tx: Tx, attempt: _Attempt, target: RefundStatus, *, refund_id: str | None, failure_code: str | None,
    source: _RefundSource, asked_by: str | None = None,
) -> _Attempt:  # fmt: skip
    """Move an attempt on; when it ends, move its credit with it, append the ledger row and audit Xendit's word with
    where it came from (and, when we asked for it, who asked)."""
    settled = replace(attempt, status=attempt.status.move(target), refund_id=attempt.refund_id or refund_id,
                      failure_code=failure_code)  # fmt: skip
    if not tx.execute(
        """UPDATE credit_refunds SET status = :to, xendit_refund_id = :refund, failure_code = :code, updated_at = now()
           WHERE transaction_id = CAST(:id AS uuid) AND attempt = :attempt AND status = :from""",
        {"id": attempt.transaction_id, "attempt": attempt.attempt, "from": attempt.status, "to": target,
         "refund": settled.refund_id, "code": failure_code},
    ):  # fmt: skip
        raise Unavailable("the refund changed while it was settled; retry")
    if target.is_open:
        return settled
    credit = CreditStatus.REFUNDING.move(target.credit)
    if not tx.scalar(
        """UPDATE session_credits SET status = :to, updated_at = now()
           WHERE transaction_id = CAST(:id AS uuid) AND status = 'refunding' RETURNING status""",
        {"id": attempt.transaction_id, "to": credit},
    ):
        raise Unavailable("the credit changed while its refund was settled; retry")
    if target is RefundStatus.SUCCEEDED:
        ledger.record(tx, transaction_id=attempt.transaction_id, kind="refund", external_ref=settled.refund_id,
                      note=attempt.reason, created_by=attempt.requested_by)  # fmt: skip
    elif target is RefundStatus.FAILED:
        ledger.record(tx, transaction_id=attempt.transaction_id, kind="refund_failed", external_ref=settled.refund_id,
                      note=failure_code)  # fmt: skip
    audit.record(
        tx, actor_uid="xendit", actor_role="provider", action=f"billing.refund_{target}",
        target=f"customer_transactions/{attempt.transaction_id}",
        old={"credit": CreditStatus.REFUNDING, "refund": attempt.status},
        new={"credit": credit, "refund": target, "attempt": attempt.attempt, "refund_id": settled.refund_id,
             "failure_code": failure_code, "source": source, **({"asked_by": asked_by} if asked_by else {})},
    )  # fmt: skip
    if credit is CreditStatus.AVAILABLE:
        event(log, "refund not made", logging.WARNING, transaction=attempt.transaction_id, attempt=attempt.attempt,
              refund=target, code=failure_code)  # fmt: skip
    return settled


def _done(attempt: _Attempt) -> RefundDone:
    if attempt.status is RefundStatus.REFUSED:
        raise Conflict("Xendit refused this refund", code="refund_refused",
                       details={"provider_code": attempt.failure_code})  # fmt: skip
    if attempt.status is RefundStatus.FAILED:
        raise Conflict("Xendit could not pay this refund out; the credit is the client's again", code="refund_failed",
                       details={"provider_code": attempt.failure_code, "refund_id": attempt.refund_id})  # fmt: skip
    assert attempt.refund_id is not None
    return RefundDone(attempt.transaction_id, attempt.refund_id, attempt.amount, attempt.currency,
                      attempt.status.credit)  # fmt: skip


# -- Xendit's refund callbacks ---------------------------------------------------------------------------------------


def receive_refund_callback(ports: Ports, payload: dict[str, Any], *, webhook_id: str | None) -> Outcome:
    """Record one refund callback and settle its refund at most once, as `receive_callback` does for payments: the
    attempt its reference names is locked, so replays, reorderings and concurrent duplicates move money state once.
    A body that is no refund callback as Xendit sends it is refused (400 naming the field) and changes nothing."""
    callback = parse_refund_callback(payload)
    refund = callback.data
    with ports.db.transaction() as tx:
        if refund.reference_id is not None:
            attempt = _locked_attempt(tx, "r.reference_id = :key", {"key": refund.reference_id})
        else:
            attempt = _locked_attempt(tx, "r.xendit_refund_id = :key", {"key": refund.id})
        verdict = billing.judge_refund(_as_refund_attempt(attempt), _as_refund_report(callback))
        if attempt is not None and verdict.move_to is not None:
            _settle_attempt(tx, attempt, verdict.move_to, refund_id=refund.id, failure_code=refund.failure_code,
                            source="callback")  # fmt: skip
        transaction_id = attempt.transaction_id if attempt else None
        _record_refund_event(tx, verdict, callback, payload=payload, webhook_id=webhook_id,
                             transaction_id=transaction_id)  # fmt: skip
    level = logging.WARNING if verdict.outcome is Outcome.QUARANTINED else logging.INFO
    event(log, "xendit refund callback", level, outcome=verdict.outcome, reason=verdict.reason,
          transaction=transaction_id)  # fmt: skip
    return verdict.outcome


def _as_refund_attempt(attempt: _Attempt | None) -> billing.RefundAttempt | None:
    if attempt is None:
        return None
    return billing.RefundAttempt(status=attempt.status, refund_id=attempt.refund_id, invoice_id=attempt.invoice_id,
                                 amount=attempt.amount, currency=attempt.currency)  # fmt: skip


def _as_refund_report(callback: RefundCallback) -> billing.RefundReport:
    refund = callback.data
    return billing.RefundReport(refund_id=refund.id, succeeded=callback.succeeded, invoice_id=refund.invoice_id,
                                amount=Decimal(str(refund.amount)), currency=refund.currency)  # fmt: skip


def _record_refund_event(
    tx: Tx, verdict: billing.RefundVerdict, callback: RefundCallback, *, payload: dict[str, Any],
    webhook_id: str | None, transaction_id: str | None,
) -> None:  # fmt: skip
    refund = callback.data
    tx.execute(
        """INSERT INTO payment_events (kind, webhook_id, xendit_refund_id, xendit_invoice_id, external_id,
                                       transaction_id, provider_status, amount, currency, outcome, reason, payload)
           VALUES ('refund', :webhook, :refund, :invoice, :reference, CAST(:transaction AS uuid), :status, :amount,
                   :currency, :outcome, :reason, CAST(:payload AS jsonb))""",
        {"webhook": webhook_id, "refund": refund.id, "invoice": refund.invoice_id, "reference": refund.reference_id,
         "transaction": transaction_id, "status": refund.status,
         "amount": Decimal(str(refund.amount)), "currency": refund.currency, "outcome": verdict.outcome,
         "reason": verdict.reason, "payload": json.dumps(payload)},
    )  # fmt: skip


# -- refunds whose callback never came -------------------------------------------------------------------------------

# Xendit's refund callback normally follows a pending refund within minutes, so the sweep looks up only refunds
# pending for longer; and each again only after a while, since some channels take days to settle one.
RECONCILE_AFTER = timedelta(minutes=5)
RECONCILE_EVERY = timedelta(minutes=10)
# Refunds claimed at a time: a run stopped by its time budget leaves at most these few waiting for a later run.
_RECONCILE_BATCH = 10
SWEEP_ACTOR = "refund_sweep"


@dataclass(frozen=True)
class RefundSweep:
    """What one run did: refunds it settled, refunds Xendit still reports pending, and refunds it could not settle
    (Xendit could not be asked, or its answer did not match the refund we asked for)."""

    settled: int
    pending: int
    failed: int


@dataclass(frozen=True)
class _Reconciled:
    attempt: _Attempt
    # None while Xendit still reports the refund pending.
    verdict: billing.RefundVerdict | None


def reconcile_refunds(db: Database, payments: PaymentProvider, *, budget_s: float) -> RefundSweep:
    """The refund sweep: ask Xendit where each refund pending for a while stands, and settle those it has settled,
    batch after batch until none is due or the time budget is spent. Each refund stands alone: one that cannot be
    looked up now is looked up at a later run, and the others go on. Sweeps running at once claim different refunds,
    and a refund settled meanwhile (its callback, an admin) is not settled twice."""
    deadline = time.monotonic() + budget_s
    settled = pending = failed = 0
    while time.monotonic() < deadline:
        due = _claim_due_refunds(db)
        if not due:
            break
        for attempt in due:
            if time.monotonic() >= deadline:
                break
            try:
                verdict = _reconcile(db, payments, attempt, asked_by=SWEEP_ACTOR).verdict
            except Exception as exc:
                failed += 1
                event(log, "refund not reconciled", logging.WARNING, transaction=attempt.transaction_id,
                      attempt=attempt.attempt, error=type(exc).__name__, code=getattr(exc, "code", None))  # fmt: skip
                continue
            if verdict is None:
                pending += 1
            elif verdict.outcome is Outcome.APPLIED:
                settled += 1
            elif verdict.outcome is Outcome.QUARANTINED:
                failed += 1
    swept = RefundSweep(settled=settled, pending=pending, failed=failed)
    event(log, "refund sweep", logging.WARNING if failed else logging.INFO, settled=settled, pending=pending,
          failed=failed)  # fmt: skip
    return swept


def _claim_due_refunds(db: Database) -> list[_Attempt]:
    """Refunds pending for a while and not looked up lately, oldest look first, marked as looked up in the same
    statement: a sweep running at the same time (a redelivered tick) takes others, and a refund still pending at
    Xendit goes to the back of the line."""
    with db.transaction() as tx:
        rows = tx.all(
            f"""UPDATE credit_refunds r SET checked_at = now()
                FROM customer_transactions t
                WHERE t.id = r.transaction_id AND (r.transaction_id, r.attempt) IN (
                    SELECT transaction_id, attempt FROM credit_refunds
                    WHERE status = 'pending' AND updated_at < now() - make_interval(secs => :after)
                      AND (checked_at IS NULL OR checked_at < now() - make_interval(secs => :every))
                    ORDER BY coalesce(checked_at, updated_at) LIMIT :limit FOR UPDATE SKIP LOCKED)
                RETURNING {_ATTEMPT_COLUMNS}""",
            {"after": int(RECONCILE_AFTER.total_seconds()), "every": int(RECONCILE_EVERY.total_seconds()),
             "limit": _RECONCILE_BATCH},
        )  # fmt: skip
    return [_attempt(row) for row in rows]


def _reconcile(db: Database, payments: PaymentProvider, attempt: _Attempt, *, asked_by: str) -> _Reconciled:
    """Ask Xendit where a pending refund stands (Get Refund). One it has settled is settled here exactly as its refund
    callback would have settled it, so that callback, arriving late, is a duplicate; one still pending is left as it
    is. No callback arrived, so nothing goes to payment_events; the audit says the word came from asking."""
    assert attempt.refund_id is not None  # a pending attempt always names Xendit's refund (migration 0012's CHECK)
    try:
        found = payments.get_refund(attempt.refund_id)
    except PaymentProviderError as exc:
        raise _provider_failure(exc, "get_refund") from exc
    if found.outcome == "pending":
        return _Reconciled(attempt, verdict=None)
    report = _as_lookup_report(found)
    with db.transaction() as tx:
        current = _locked_attempt(tx, "r.transaction_id = CAST(:id AS uuid) AND r.attempt = :attempt",
                                  {"id": attempt.transaction_id, "attempt": attempt.attempt})  # fmt: skip
        assert current is not None
        verdict = billing.judge_refund(_as_refund_attempt(current), report)
        if verdict.move_to is not None:
            current = _settle_attempt(tx, current, verdict.move_to, refund_id=found.refund_id,
                                      failure_code=found.failure_code, source="reconciled",
                                      asked_by=asked_by)  # fmt: skip
    level = logging.WARNING if verdict.outcome is Outcome.QUARANTINED else logging.INFO
    event(log, "refund reconciled", level, outcome=verdict.outcome, reason=verdict.reason,
          transaction=attempt.transaction_id, attempt=attempt.attempt, refund=found.status, by=asked_by)  # fmt: skip
    return _Reconciled(current, verdict)


def _as_lookup_report(found: Refund) -> billing.RefundReport:
    """What Xendit's Get Refund answer says of a refund that has ended, in the words of its refund callback."""
    return billing.RefundReport(refund_id=found.refund_id, succeeded=found.outcome == "succeeded",
                                invoice_id=found.invoice_id, amount=Decimal(found.amount),
                                currency=found.currency)  # fmt: skip
