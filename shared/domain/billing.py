"""Money as rules: a transaction's life, the credit a payment becomes, each attempt at refunding it, and whether what
the payment provider reports is exactly what we asked it to collect or to give back.

The billing services (shared/services/billing/) ask these rules before every move, and the billing repositories
(shared/adapters/postgres/billing.py, billing_refunds.py) save each move with a statement guarded by the state it was
decided on; each such rule names its statement, and each statement names its rule.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any, Literal

from shared.domain.documents import PaymentDocument, payment_path
from shared.domain.events import DocumentWrite, TaskRequest, ts

CURRENCY = "IDR"
TIMEOUT_QUEUE = "payment-timeouts"
# A timeout task that fires a little early (Cloud Tasks' own jitter) still expires the transaction.
DEADLINE_TOLERANCE = timedelta(seconds=1)


class IllegalMove(ValueError):
    def __init__(self, kind: str, current: str, target: str) -> None:
        super().__init__(f"a {kind} cannot go from {current} to {target}")


class TransactionStatus(StrEnum):
    PENDING = "pending"
    PAID = "paid"
    EXPIRED = "expired"

    def can_become(self, target: TransactionStatus) -> bool:
        """pending → paid | expired, exactly once; nothing leaves paid or expired. Saved by
        `BillingRepository.mark_paid_if_pending` and `mark_expired_if_pending`, guarded by `pending` (and PostgreSQL's
        trigger customer_transactions_guard refuses any other move)."""
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
        """Saved by `RefundsRepository.move_credit` (refunds) and `CreditsRepository`'s moves (pairing), each guarded
        by the status the move was decided on."""
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
        """A credit has at most one open attempt (the unique index credit_refunds_one_open), which
        `RefundsRepository.open_attempt` finds and an admin asking again reuses."""
        return self in (RefundStatus.REQUESTED, RefundStatus.PENDING)

    def can_become(self, target: RefundStatus) -> bool:
        """Saved by `RefundsRepository.move_attempt`, guarded by the status the move was decided on (and PostgreSQL's
        trigger credit_refunds_guard refuses any move out of an ended attempt)."""
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


# The window `checkouts_per_hour` counts a client's checkouts in.
CHECKOUT_WINDOW = timedelta(hours=1)


@dataclass(frozen=True)
class RecentCheckouts:
    """A client's checkouts within CHECKOUT_WINDOW, read under the client's row lock, and the change's moment."""

    count: int
    earliest: datetime | None
    now: datetime


def checkout_wait(recent: RecentCheckouts, per_hour: int) -> int | None:
    """Each checkout opens a Xendit invoice: a client opens at most `checkouts_per_hour` in CHECKOUT_WINDOW (a retry
    with the same Idempotency-Key is the same checkout, not another). None when the client may check out; else the
    seconds until the earliest leaves the window (429 with Retry-After)."""
    if recent.count < per_hour:
        return None
    wait = (recent.earliest or recent.now) + CHECKOUT_WINDOW - recent.now
    return max(1, math.ceil(wait.total_seconds()))


def is_payable(price: int) -> bool:
    """A free tier has nothing to check out (and Xendit refuses an invoice for nothing)."""
    return price > 0


def seconds_left(expires_at: datetime, now: datetime) -> int:
    """Whole seconds until expiry, rounded up so the invoice never expires before our transaction does."""
    return math.ceil((expires_at - now).total_seconds())


def payment_timeout_task_id(transaction_id: str) -> str:
    return f"payment-timeout-{transaction_id}"


# -- checkout --------------------------------------------------------------------------------------------------------

# How a transaction the credited-back balance paid whole was paid (customer_transactions.payment_method/_channel).
CREDIT_BACK = "credit_back"


def credit_back_cover(balance: int, price: int) -> int:
    """What of a tier's price the client's credited-back balance pays: all of it when the balance covers it, else
    the whole balance (Xendit's invoice is for the rest). Spent under the client's row lock
    (`BillingRepository.locked_client_uid`), recorded once per transaction (credit_back_uses, `use_credit_back`)."""
    return max(0, min(balance, price))


@dataclass(frozen=True)
class CheckoutRequest:
    """What a client asks to pay for: a session of a tier, or the extension it was offered."""

    tier_id: str
    purpose: Purpose
    extension_id: str | None


