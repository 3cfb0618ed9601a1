"""Billing, by what it does:

- checkout.py: a pending transaction and its Xendit invoice (`billing_checkout`);
- payments.py: Xendit's invoice callbacks, and the timeout of what stays unpaid (`xendit_webhook`,
  `task_payment_timeout`);
- purposes.py: what a paid transaction delivers, per purpose (a session credit, an extension's time);
- refunds.py: an admin's refund of an unused credit, and Xendit's refund callbacks (`admin_refund`,
  `xendit_webhook`);
- reconciliation.py: the sweep that asks Xendit about refunds whose callback never came (`refund_sweep`);
- quarantine.py: the control center's queue of callbacks we could not match (`admin_payment_events`).

Xendit is called outside any unit of work, so a slow provider never holds a row lock; the short changes before and
after each call are guarded so that repeating the whole call is always safe. This module holds what they share:
the repositories they need from storage (shared/adapters/postgres/billing.py and billing_refunds.py), and how a
failed call to Xendit is answered. It imports nothing heavy, so each function's instance loads only its own part.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any, Protocol

from shared.domain.billing import (
    AttachedInvoice,
    CallbackRecord,
    Charged,
    CheckoutRequest,
    CreditStatus,
    Expired,
    Invoice,
    LockedOrder,
    PaymentProviderError,
    PaymentWindow,
    PendingTransaction,
    RecentCheckouts,
    RefundStatus,
    StoredAttempt,
)
from shared.domain.pricing import PricingTier
from shared.errors import AppError, Unavailable
from shared.logging import event

log = logging.getLogger(__name__)

Row = dict[str, Any]


class BillingRepository(Protocol):
    """Transactions, the ledger and the callbacks' record (shared/adapters/postgres/billing.py)."""

    def locked_client_uid(self, client_id: str) -> str | None: ...

    def checkout_by_key(self, client_id: str, idempotency_key: str) -> PendingTransaction | None: ...

    def recent_checkouts(self, client_id: str) -> RecentCheckouts: ...

    def active_tier(self, tier_id: str) -> PricingTier | None: ...

    def open_transaction(
        self,
        transaction_id: str,
        client_id: str,
        request: CheckoutRequest,
        tier: PricingTier,
        *,
        idempotency_key: str | None,
        expires_in_s: int,
        credit_back_used: int = 0,
    ) -> PendingTransaction: ...

    def credit_back_balance(self, client_id: str) -> int: ...

    def use_credit_back(self, transaction_id: str, amount: int) -> None: ...

    def return_credit_back_if_used(self, transaction_id: str) -> int: ...

    def mark_paid_from_balance_if_pending(self, transaction_id: str) -> datetime | None: ...

    def attach_invoice_if_none(self, transaction_id: str, invoice: Invoice) -> AttachedInvoice: ...

    def payment_window(self, transaction_id: str) -> PaymentWindow | None: ...

    def locked_order(self, transaction_id: str) -> LockedOrder | None: ...

    def mark_paid_if_pending(
        self, transaction_id: str, *, invoice_id: str, method: str | None, channel: str | None
    ) -> datetime | None: ...

    def mark_expired_if_pending(self, transaction_id: str) -> Expired | None: ...

    def record_ledger(
        self,
        transaction_id: str,
        kind: str,
        *,
        external_ref: str | None = None,
        note: str | None = None,
        created_by: str | None = None,
    ) -> None: ...

    def record_callback(self, record: CallbackRecord) -> None: ...

    def quarantined(self, *, reviewed: bool | None, after: tuple[datetime, int] | None, limit: int) -> list[Row]: ...

    def review_if_unreviewed(self, event_id: int, *, admin_uid: str, note: str) -> bool: ...

    def quarantined_event(self, event_id: int) -> Row | None: ...


class RefundsRepository(Protocol):
    """Refund attempts and the credits they hold (shared/adapters/postgres/billing_refunds.py)."""

    def charged(self, transaction_id: str) -> Charged | None: ...

    def locked_credit(self, transaction_id: str) -> CreditStatus | None: ...

    def move_credit(self, transaction_id: str, *, from_status: CreditStatus, to: CreditStatus) -> bool: ...

    def refund_made(self, transaction_id: str) -> str | None: ...

    def open_attempt(self, transaction_id: str) -> StoredAttempt | None: ...

    def last_attempt(self, transaction_id: str) -> int: ...

    def add_attempt(
        self, transaction_id: str, *, number: int, reference_id: str, reason: str, requested_by: str
    ) -> StoredAttempt: ...

    def locked_attempt(self, transaction_id: str, number: int) -> StoredAttempt | None: ...

    def locked_attempt_by_reference(self, reference_id: str) -> StoredAttempt | None: ...

    def locked_attempt_by_refund(self, refund_id: str) -> StoredAttempt | None: ...

    def move_attempt(self, settled: StoredAttempt, *, from_status: RefundStatus) -> bool: ...

    def claim_due(self, *, pending_for_s: int, looked_up_every_s: int, limit: int) -> list[StoredAttempt]: ...


class PaymentProviderFailed(AppError):
    """Xendit refused a call that repeating will not fix (our configuration, or a bug): nothing can be paid now."""

    status = 502
    code = "payment_provider_error"


def provider_failure(exc: PaymentProviderError, call: str) -> AppError:
    """How a failed call to Xendit is answered: retry later, or it cannot be done now."""
    event(
        log,
        "xendit call failed",
        logging.WARNING,
        call=call,
        status=exc.status,
        code=exc.error_code,
        retryable=exc.retryable,
    )
    if exc.retryable:
        return Unavailable("the payment provider is unavailable; retry the request")
    return PaymentProviderFailed("the payment provider refused the request")
