"""Refunds: an admin gives an unused credit's money back through Xendit, and Xendit's refund callbacks (or its
answer when asked where a refund stands) settle each attempt.

The credit is `refunding` from the first ask until Xendit confirms the money is back, so no pairing request can take
it meanwhile. Each attempt moves as shared.domain.billing.RefundStatus allows, and is settled at most once, whoever
brings Xendit's word first: its answer to our call, its refund callback, or its Get Refund answer (an admin asking
again, or the refund sweep in reconciliation.py). The attempt's row lock makes them apply one at a time, each seeing
what the one before did.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any, Literal

from shared.domain import billing
from shared.domain.billing import (
    CallbackRecord,
    CreditStatus,
    Outcome,
    PaymentProviderError,
    RefundReport,
    RefundStatus,
    RefundVerdict,
    StoredAttempt,
    TransactionStatus,
)
from shared.errors import Conflict, NotFound, Unavailable
from shared.logging import event
from shared.schemas.billing import RefundCallback, parse_refund_callback
from shared.services import projector
from shared.services.billing import provider_failure
from shared.services.ports import PaymentProvider, Ports
from shared.services.unit_of_work import UnitOfWork

log = logging.getLogger(__name__)

# The only thing refunded here is a credit the client never used and asked to have back.
REFUND_REASON = "REQUESTED_BY_CUSTOMER"

# Where Xendit's word on a refund came from: its answer to our refund call, its refund callback, or its Get Refund
# answer when we asked where the refund stands (`reconciled`: an admin asking again, or the refund sweep).
RefundSource = Literal["answer", "callback", "reconciled"]


@dataclass(frozen=True)
class RefundDone:
    transaction_id: str
    # None when the credit was paid whole from the credited-back balance: it went back there, not through Xendit.
    refund_id: str | None
    # What Xendit gave back (0 for a credit the balance paid whole).
    amount: int
    currency: str
    # `refunded` once Xendit confirmed the money is back; `refunding` while it has accepted the refund but not yet.
    status: CreditStatus


@dataclass(frozen=True)
class LookedUp:
    attempt: StoredAttempt
    # None while Xendit still reports the refund pending.
    verdict: RefundVerdict | None


def refund(ports: Ports, provider: PaymentProvider, admin_uid: str, transaction_id: str, reason: str) -> RefundDone:
    """Asking again returns the same refund: one whose answer was lost is asked for again with its idempotency key,
    and Xendit is asked where a pending one stands, in case its callback was lost. Once a refund failed, asking again
    is a new attempt."""
    claimed = _claim(ports, admin_uid, transaction_id, reason)
    if isinstance(claimed, RefundDone):
        return claimed
    if claimed.status is RefundStatus.REQUESTED:
        claimed = _ask_xendit(ports, provider, claimed)
    elif claimed.status is RefundStatus.PENDING:
        claimed = look_up(ports, provider, claimed, asked_by=admin_uid).attempt
    return _done(claimed)


def _claim(ports: Ports, admin_uid: str, transaction_id: str, reason: str) -> StoredAttempt | RefundDone:
    """The attempt open for this credit (a new one when none is), or the refund made before."""
    with ports.uow() as uow:
        charged = uow.refunds.charged(transaction_id)
        if charged is None:
            raise NotFound("no such transaction")
        if charged.status is not TransactionStatus.PAID:
            raise Conflict("only a paid credit can be refunded", code="not_refundable")
        credit = uow.refunds.locked_credit(transaction_id)
        if credit is None:
            raise Conflict("this payment was delivered as bought and holds no credit", code="not_refundable")
        refusal = billing.refund_refusal(credit)
        if refusal is not None:
            raise Conflict(f"this credit is {credit} and cannot be refunded", code=refusal)
        if credit is CreditStatus.REFUNDED:
            made = uow.refunds.refund_made(transaction_id)
            return RefundDone(transaction_id, made, charged.amount, charged.currency, credit)
        if charged.amount == 0:
            return _refund_to_balance(uow, admin_uid, transaction_id, reason, credit_was=credit)
        if credit is CreditStatus.AVAILABLE:
            uow.refunds.move_credit(transaction_id, from_status=credit, to=credit.move(CreditStatus.REFUNDING))
        attempt = _open_attempt(uow, admin_uid, transaction_id, reason, credit_was=credit)
        uow.commit()
    return attempt


def _refund_to_balance(
    uow: UnitOfWork, admin_uid: str, transaction_id: str, reason: str, *, credit_was: CreditStatus
) -> RefundDone:
    """A credit the credited-back balance paid whole: nothing went through Xendit, so it is refunded at once, to the
    balance it was paid from."""
    refunding = credit_was.move(CreditStatus.REFUNDING)
    if not uow.refunds.move_credit(transaction_id, from_status=credit_was, to=refunding) or not (
        uow.refunds.move_credit(transaction_id, from_status=refunding, to=CreditStatus.REFUNDED)
    ):
        raise Unavailable("the credit changed while it was refunded; retry")
    returned = uow.billing.return_credit_back_if_used(transaction_id)
    uow.audit.record(
        actor_uid=admin_uid,
        actor_role="admin",
        action="billing.refund",
        target=f"customer_transactions/{transaction_id}",
        old={"credit": credit_was},
        new={"credit": CreditStatus.REFUNDED, "credit_back_returned": returned, "reason": reason},
    )
    uow.commit()
    return RefundDone(transaction_id, None, 0, billing.CURRENCY, CreditStatus.REFUNDED)


def _open_attempt(
    uow: UnitOfWork, admin_uid: str, transaction_id: str, reason: str, *, credit_was: CreditStatus
) -> StoredAttempt:
    """The attempt already open keeps the reference (and the reason) it was first asked with."""
    opened = uow.refunds.open_attempt(transaction_id)
    if opened is not None:
        return opened
    number = uow.refunds.last_attempt(transaction_id) + 1
    opened = uow.refunds.add_attempt(
        transaction_id,
        number=number,
        reference_id=billing.refund_reference(transaction_id, number),
        reason=reason,
        requested_by=admin_uid,
    )
    uow.audit.record(
        actor_uid=admin_uid,
        actor_role="admin",
        action="billing.refund",
        target=f"customer_transactions/{transaction_id}",
        old={"credit": credit_was},
        new={
            "credit": CreditStatus.REFUNDING,
            "attempt": number,
            "reference_id": opened.reference_id,
            "amount": opened.amount,
            "reason": reason,
        },
    )
    return opened


def _ask_xendit(ports: Ports, provider: PaymentProvider, attempt: StoredAttempt) -> StoredAttempt:
    try:
        answer = provider.refund_invoice(
            invoice_id=attempt.invoice_id,
            amount=attempt.amount,
            reference_id=attempt.reference_id,
            reason=REFUND_REASON,
        )
    except PaymentProviderError as exc:
        if exc.retryable:
            # Xendit may or may not have made the refund: the attempt stays open until an admin asks again.
            raise provider_failure(exc, "refund") from exc
        return _record_answer(ports, attempt, RefundStatus.REFUSED, refund_id=None, failure_code=exc.error_code)
    return _record_answer(
        ports, attempt, RefundStatus(answer.outcome), refund_id=answer.refund_id, failure_code=answer.failure_code
    )


def _record_answer(
    ports: Ports, attempt: StoredAttempt, target: RefundStatus, *, refund_id: str | None, failure_code: str | None
) -> StoredAttempt:
    with ports.uow() as uow:
        current = uow.refunds.locked_attempt(attempt.transaction_id, attempt.attempt)
        assert current is not None
        # Else its refund callback came before Xendit's answer (or an admin asking at the same moment recorded the
        # answer first), and the attempt stays as they left it.
        if current.status is RefundStatus.REQUESTED:
            current = settle(uow, current, target, refund_id=refund_id, failure_code=failure_code, source="answer")
        uow.commit()
    return current


def _done(attempt: StoredAttempt) -> RefundDone:
    if attempt.status is RefundStatus.REFUSED:
        raise Conflict(
            "Xendit refused this refund", code="refund_refused", details={"provider_code": attempt.failure_code}
        )
    if attempt.status is RefundStatus.FAILED:
        raise Conflict(
            "Xendit could not pay this refund out; the credit is the client's again",
            code="refund_failed",
            details={"provider_code": attempt.failure_code, "refund_id": attempt.refund_id},
        )
    assert attempt.refund_id is not None
    return RefundDone(
        attempt.transaction_id, attempt.refund_id, attempt.amount, attempt.currency, attempt.status.credit
    )


def settle(
    uow: UnitOfWork,
    attempt: StoredAttempt,
    target: RefundStatus,
    *,
    refund_id: str | None,
    failure_code: str | None,
    source: RefundSource,
    asked_by: str | None = None,
) -> StoredAttempt:
    """Move an attempt on; when it ends, move its credit with it, append the ledger row and audit Xendit's word with
    where it came from (and, when we asked for it, who asked)."""
    settled = replace(
        attempt,
        status=attempt.status.move(target),
        refund_id=attempt.refund_id or refund_id,
        failure_code=failure_code,
    )
    if not uow.refunds.move_attempt(settled, from_status=attempt.status):
        raise Unavailable("the refund changed while it was settled; retry")
    if target.is_open:
        return settled
    credit = CreditStatus.REFUNDING.move(target.credit)
    if not uow.refunds.move_credit(attempt.transaction_id, from_status=CreditStatus.REFUNDING, to=credit):
        raise Unavailable("the credit changed while its refund was settled; retry")
    if target is RefundStatus.SUCCEEDED:
        # Xendit gave back what went through it; what the credited-back balance paid goes back to the balance.
        uow.billing.return_credit_back_if_used(attempt.transaction_id)
        uow.billing.record_ledger(
            attempt.transaction_id,
            "refund",
            external_ref=settled.refund_id,
            note=attempt.reason,
            created_by=attempt.requested_by,
        )
    elif target is RefundStatus.FAILED:
        uow.billing.record_ledger(
            attempt.transaction_id, "refund_failed", external_ref=settled.refund_id, note=failure_code
        )
    uow.audit.record(
        actor_uid="xendit",
        actor_role="provider",
        action=f"billing.refund_{target}",
        target=f"customer_transactions/{attempt.transaction_id}",
        old={"credit": CreditStatus.REFUNDING, "refund": attempt.status},
        new={
            "credit": credit,
            "refund": target,
            "attempt": attempt.attempt,
            "refund_id": settled.refund_id,
            "failure_code": failure_code,
            "source": source,
            **({"asked_by": asked_by} if asked_by else {}),
        },
    )
    if credit is CreditStatus.AVAILABLE:
        event(
            log,
            "refund not made",
            logging.WARNING,
            transaction=attempt.transaction_id,
            attempt=attempt.attempt,
            refund=target,
            code=failure_code,
        )
    return settled


# -- Xendit's refund callbacks ---------------------------------------------------------------------------------------


def receive_callback(ports: Ports, payload: dict[str, Any], *, webhook_id: str | None) -> Outcome:
    """Record one refund callback and settle its refund at most once, as payments.receive_callback does for
    payments: the attempt its reference names is locked, so replays, reorderings and concurrent duplicates move
    money state once. A body that is no refund callback as Xendit sends it is refused (400 naming the field) and
    changes nothing."""
    callback = parse_refund_callback(payload)
    refund = callback.data
    with ports.uow() as uow:
        if refund.reference_id is not None:
            attempt = uow.refunds.locked_attempt_by_reference(refund.reference_id)
        else:
            attempt = uow.refunds.locked_attempt_by_refund(refund.id)
        verdict = billing.judge_refund(attempt.judged if attempt else None, _report(callback))
        if attempt is not None and verdict.move_to is not None:
            settle(
                uow, attempt, verdict.move_to, refund_id=refund.id, failure_code=refund.failure_code, source="callback"
            )
        transaction_id = attempt.transaction_id if attempt else None
        uow.billing.record_callback(_record(verdict, callback, payload, webhook_id, transaction_id))
        committed = uow.commit()
    projector.deliver(ports, committed)
    level = logging.WARNING if verdict.outcome is Outcome.QUARANTINED else logging.INFO
    event(
        log, "xendit refund callback", level, outcome=verdict.outcome, reason=verdict.reason, transaction=transaction_id
    )
    return verdict.outcome


def _report(callback: RefundCallback) -> RefundReport:
    refund = callback.data
    return RefundReport(
        refund_id=refund.id,
        succeeded=callback.succeeded,
        invoice_id=refund.invoice_id,
        amount=Decimal(str(refund.amount)),
        currency=refund.currency,
    )


def _record(
    verdict: RefundVerdict,
    callback: RefundCallback,
    payload: dict[str, Any],
    webhook_id: str | None,
    transaction_id: str | None,
) -> CallbackRecord:
    refund = callback.data
    return CallbackRecord(
        kind="refund",
        webhook_id=webhook_id,
        payload=payload,
        outcome=verdict.outcome,
        reason=verdict.reason,
        transaction_id=transaction_id,
        invoice_id=refund.invoice_id,
        refund_id=refund.id,
        external_id=refund.reference_id,
        provider_status=refund.status,
        amount=Decimal(str(refund.amount)),
        currency=refund.currency,
    )


# -- asking Xendit where a refund stands -----------------------------------------------------------------------------


def look_up(ports: Ports, provider: PaymentProvider, attempt: StoredAttempt, *, asked_by: str) -> LookedUp:
    """Ask Xendit where a pending refund stands (Get Refund). One it has settled is settled here exactly as its refund
    callback would have settled it, so that callback, arriving late, is a duplicate; one still pending is left as it
    is. No callback arrived, so nothing goes to payment_events; the audit says the word came from asking."""
    assert attempt.refund_id is not None  # a pending attempt always names Xendit's refund (migration 0012's CHECK)
    try:
        found = provider.get_refund(attempt.refund_id)
    except PaymentProviderError as exc:
        raise provider_failure(exc, "get_refund") from exc
    if found.outcome == "pending":
        return LookedUp(attempt, verdict=None)
    with ports.uow() as uow:
        current = uow.refunds.locked_attempt(attempt.transaction_id, attempt.attempt)
        assert current is not None
        verdict = billing.judge_refund(current.judged, found.report())
        if verdict.move_to is not None:
            current = settle(
                uow,
                current,
                verdict.move_to,
                refund_id=found.refund_id,
                failure_code=found.failure_code,
                source="reconciled",
                asked_by=asked_by,
            )
        uow.commit()
    level = logging.WARNING if verdict.outcome is Outcome.QUARANTINED else logging.INFO
    event(
        log,
        "refund reconciled",
        level,
        outcome=verdict.outcome,
        reason=verdict.reason,
        transaction=attempt.transaction_id,
        attempt=attempt.attempt,
        refund=found.status,
        by=asked_by,
    )
    return LookedUp(current, verdict)