@dataclass(frozen=True)
class PendingTransaction:
    """A checkout's transaction as PostgreSQL holds it; `now` is PostgreSQL's clock when it was read."""

    transaction_id: str
    purpose: Purpose
    tier_id: str
    extension_id: str | None
    duration_s: int
    amount: int
    status: TransactionStatus
    invoice_url: str | None
    expires_at: datetime
    now: datetime
    # What the client's credited-back balance paid of the tier's price (`credit_back_cover`); `amount` is the rest,
    # what Xendit charges.
    credit_back_used: int = 0

    @property
    def paid_from_balance(self) -> bool:
        """Paid whole from the credited-back balance at checkout: no invoice, nothing for Xendit."""
        return self.status is TransactionStatus.PAID and self.amount == 0

    def ordered(self, request: CheckoutRequest) -> bool:
        """One Idempotency-Key is one checkout: a retry with the key must ask for the same thing."""
        return (self.tier_id, self.purpose, self.extension_id) == (
            request.tier_id,
            request.purpose,
            request.extension_id,
        )

    @property
    def invoice_seconds(self) -> int:
        """How long its invoice may stay open: never past our transaction's own expiry."""
        return seconds_left(self.expires_at, self.now)

    @property
    def invoiceable(self) -> bool:
        """An invoice is opened only for a transaction still pending with at least a second to go."""
        return self.status is TransactionStatus.PENDING and self.invoice_seconds >= 1

    @property
    def description(self) -> str:
        """Shown to the payer on Xendit's page."""
        what = "Perpanjangan sesi" if self.purpose is Purpose.EXTENSION else "Sesi curhat"
        return f"Halo Bestie: {what} {self.duration_s // 60} menit"


@dataclass(frozen=True)
class AttachedInvoice:
    """The invoice a transaction shows (None once it expired without one), and until when. A transaction shows the
    first invoice attached to it while it was pending, and only that one: `BillingRepository.attach_invoice_if_none`."""

    invoice_url: str | None
    expires_at: datetime


def payment_document(
    transaction_id: str, *, client_uid: str | None, at: datetime, data: Mapping[str, Any]
) -> DocumentWrite:
    """The client's app waits here for Xendit's word after sending the client to the invoice page."""
    return DocumentWrite.at(
        payment_path(transaction_id),
        PaymentDocument(transaction_id=transaction_id, client_uid=client_uid, updated_at=ts(at), **data),
    )


def awaiting_payment(pending: PendingTransaction, client_uid: str) -> DocumentWrite:
    """What the client's app sees of its payment while it waits for Xendit."""
    return payment_document(
        pending.transaction_id,
        client_uid=client_uid,
        at=pending.now,
        data={
            "status": pending.status,
            "purpose": pending.purpose,
            "tier_id": pending.tier_id,
            "amount": pending.amount,
            "currency": CURRENCY,
            "expires_at": ts(pending.expires_at),
        },
    )


def payment_timeout(transaction_id: str, expires_at: datetime) -> TaskRequest:
    """What stays unpaid when the payment window closes is expired (task_payment_timeout)."""
    return TaskRequest(
        TIMEOUT_QUEUE,
        payment_timeout_task_id(transaction_id),
        "task_payment_timeout",
        {"transaction_id": transaction_id},
        expires_at,
    )


@dataclass(frozen=True)
class PaymentWindow:
    """Where a transaction stands when its payment timeout fires."""

    status: TransactionStatus
    invoice_id: str | None
    expires_at: datetime
    now: datetime

    @property
    def over(self) -> bool:
        return self.now >= self.expires_at - DEADLINE_TOLERANCE


# -- what the provider reports -------------------------------------------------------------------------------------

# Invoice states in Xendit's words, as our transaction states.
_PAID_STATES = frozenset({"PAID", "SETTLED"})
_EXPIRED_STATES = frozenset({"EXPIRED"})
# Refund states in Xendit's words that end a refund without paying it out; any other but SUCCEEDED is still pending.
_REFUND_FAILED_STATES = frozenset({"FAILED", "CANCELLED"})


class PaymentProviderError(Exception):
    """Xendit refused or could not be reached. `retryable` says whether the same call may succeed later."""

    def __init__(self, message: str, *, retryable: bool, status: int | None = None, error_code: str = "") -> None:
        super().__init__(message)
        self.retryable = retryable
        self.status = status
        self.error_code = error_code


