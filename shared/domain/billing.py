"""Money as rules: a transaction's life, the credit a payment becomes, and whether what the payment provider reports
is exactly what we asked it to collect."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

CURRENCY = "IDR"


class IllegalMove(ValueError):
    def __init__(self, kind: str, current: str, target: str) -> None:
        super().__init__(f"a {kind} cannot go from {current} to {target}")


class TransactionStatus(StrEnum):
    PENDING = "pending"
    PAID = "paid"
    EXPIRED = "expired"

    def can_become(self, target: TransactionStatus) -> bool:
        """pending → paid | expired, exactly once; nothing leaves paid or expired."""
        return self is TransactionStatus.PENDING and target is not TransactionStatus.PENDING

    def move(self, target: TransactionStatus) -> TransactionStatus:
        if not self.can_become(target):
            raise IllegalMove("transaction", self, target)
        return target


class Purpose(StrEnum):
    SESSION = "session"
    EXTENSION = "extension"


class CreditStatus(StrEnum):
    AVAILABLE = "available"
    RESERVED = "reserved"
    CONSUMED = "consumed"
    REFUNDING = "refunding"
    REFUNDED = "refunded"

    def can_become(self, target: CreditStatus) -> bool:
        return target in _CREDIT_MOVES[self]

    def move(self, target: CreditStatus) -> CreditStatus:
        if not self.can_become(target):
            raise IllegalMove("credit", self, target)
        return target


_CREDIT_MOVES: dict[CreditStatus, frozenset[CreditStatus]] = {
    CreditStatus.AVAILABLE: frozenset({CreditStatus.RESERVED, CreditStatus.REFUNDING}),
    # A request that ends without a session gives its credit back; one that starts a session uses it up.
    CreditStatus.RESERVED: frozenset({CreditStatus.AVAILABLE, CreditStatus.CONSUMED}),
    # Xendit refused the refund: the credit is the client's again.
    CreditStatus.REFUNDING: frozenset({CreditStatus.REFUNDED, CreditStatus.AVAILABLE}),
    CreditStatus.CONSUMED: frozenset(),
    CreditStatus.REFUNDED: frozenset(),
}


def refund_refusal(status: CreditStatus) -> str | None:
    """The error code refusing an admin's refund of a credit in this state, or None when it may go ahead
    (`refunding` may: asking Xendit again with the same idempotency key finishes an interrupted refund)."""
    return {
        CreditStatus.RESERVED: "credit_in_use",
        CreditStatus.CONSUMED: "credit_consumed",
    }.get(status)


def is_payable(price: int) -> bool:
    """A free tier has nothing to check out (and Xendit refuses an invoice for nothing)."""
    return price > 0


def seconds_left(expires_at: datetime, now: datetime) -> int:
    """Whole seconds until expiry, rounded up so the invoice never expires before our transaction does."""
    return math.ceil((expires_at - now).total_seconds())


def payment_timeout_task_id(transaction_id: str) -> str:
    return f"payment-timeout-{transaction_id}"


# -- what the provider reports -------------------------------------------------------------------------------------


class Outcome(StrEnum):
    APPLIED = "applied"
    DUPLICATE = "duplicate"
    QUARANTINED = "quarantined"
    IGNORED = "ignored"


@dataclass(frozen=True)
class Order:
    """What we asked the provider to collect, as PostgreSQL holds it now."""

    status: TransactionStatus
    amount: int
    currency: str
    invoice_id: str | None


@dataclass(frozen=True)
class Report:
    """What the provider says happened to one invoice. `status` is None for a provider state we do not act on."""

    invoice_id: str
    status: TransactionStatus | None
    amount: Decimal
    paid_amount: Decimal | None
    currency: str | None


@dataclass(frozen=True)
class Verdict:
    outcome: Outcome
    reason: str | None = None
    move_to: TransactionStatus | None = None


def judge(order: Order | None, report: Report) -> Verdict:
    """What one report does to one order. Pure, so any number of replays in any order gives the same answers."""
    if report.status is TransactionStatus.PAID:
        return _judge_payment(order, report)
    if report.status is TransactionStatus.EXPIRED:
        return _judge_expiry(order, report)
    return Verdict(Outcome.IGNORED, "status_not_handled")


def _judge_payment(order: Order | None, report: Report) -> Verdict:
    # Money has arrived: whatever cannot be matched to exactly what we ordered goes to an admin, never away.
    if order is None:
        return Verdict(Outcome.QUARANTINED, "unknown_transaction")
    if order.invoice_id != report.invoice_id:
        return Verdict(Outcome.QUARANTINED, "invoice_mismatch")
    mismatch = amount_mismatch(order, report)
    if mismatch:
        return Verdict(Outcome.QUARANTINED, mismatch)
    if order.status is TransactionStatus.PAID:
        return Verdict(Outcome.DUPLICATE)
    if order.status is TransactionStatus.EXPIRED:
        return Verdict(Outcome.QUARANTINED, "paid_after_expiry")
    return Verdict(Outcome.APPLIED, move_to=order.status.move(TransactionStatus.PAID))


def _judge_expiry(order: Order | None, report: Report) -> Verdict:
    if order is None:
        return Verdict(Outcome.IGNORED, "unknown_transaction")
    # E.g. the spare invoice of two racing checkouts, expired on purpose: it must not expire the order.
    if order.invoice_id != report.invoice_id:
        return Verdict(Outcome.IGNORED, "invoice_mismatch")
    if order.status is TransactionStatus.EXPIRED:
        return Verdict(Outcome.DUPLICATE)
    if order.status is TransactionStatus.PAID:
        return Verdict(Outcome.IGNORED, "expired_after_paid")
    return Verdict(Outcome.APPLIED, move_to=order.status.move(TransactionStatus.EXPIRED))


def amount_mismatch(order: Order, report: Report) -> str | None:
    """IDR has no minor unit: the invoice's amount and what was paid must both equal ours exactly, in our currency."""
    if report.currency != order.currency:
        return "currency_mismatch"
    if report.amount != order.amount:
        return "amount_mismatch"
    if report.paid_amount is not None and report.paid_amount != order.amount:
        return "amount_mismatch"
    return None
