"""Money as rules: a transaction's life, the credit a payment becomes, each attempt at refunding it, and whether what
the payment provider reports is exactly what we asked it to collect or to give back."""

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
    # Xendit refused the refund, or could not pay it out: the credit is the client's again.
    CreditStatus.REFUNDING: frozenset({CreditStatus.REFUNDED, CreditStatus.AVAILABLE}),
    CreditStatus.CONSUMED: frozenset(),
    CreditStatus.REFUNDED: frozenset(),
}


@dataclass(frozen=True)
class Credit:
    """A paid session credit held for a pairing request: the transaction it came from and the length it bought."""

    transaction_id: str
    duration_s: int


@dataclass(frozen=True)
class Balance:
    """A client's available credits of one tier (and length bought, should a tier's length have changed since)."""

    tier_id: str
    duration_s: int
    available: int


def refund_refusal(status: CreditStatus) -> str | None:
    """The error code refusing an admin's refund of a credit in this state, or None when it may go ahead
    (`refunding` may: asking Xendit again with the same idempotency key finishes an interrupted refund or reports
    the pending one; `refunded` reports the refund made)."""
    return {
        CreditStatus.RESERVED: "credit_in_use",
        CreditStatus.CONSUMED: "credit_consumed",
    }.get(status)


class RefundStatus(StrEnum):
    """One attempt at giving a credit's money back through Xendit."""

    # Xendit is being asked, or its answer was lost: asking again with the same reference finishes it.
    REQUESTED = "requested"
    # Xendit accepted the refund and will confirm it (or not) by a refund callback.
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    # Xendit accepted the refund, then could not pay it out.
    FAILED = "failed"
    # Xendit refused to make the refund at all.
    REFUSED = "refused"

    @property
    def is_open(self) -> bool:
        return self in (RefundStatus.REQUESTED, RefundStatus.PENDING)

    def can_become(self, target: RefundStatus) -> bool:
        return target in _REFUND_MOVES[self]

    def move(self, target: RefundStatus) -> RefundStatus:
        if not self.can_become(target):
            raise IllegalMove("refund", self, target)
        return target

    @property
    def credit(self) -> CreditStatus:
        """What the refunded credit is while its attempt is in this state."""
        if self is RefundStatus.SUCCEEDED:
            return CreditStatus.REFUNDED
        return CreditStatus.REFUNDING if self.is_open else CreditStatus.AVAILABLE


_REFUND_MOVES: dict[RefundStatus, frozenset[RefundStatus]] = {
    RefundStatus.REQUESTED: frozenset(
        {RefundStatus.PENDING, RefundStatus.SUCCEEDED, RefundStatus.FAILED, RefundStatus.REFUSED}
    ),
    RefundStatus.PENDING: frozenset({RefundStatus.SUCCEEDED, RefundStatus.FAILED}),
    RefundStatus.SUCCEEDED: frozenset(),
    RefundStatus.FAILED: frozenset(),
    RefundStatus.REFUSED: frozenset(),
}


def refund_reference(transaction_id: str, attempt: int) -> str:
    """Xendit's reference_id and idempotency key for one attempt at refunding a transaction's credit. The first
    keeps the form used before attempts were numbered, so a refund interrupted across that upgrade is asked again
    with its own key; a later attempt needs a key of its own, or Xendit would answer with the failed refund."""
    return f"refund-{transaction_id}" if attempt == 1 else f"refund-{transaction_id}-{attempt}"


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


@dataclass(frozen=True)
class RefundAttempt:
    """One attempt as PostgreSQL holds it now, with what its transaction was paid."""

    status: RefundStatus
    refund_id: str | None
    invoice_id: str
    amount: int
    currency: str


@dataclass(frozen=True)
class RefundReport:
    """What a refund callback says of one refund: `succeeded` or failed."""

    refund_id: str
    succeeded: bool
    invoice_id: str | None
    amount: Decimal
    currency: str


@dataclass(frozen=True)
class RefundVerdict:
    outcome: Outcome
    reason: str | None = None
    move_to: RefundStatus | None = None


def judge_refund(attempt: RefundAttempt | None, report: RefundReport) -> RefundVerdict:
    """What one refund callback does to the attempt its reference names. Pure, like `judge`: replays and reorderings
    give the same answers. Whatever contradicts the money's state as we hold it goes to an admin and moves nothing."""
    if attempt is None:
        return RefundVerdict(Outcome.QUARANTINED, "unknown_refund")
    mismatch = refund_mismatch(attempt, report)
    if mismatch:
        return RefundVerdict(Outcome.QUARANTINED, mismatch)
    target = RefundStatus.SUCCEEDED if report.succeeded else RefundStatus.FAILED
    if attempt.status.is_open:
        return RefundVerdict(Outcome.APPLIED, move_to=attempt.status.move(target))
    if attempt.status is target or (target is RefundStatus.FAILED and attempt.status is RefundStatus.REFUSED):
        return RefundVerdict(Outcome.DUPLICATE)
    # Xendit now says the opposite of how the attempt ended: the credit may already be used or refunded again.
    if report.succeeded:
        return RefundVerdict(Outcome.QUARANTINED, "refund_succeeded_after_failure")
    return RefundVerdict(Outcome.QUARANTINED, "refund_failed_after_success")


def refund_mismatch(attempt: RefundAttempt, report: RefundReport) -> str | None:
    """A callback speaks of this attempt only if it names the refund Xendit answered with (when we have its answer)
    and gives back, in our currency, exactly what was paid."""
    if attempt.refund_id is not None and attempt.refund_id != report.refund_id:
        return "refund_mismatch"
    if report.invoice_id is not None and report.invoice_id != attempt.invoice_id:
        return "invoice_mismatch"
    if report.currency != attempt.currency:
        return "currency_mismatch"
    if report.amount != attempt.amount:
        return "amount_mismatch"
    return None


def amount_mismatch(order: Order, report: Report) -> str | None:
    """IDR has no minor unit: the invoice's amount and what was paid must both equal ours exactly, in our currency."""
    if report.currency != order.currency:
        return "currency_mismatch"
    if report.amount != order.amount:
        return "amount_mismatch"
    if report.paid_amount is not None and report.paid_amount != order.amount:
        return "amount_mismatch"
    return None
