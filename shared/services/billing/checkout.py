"""Checkout: a pending transaction priced by us, then its Xendit invoice. The same Idempotency-Key gives back the
same invoice, however often and however concurrently it is sent.

Three steps, so Xendit is never called while a row is locked: open the transaction (the client's row lock
serialises one client's checkouts, so one key makes one transaction), ask Xendit for the invoice, attach it (only
the first attempt's invoice is kept; any other is expired at Xendit, never shown to anyone).
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime

from shared.domain import billing
from shared.domain.billing import CheckoutRequest, Invoice, PaymentProviderError, PendingTransaction
from shared.errors import Conflict, InvalidRequest, NotFound, RateLimited
from shared.logging import event
from shared.services import projector
from shared.services.billing import provider_failure
from shared.services.billing.purposes import PURPOSES
from shared.services.ports import PaymentProvider, Ports

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Checkout:
    transaction_id: str
    invoice_url: str
    expires_at: datetime


def open_invoice(
    ports: Ports, provider: PaymentProvider, client_id: str, request: CheckoutRequest, *, idempotency_key: str | None
) -> Checkout:
    """A pending transaction and its Xendit invoice, to pay at `invoice_url` before `expires_at`; at most
    `checkouts_per_hour` new ones per client (`checkout_wait`), a retry with the same key not counted."""
    pending = _open(ports, client_id, request, idempotency_key)
    if pending.invoice_url is not None:
        return Checkout(pending.transaction_id, pending.invoice_url, pending.expires_at)
    invoice = _create_invoice(provider, pending)
    return _attach(ports, provider, pending, invoice)


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
        pending = uow.billing.open_transaction(
            str(uuid.uuid4()),
            client_id,
            request,
            tier,
            idempotency_key=idempotency_key,
            expires_in_s=config.payment_expiry_s,
        )
        uow.outbox.add(
            billing.awaiting_payment(pending, client_uid),
            billing.payment_timeout(pending.transaction_id, pending.expires_at),
        )
        committed = uow.commit()
    projector.deliver(ports, committed)
    return pending


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
    return Checkout(pending.transaction_id, shown.invoice_url, shown.expires_at)


def _discard(provider: PaymentProvider, invoice: Invoice) -> None:
    try:
        provider.expire_invoice(invoice.invoice_id)
    except PaymentProviderError:
        # It still expires on its own at Xendit; were it paid first, its callback is quarantined (invoice_mismatch).
        event(log, "spare invoice not expired", logging.WARNING, invoice=invoice.invoice_id)