def transaction_status_of(provider_status: str) -> TransactionStatus | None:
    """An invoice's state in Xendit's words, in ours: `paid`, `expired`, or None for anything we do not act on."""
    if provider_status in _PAID_STATES:
        return TransactionStatus.PAID
    return TransactionStatus.EXPIRED if provider_status in _EXPIRED_STATES else None


@dataclass(frozen=True)
class Invoice:
    invoice_id: str
    external_id: str
    invoice_url: str
    status: str
    amount: int
    currency: str
    expires_at: datetime

    @property
    def is_paid(self) -> bool:
        return transaction_status_of(self.status) is TransactionStatus.PAID


@dataclass(frozen=True)
class Refund:
    refund_id: str
    invoice_id: str | None
    amount: int
    currency: str
    status: str
    failure_code: str | None = None

    @property
    def outcome(self) -> Literal["succeeded", "failed", "pending"]:
        """In our words: the money is back, it never will be, or a refund callback will say."""
        if self.status == "SUCCEEDED":
            return "succeeded"
        return "failed" if self.status in _REFUND_FAILED_STATES else "pending"

    def report(self) -> RefundReport:
        """What Xendit's answer says of a refund that has ended, in the words of its refund callback."""
        return RefundReport(
            refund_id=self.refund_id,
            succeeded=self.outcome == "succeeded",
            invoice_id=self.invoice_id,
            amount=Decimal(self.amount),
            currency=self.currency,
        )


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


# -- what the billing repositories hand over ---------------------------------------------------------------------------


@dataclass(frozen=True)
class PaidTransaction:
    """A transaction Xendit has just been paid for: what its purpose must deliver."""

    transaction_id: str
    client_id: str
    purpose: Purpose
    tier_id: str
    duration_s: int
    amount: int
    extension_id: str | None


@dataclass(frozen=True)
class LockedOrder:
    """A transaction a callback speaks of, its row locked until the change ends."""

    transaction_id: str
    client_id: str
    client_uid: str | None
    purpose: Purpose
    tier_id: str
    extension_id: str | None
    duration_s: int
    amount: int
    currency: str
    status: TransactionStatus
    invoice_id: str | None

    @property
    def order(self) -> Order:
        return Order(status=self.status, amount=self.amount, currency=self.currency, invoice_id=self.invoice_id)

    @property
    def paid(self) -> PaidTransaction:
        return PaidTransaction(
            transaction_id=self.transaction_id,
            client_id=self.client_id,
            purpose=self.purpose,
            tier_id=self.tier_id,
            duration_s=self.duration_s,
            amount=self.amount,
            extension_id=self.extension_id,
        )


@dataclass(frozen=True)
class Expired:
    """A transaction its payment window closed on: whose it was, and when."""

    client_uid: str | None
    expired_at: datetime


@dataclass(frozen=True)
class Charged:
    """What a transaction was paid (or is still to be), as a refund needs it."""

    status: TransactionStatus
    amount: int
    currency: str


@dataclass(frozen=True)
class StoredAttempt:
    """One attempt at refunding a credit as PostgreSQL holds it, with what its transaction was paid."""

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

    @property
    def judged(self) -> RefundAttempt:
        """What `judge_refund` weighs a report against."""
        return RefundAttempt(
            status=self.status,
            refund_id=self.refund_id,
            invoice_id=self.invoice_id,
            amount=self.amount,
            currency=self.currency,
        )


@dataclass(frozen=True)
class CallbackRecord:
    """One delivery of a Xendit callback as payment_events keeps it: what it said, and what we made of it."""

    kind: Literal["invoice", "refund"]
    webhook_id: str | None
    payload: Mapping[str, Any]
    outcome: Outcome
    reason: str | None
    transaction_id: str | None = None
    invoice_id: str | None = None
    refund_id: str | None = None
    external_id: str | None = None
    provider_status: str | None = None
    amount: Decimal | None = None
    paid_amount: Decimal | None = None
    currency: str | None = None


@dataclass(frozen=True)
class CreditedBack:
    """The unused time of a session an admin ended, credited back to its client (`admin_session_end` with
    `credit_unused`): its value pro rata of what the client paid; finance settles it."""

    session_id: str
    unused_s: int
    amount: int
    created_at: datetime
