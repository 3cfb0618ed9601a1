"""Checkout: a pending transaction priced by us, then its Xendit invoice. The same Idempotency-Key gives back the
same invoice, however often and however concurrently it is sent.

The client's credited-back balance (the unused time of sessions an admin ended, `admin_session_end`) pays first:
when it covers the tier's price the transaction is paid at once, with no invoice, and delivers what a paid invoice
delivers (payments.deliver); when it covers part, the invoice is for the rest. The client's row lock makes one
client's checkouts spend the balance one at a time.

Three steps, so Xendit is never called while a row is locked: open the transaction (the client's row lock
serialises one client's checkouts, so one key makes one transaction), ask Xendit for the invoice, attach it (only
the first attempt's invoice is kept; any other is expired at Xendit, never shown to anyone).
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, replace
from datetime import datetime

from shared.domain import billing
from shared.domain.billing import (
    CheckoutRequest,
    Invoice,
    PaymentProviderError,
    PendingTransaction,
    TransactionStatus,
)
from shared.errors import Conflict, InvalidRequest, NotFound, RateLimited
from shared.logging import event
from shared.services import projector
from shared.services.billing import payments, provider_failure
from shared.services.billing.purposes import PURPOSES
from shared.services.ports import PaymentProvider, Ports
from shared.services.unit_of_work import UnitOfWork

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Checkout:
    transaction_id: str
    # None when the credited-back balance paid it whole (`status` paid): there is nothing to pay.
    invoice_url: str | None
    expires_at: datetime
    status: TransactionStatus = TransactionStatus.PENDING
    # What Xendit's invoice charges, and what the credited-back balance paid of the tier's price.
    amount: int = 0
    credit_back_used: int = 0


def open_invoice(
    ports: Ports, provider: PaymentProvider, client_id: str, request: CheckoutRequest, *, idempotency_key: str | None
) -> Checkout:
    """A pending transaction and its Xendit invoice, to pay at `invoice_url` before `expires_at`; at most
    `checkouts_per_hour` new ones per client (`checkout_wait`), a retry with the same key not counted."""
    pending = _open(ports, client_id, request, idempotency_key)
    if pending.paid_from_balance or pending.invoice_url is not None:
        return _checkout(pending, pending.invoice_url, pending.expires_at)
    invoice = _create_invoice(provider, pending)
    return _attach(ports, provider, pending, invoice)


def _checkout(pending: PendingTransaction, invoice_url: str | None, expires_at: datetime) -> Checkout:
    return Checkout(
        pending.transaction_id,
        invoice_url,
        expires_at,
        status=pending.status if pending.paid_from_balance else TransactionStatus.PENDING,
        amount=pending.amount,
        credit_back_used=pending.credit_back_used,
    )


def _open(ports: Ports, client_id: str, request: CheckoutRequest, idempotency_key: str | None) -> PendingTransaction:
    """The transaction this key opened before, or a new one with its payment document and its timeout."""
    with ports.uow() as uow:
        client_uid = uow.billing.locked_client_uid(client_id)
        if client_uid is None:
            raise NotFound("no such client")
        earlier = uow.billing.checkout_by_key(client_id, idempotency_key) if idempotency_key else None
        if earlier is not None:
            if not earlier.ordered(request):
                raise Conflict("this Idempotency-Key was used for another checkout", code="idempotency_key_reused")
            return earlier
        config = uow.settings.load()
        wait = billing.checkout_wait(uow.billing.recent_checkouts(client_id), config.checkouts_per_hour)
        if wait is not None:
            raise RateLimited("too many checkouts in the last hour", retry_after_s=wait)
        tier = uow.billing.active_tier(request.tier_id)
        if tier is None:
            raise InvalidRequest(
                "no such pricing tier", fields=[{"field": "tier_id", "problem": "unknown or inactive"}]
            )
        if not billing.is_payable(tier.price):
            raise Conflict("this tier costs nothing", code="tier_not_payable")
        PURPOSES[request.purpose].check(uow, client_id, request)
        used = billing.credit_back_cover(uow.billing.credit_back_balance(client_id), tier.price)
        pending = uow.billing.open_transaction(
            str(uuid.uuid4()),
            client_id,
            request,
            tier,
            idempotency_key=idempotency_key,
            expires_in_s=config.payment_expiry_s,
            credit_back_used=used,
        )
        if used:
            uow.billing.use_credit_back(pending.transaction_id, used)
            pending = replace(pending, credit_back_used=used)
        uow.outbox.add(billing.awaiting_payment(pending, client_uid))
        if pending.amount == 0:
            pending = _pay_from_balance(uow, pending)
        else:
            uow.outbox.add(billing.payment_timeout(pending.transaction_id, pending.expires_at))
        committed = uow.commit()
    projector.deliver(ports, committed)
    return pending


def _pay_from_balance(uow: UnitOfWork, pending: PendingTransaction) -> PendingTransaction:
    """The balance paid the whole price: paid now, delivered as a paid invoice is (payments.deliver)."""
    paid_at = uow.billing.mark_paid_from_balance_if_pending(pending.transaction_id)
    order = uow.billing.locked_order(pending.transaction_id)
    assert paid_at is not None and order is not None, "opened in this same change"
    payments.deliver(uow, order, paid_at)
    event(
        log,
        "checkout paid from credited-back balance",
        transaction=pending.transaction_id,
        used=pending.credit_back_used,
    )
    return replace(pending, status=TransactionStatus.PAID)


def _create_invoice(provider: PaymentProvider, pending: PendingTransaction) -> Invoice:
    if not pending.invoiceable:
        raise Conflict("this checkout has expired; start a new one", code="transaction_expired")
    try:
        return provider.create_invoice(
            external_id=pending.transaction_id,
            amount=pending.amount,
            description=pending.description,
            invoice_duration_s=pending.invoice_seconds,
        )
    except PaymentProviderError as exc:
        raise provider_failure(exc, "create_invoice") from exc


def _attach(ports: Ports, provider: PaymentProvider, pending: PendingTransaction, invoice: Invoice) -> Checkout:
    with ports.uow(one_statement=True) as uow:
        shown = uow.billing.attach_invoice_if_none(pending.transaction_id, invoice)
    if shown.invoice_url != invoice.invoice_url:
        # A concurrent retry with the same key attached its invoice first, or the transaction expired meanwhile:
        # this invoice was never shown to anyone and must never be paid.
        _discard(provider, invoice)
    if shown.invoice_url is None:
        raise Conflict("this checkout has expired; start a new one", code="transaction_expired")
    return _checkout(pending, shown.invoice_url, shown.expires_at)


def _discard(provider: PaymentProvider, invoice: Invoice) -> None:
    try:
        provider.expire_invoice(invoice.invoice_id)
    except PaymentProviderError:
        # It still expires on its own at Xendit; were it paid first, its callback is quarantined (invoice_mismatch).
        event(log, "spare invoice not expired", logging.WARNING, invoice=invoice.invoice_id)
