"""Payments: Xendit's invoice callbacks, and the timeout of an invoice that stays unpaid.

A transaction moves pending → paid | expired exactly once (shared.domain.billing.judge decides what each report
does): any number of callbacks, replayed, reordered or concurrent, and the timeout racing them, move it once, and
money is recorded once. The transaction's row lock makes concurrent duplicates wait for the first and then see it
done; whatever arrives that cannot be matched to exactly what we ordered is quarantined for an admin.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from shared.domain import billing
from shared.domain.billing import (
    CallbackRecord,
    LockedOrder,
    Outcome,
    PaymentProviderError,
    Report,
    TransactionStatus,
    Verdict,
)
from shared.errors import Unavailable
from shared.logging import event
from shared.schemas.billing import InvoiceCallback, parse_invoice_callback
from shared.services import projector
from shared.services.billing import provider_failure
from shared.services.billing.purposes import PURPOSES
from shared.services.ports import PaymentProvider, Ports
from shared.services.unit_of_work import UnitOfWork

log = logging.getLogger(__name__)

# A signed body that is no invoice callback: recorded for a look, acknowledged (Xendit retrying it cannot help).
_MALFORMED = Verdict(Outcome.IGNORED, "malformed")


def receive_callback(ports: Ports, payload: dict[str, Any], *, webhook_id: str | None) -> Outcome:
    """Record one delivery and apply it at most once."""
    callback = parse_invoice_callback(payload)
    with ports.uow() as uow:
        order = uow.billing.locked_order(callback.external_id) if callback else None
        verdict = billing.judge(order.order if order else None, _report(callback)) if callback else _MALFORMED
        if callback is not None and order is not None and verdict.move_to is not None:
            _apply(uow, order, callback, verdict.move_to)
        uow.billing.record_callback(_record(verdict, payload, webhook_id, callback, order))
        committed = uow.commit()
    projector.deliver(ports, committed)
    level = logging.WARNING if verdict.outcome is Outcome.QUARANTINED else logging.INFO
    transaction = order.transaction_id if order else None
    event(log, "xendit callback", level, outcome=verdict.outcome, reason=verdict.reason, transaction=transaction)
    return verdict.outcome


def _report(callback: InvoiceCallback) -> Report:
    return Report(
        invoice_id=callback.id,
        status=callback.transaction_status,
        amount=callback.amount,
        paid_amount=callback.paid_amount,
        currency=callback.currency,
    )


def _apply(uow: UnitOfWork, order: LockedOrder, callback: InvoiceCallback, target: TransactionStatus) -> None:
    if target is TransactionStatus.EXPIRED:
        _expire(uow, order.transaction_id)
        return
    paid_at = uow.billing.mark_paid_if_pending(
        order.transaction_id, invoice_id=callback.id, method=callback.payment_method, channel=callback.payment_channel
    )
    if paid_at is None:
        raise Unavailable("the transaction changed while the callback was applied; retry")
    uow.billing.record_ledger(order.transaction_id, "payment_received", external_ref=callback.id)
    deliver(uow, order, paid_at)


def deliver(uow: UnitOfWork, order: LockedOrder, paid_at: datetime) -> None:
    """What a transaction just marked paid delivers, whoever paid it (Xendit's invoice, or the credited-back balance
    at checkout): its purpose, or a session credit of its tier when the purpose can no longer be delivered; and the
    client's payment document says it is paid."""
    if not PURPOSES[order.purpose].deliver(uow, order.paid):
        uow.credits.issue(order.transaction_id)
        event(
            log,
            "paid purpose undeliverable, kept as a credit",
            logging.WARNING,
            transaction=order.transaction_id,
            purpose=order.purpose,
        )
    uow.outbox.add(
        billing.payment_document(
            order.transaction_id, client_uid=order.client_uid, at=paid_at, data={"status": TransactionStatus.PAID}
        )
    )


def _expire(uow: UnitOfWork, transaction_id: str) -> bool:
    expired = uow.billing.mark_expired_if_pending(transaction_id)
    if expired is None:
        return False
    # What the credited-back balance paid of it is the client's again.
    uow.billing.return_credit_back_if_used(transaction_id)
    uow.outbox.add(
        billing.payment_document(
            transaction_id,
            client_uid=expired.client_uid,
            at=expired.expired_at,
            data={"status": TransactionStatus.EXPIRED},
        )
    )
    return True


def _record(
    verdict: Verdict,
    payload: dict[str, Any],
    webhook_id: str | None,
    callback: InvoiceCallback | None,
    order: LockedOrder | None,
) -> CallbackRecord:
    return CallbackRecord(
        kind="invoice",
        webhook_id=webhook_id,
        payload=payload,
        outcome=verdict.outcome,
        reason=verdict.reason,
        transaction_id=order.transaction_id if order else None,
        invoice_id=callback.id if callback else None,
        external_id=callback.external_id if callback else None,
        provider_status=callback.status if callback else None,
        amount=callback.amount if callback else None,
        paid_amount=callback.paid_amount if callback else None,
        currency=callback.currency if callback else None,
    )


# -- the payment window closes ---------------------------------------------------------------------------------------


def expire_unpaid(ports: Ports, provider: PaymentProvider, transaction_id: str) -> str:
    """The timeout task: expire the invoice at Xendit, then the transaction. Xendit decides the race with a payment
    at the last second: an invoice it reports paid is left to its callback. Returns what happened, for the log."""
    with ports.uow(one_statement=True) as uow:
        window = uow.billing.payment_window(transaction_id)
    if window is None or window.status is not TransactionStatus.PENDING:
        return "stale"
    if not window.over:
        raise Unavailable("the payment window is still open")  # fired early: Cloud Tasks retries shortly
    if window.invoice_id and _paid_at_provider(provider, window.invoice_id):
        return "paid_at_provider"
    with ports.uow() as uow:
        expired = _expire(uow, transaction_id)
        committed = uow.commit()
    projector.deliver(ports, committed)
    return TransactionStatus.EXPIRED if expired else "stale"


def _paid_at_provider(provider: PaymentProvider, invoice_id: str) -> bool:
    try:
        return provider.expire_invoice(invoice_id).is_paid
    except PaymentProviderError as exc:
        if exc.retryable:
            raise provider_failure(exc, "expire_invoice") from exc
    # Xendit refuses to expire an invoice that is no longer pending; its own state says why.
    try:
        return provider.get_invoice(invoice_id).is_paid
    except PaymentProviderError as exc:
        if exc.status == 404:
            return False  # Xendit has no such invoice, so nothing can be paid on it
        raise Unavailable("Xendit could not say whether the invoice was paid") from exc
