"""Billing's pure rules: the transaction, credit and refund state machines, and how a provider's report is judged."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from shared.domain.billing import (
    CreditStatus,
    IllegalMove,
    Order,
    Outcome,
    RefundAttempt,
    RefundReport,
    RefundStatus,
    RefundVerdict,
    Report,
    TransactionStatus,
    Verdict,
    amount_mismatch,
    is_payable,
    judge,
    judge_refund,
    refund_reference,
    refund_refusal,
    seconds_left,
)

PENDING, PAID, EXPIRED = TransactionStatus.PENDING, TransactionStatus.PAID, TransactionStatus.EXPIRED
INVOICE = "64b0c0ffee0000000000beef"


def _order(status: TransactionStatus = PENDING, amount: int = 35_000, invoice_id: str | None = INVOICE) -> Order:
    return Order(status=status, amount=amount, currency="IDR", invoice_id=invoice_id)


def _report(
    status: TransactionStatus | None = PAID,
    amount: str = "35000",
    paid_amount: str | None = "35000",
    currency: str | None = "IDR",
    invoice_id: str = INVOICE,
) -> Report:
    return Report(
        invoice_id=invoice_id,
        status=status,
        amount=Decimal(amount),
        paid_amount=Decimal(paid_amount) if paid_amount is not None else None,
        currency=currency,
    )


# -- the transaction's life ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("target", [PAID, EXPIRED])
def test_a_pending_transaction_becomes_paid_or_expired(target: TransactionStatus) -> None:
    assert PENDING.move(target) is target


@pytest.mark.parametrize(
    ("current", "target"),
    [(PENDING, PENDING), (PAID, PENDING), (PAID, EXPIRED), (PAID, PAID), (EXPIRED, PAID), (EXPIRED, PENDING)],
)
def test_nothing_leaves_paid_or_expired_and_nothing_returns_to_pending(
    current: TransactionStatus, target: TransactionStatus
) -> None:
    assert not current.can_become(target)
    with pytest.raises(IllegalMove):
        current.move(target)


def test_the_credit_state_machine() -> None:
    allowed = {
        (CreditStatus.AVAILABLE, CreditStatus.RESERVED),
        (CreditStatus.AVAILABLE, CreditStatus.REFUNDING),
        (CreditStatus.RESERVED, CreditStatus.AVAILABLE),
        (CreditStatus.RESERVED, CreditStatus.CONSUMED),
        (CreditStatus.REFUNDING, CreditStatus.REFUNDED),
        (CreditStatus.REFUNDING, CreditStatus.AVAILABLE),
    }
    for current, target in itertools.product(CreditStatus, repeat=2):
        assert current.can_become(target) == ((current, target) in allowed), (current, target)
    with pytest.raises(IllegalMove):
        CreditStatus.CONSUMED.move(CreditStatus.AVAILABLE)


@pytest.mark.parametrize(
    ("status", "refusal"),
    [
        (CreditStatus.AVAILABLE, None),
        (CreditStatus.REFUNDING, None),
        (CreditStatus.RESERVED, "credit_in_use"),
        (CreditStatus.CONSUMED, "credit_consumed"),
    ],
)
def test_only_an_unused_credit_may_be_refunded(status: CreditStatus, refusal: str | None) -> None:
    assert refund_refusal(status) == refusal


def test_a_free_tier_is_not_payable() -> None:
    assert is_payable(35_000)
    assert not is_payable(0)


def test_seconds_left_round_up_so_the_invoice_outlives_the_transaction() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)

    assert seconds_left(now + timedelta(seconds=899, milliseconds=1), now) == 900
    assert seconds_left(now + timedelta(seconds=900), now) == 900
    assert seconds_left(now - timedelta(seconds=1), now) == -1


# -- judging what Xendit reports -------------------------------------------------------------------------------------


def test_a_matching_payment_of_a_pending_order_is_applied() -> None:
    assert judge(_order(), _report()) == Verdict(Outcome.APPLIED, move_to=PAID)


def test_a_replayed_payment_is_a_duplicate_however_often() -> None:
    assert {judge(_order(PAID), _report()) for _ in range(100)} == {Verdict(Outcome.DUPLICATE)}


def test_an_expiry_of_a_pending_order_is_applied_and_its_replay_is_a_duplicate() -> None:
    assert judge(_order(), _report(EXPIRED)) == Verdict(Outcome.APPLIED, move_to=EXPIRED)
    assert judge(_order(EXPIRED), _report(EXPIRED)) == Verdict(Outcome.DUPLICATE)


def test_an_expiry_arriving_after_the_payment_changes_nothing() -> None:
    assert judge(_order(PAID), _report(EXPIRED)) == Verdict(Outcome.IGNORED, "expired_after_paid")


def test_money_arriving_for_an_expired_order_goes_to_an_admin() -> None:
    assert judge(_order(EXPIRED), _report()) == Verdict(Outcome.QUARANTINED, "paid_after_expiry")


@pytest.mark.parametrize(
    ("report", "reason"),
    [
        (_report(amount="35001", paid_amount="35001"), "amount_mismatch"),
        (_report(paid_amount="34000"), "amount_mismatch"),
        (_report(paid_amount="36000"), "amount_mismatch"),
        (_report(amount="35000.5", paid_amount=None), "amount_mismatch"),
        (_report(currency="USD"), "currency_mismatch"),
        (_report(currency=None), "currency_mismatch"),
    ],
)
def test_a_payment_that_differs_from_the_order_is_quarantined(report: Report, reason: str) -> None:
    assert judge(_order(), report) == Verdict(Outcome.QUARANTINED, reason)
    assert judge(_order(PAID), report) == Verdict(Outcome.QUARANTINED, reason), "not a duplicate of the real one"


def test_a_whole_number_written_as_a_decimal_matches() -> None:
    assert amount_mismatch(_order(), _report(amount="35000.00", paid_amount="35000.0")) is None


def test_a_payment_we_cannot_place_is_quarantined() -> None:
    assert judge(None, _report()) == Verdict(Outcome.QUARANTINED, "unknown_transaction")
    assert judge(_order(), _report(invoice_id="another")) == Verdict(Outcome.QUARANTINED, "invoice_mismatch")
    assert judge(_order(invoice_id=None), _report()) == Verdict(Outcome.QUARANTINED, "invoice_mismatch")


def test_an_expiry_we_cannot_place_is_ignored() -> None:
    assert judge(None, _report(EXPIRED)) == Verdict(Outcome.IGNORED, "unknown_transaction")
    assert judge(_order(), _report(EXPIRED, invoice_id="spare")) == Verdict(Outcome.IGNORED, "invoice_mismatch")


def test_a_provider_state_we_do_not_act_on_is_ignored() -> None:
    assert judge(_order(), _report(status=None)) == Verdict(Outcome.IGNORED, "status_not_handled")


def test_any_order_of_reports_moves_an_order_at_most_once() -> None:
    reports = [_report(), _report(EXPIRED), _report(), _report(EXPIRED, invoice_id="spare"), _report()]
    for ordering in itertools.permutations(reports):
        status, moves = PENDING, 0
        for report in ordering:
            verdict = judge(_order(status), report)
            if verdict.move_to is not None:
                status, moves = status.move(verdict.move_to), moves + 1
        assert moves == 1


# -- refunds ---------------------------------------------------------------------------------------------------------

REQUESTED, REFUND_PENDING = RefundStatus.REQUESTED, RefundStatus.PENDING
SUCCEEDED, FAILED, REFUSED = RefundStatus.SUCCEEDED, RefundStatus.FAILED, RefundStatus.REFUSED
REFUND = "rfd-6f4a377d-a201-437f-9119-f8b00cbbe857"


def _attempt(status: RefundStatus = REFUND_PENDING, refund_id: str | None = REFUND) -> RefundAttempt:
    return RefundAttempt(status=status, refund_id=refund_id, invoice_id=INVOICE, amount=35_000, currency="IDR")


def _refund_report(
    succeeded: bool = True,
    refund_id: str = REFUND,
    invoice_id: str | None = INVOICE,
    amount: str = "35000",
    currency: str = "IDR",
) -> RefundReport:
    return RefundReport(
        refund_id=refund_id, succeeded=succeeded, invoice_id=invoice_id, amount=Decimal(amount), currency=currency
    )


def test_the_refund_state_machine() -> None:
    allowed = {
        (REQUESTED, REFUND_PENDING),
        (REQUESTED, SUCCEEDED),
        (REQUESTED, FAILED),
        (REQUESTED, REFUSED),
        (REFUND_PENDING, SUCCEEDED),
        (REFUND_PENDING, FAILED),
    }
    for current, target in itertools.product(RefundStatus, repeat=2):
        assert current.can_become(target) == ((current, target) in allowed), (current, target)
    with pytest.raises(IllegalMove):
        FAILED.move(SUCCEEDED)


@pytest.mark.parametrize(
    ("status", "credit"),
    [
        (REQUESTED, CreditStatus.REFUNDING),
        (REFUND_PENDING, CreditStatus.REFUNDING),
        (SUCCEEDED, CreditStatus.REFUNDED),
        (FAILED, CreditStatus.AVAILABLE),
        (REFUSED, CreditStatus.AVAILABLE),
    ],
)
def test_the_credit_is_held_while_a_refund_is_open_and_refunded_only_once_it_succeeded(
    status: RefundStatus, credit: CreditStatus
) -> None:
    assert status.credit is credit
    assert status.is_open == (credit is CreditStatus.REFUNDING)


def test_each_attempt_has_its_own_reference_and_the_first_keeps_the_old_form() -> None:
    transaction = "0f8fad5b-d9cb-469f-a165-70867728950e"

    references = [refund_reference(transaction, attempt) for attempt in (1, 2, 3)]

    assert references == [f"refund-{transaction}", f"refund-{transaction}-2", f"refund-{transaction}-3"]


def test_a_refunded_credit_is_reported_not_refused() -> None:
    assert refund_refusal(CreditStatus.REFUNDED) is None


@pytest.mark.parametrize("status", [REQUESTED, REFUND_PENDING])
@pytest.mark.parametrize("succeeded", [True, False])
def test_a_refund_callback_settles_an_open_attempt(status: RefundStatus, succeeded: bool) -> None:
    # REQUESTED: the callback came before Xendit's answer to our own call did.
    attempt = _attempt(status, refund_id=None if status is REQUESTED else REFUND)

    verdict = judge_refund(attempt, _refund_report(succeeded))

    assert verdict == RefundVerdict(Outcome.APPLIED, move_to=SUCCEEDED if succeeded else FAILED)


def test_a_replayed_refund_callback_is_a_duplicate_however_often() -> None:
    assert {judge_refund(_attempt(SUCCEEDED), _refund_report()) for _ in range(100)} == {
        RefundVerdict(Outcome.DUPLICATE)
    }
    assert judge_refund(_attempt(FAILED), _refund_report(succeeded=False)) == RefundVerdict(Outcome.DUPLICATE)
    assert judge_refund(_attempt(REFUSED, refund_id=None), _refund_report(succeeded=False)) == RefundVerdict(
        Outcome.DUPLICATE
    ), "no money moved either way"


def test_a_refund_callback_contradicting_how_the_attempt_ended_goes_to_an_admin() -> None:
    assert judge_refund(_attempt(SUCCEEDED), _refund_report(succeeded=False)) == RefundVerdict(
        Outcome.QUARANTINED, "refund_failed_after_success"
    )
    assert judge_refund(_attempt(FAILED), _refund_report()) == RefundVerdict(
        Outcome.QUARANTINED, "refund_succeeded_after_failure"
    )
    assert judge_refund(_attempt(REFUSED, refund_id=None), _refund_report()) == RefundVerdict(
        Outcome.QUARANTINED, "refund_succeeded_after_failure"
    )


@pytest.mark.parametrize(
    ("report", "reason"),
    [
        (_refund_report(refund_id="rfd-another"), "refund_mismatch"),
        (_refund_report(invoice_id="64b0000000000000000other"), "invoice_mismatch"),
        (_refund_report(currency="USD"), "currency_mismatch"),
        (_refund_report(amount="34999"), "amount_mismatch"),
        (_refund_report(amount="35000.5"), "amount_mismatch"),
    ],
)
def test_a_refund_callback_that_differs_from_the_attempt_is_quarantined(report: RefundReport, reason: str) -> None:
    for status in RefundStatus:
        assert judge_refund(_attempt(status), report) == RefundVerdict(Outcome.QUARANTINED, reason), status


def test_a_refund_callback_we_cannot_place_is_quarantined() -> None:
    assert judge_refund(None, _refund_report()) == RefundVerdict(Outcome.QUARANTINED, "unknown_refund")
    assert judge_refund(None, _refund_report(succeeded=False)) == RefundVerdict(Outcome.QUARANTINED, "unknown_refund")


def test_a_callback_without_an_invoice_and_a_whole_amount_written_as_a_decimal_match() -> None:
    report = _refund_report(invoice_id=None, amount="35000.00")

    assert judge_refund(_attempt(), report) == RefundVerdict(Outcome.APPLIED, move_to=SUCCEEDED)


@pytest.mark.parametrize("start", [REQUESTED, REFUND_PENDING])
def test_any_order_of_refund_callbacks_settles_an_attempt_at_most_once(start: RefundStatus) -> None:
    reports = [_refund_report(), _refund_report(succeeded=False), _refund_report(), _refund_report(amount="1")]
    for ordering in itertools.permutations(reports):
        status, moves = start, 0
        for report in ordering:
            verdict = judge_refund(_attempt(status, refund_id=None if status is REQUESTED else REFUND), report)
            if verdict.move_to is not None:
                status, moves = status.move(verdict.move_to), moves + 1
        first = next(report for report in ordering if report.amount == 35_000)
        assert (moves, status) == (1, SUCCEEDED if first.succeeded else FAILED), "the first matching one decides"
