"""The domain's state machines driven by Hypothesis with arbitrary event sequences: no sequence reaches an illegal
state, and every illegal move is refused (raises, or `can_become` says no) without changing anything.

Each machine keeps its own plain model of what is allowed and checks the domain against it after every step, so a
rule that drifts in either place fails here with the shortest sequence that shows it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, precondition, rule

from shared.domain.billing import (
    CreditStatus,
    IllegalMove,
    Order,
    Outcome,
    Report,
    TransactionStatus,
    judge,
)
from shared.domain.pairing import OfferStatus, RequestStatus, has_capacity
from shared.domain.session import (
    TIMER_TOLERANCE,
    ExtensionStatus,
    IllegalTransition,
    Session,
    SessionStatus,
    extension_can_become,
)

# Deterministic, so CI sees the same sequences on every run; no example database left in the work tree.
MACHINE_SETTINGS = settings(max_examples=150, stateful_step_count=40, deadline=None, derandomize=True, database=None)

START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
RANK = {SessionStatus.ACTIVE: 0, SessionStatus.CLOSING: 1, SessionStatus.CLOSED: 2}

# Clocks are not monotonic across machines (task jitter, NTP steps): small moves back are part of the sequences.
clock_moves = st.integers(min_value=-90, max_value=3 * 3600)
goodbye_windows = st.integers(min_value=0, max_value=600).map(lambda s: timedelta(seconds=s))


# -- the session ---------------------------------------------------------------------------------------------------


class SessionMachine(RuleBasedStateMachine):
    """active → closing → closed, the timer and extensions, under any interleaving of events and clock moves."""

    def __init__(self) -> None:
        super().__init__()
        self.now = START
        self.session = Session(status=SessionStatus.ACTIVE, ends_at=START + timedelta(minutes=30), version=1)
        self.previous = self.session

    def _moved(self, after: Session) -> None:
        self.previous, self.session = self.session, after

    def _refused(self, attempt: Callable[[], Session]) -> None:
        before = self.session
        with pytest.raises(IllegalTransition):
            attempt()
        assert self.session is before
        self.previous = before

    @rule(seconds=clock_moves)
    def clock_moves(self, seconds: int) -> None:
        self.now += timedelta(seconds=seconds)
        self.previous = self.session

    @rule(goodbye=goodbye_windows)
    def timer_fires(self, goodbye: timedelta) -> None:
        due = self.session.status is SessionStatus.ACTIVE and self.now >= self.session.ends_at - TIMER_TOLERANCE
        if not due:
            self._refused(lambda: self.session.expire(self.now, goodbye))
            return
        self._moved(self.session.expire(self.now, goodbye))
        assert self.session.status is SessionStatus.CLOSING
        assert self.session.goodbye_until == self.now + goodbye

    @rule(goodbye=goodbye_windows)
    def participant_ends_it(self, goodbye: timedelta) -> None:
        if self.session.status is not SessionStatus.ACTIVE:
            self._refused(lambda: self.session.end_early(self.now, goodbye))
            return
        self._moved(self.session.end_early(self.now, goodbye))
        assert self.session.status is SessionStatus.CLOSING
        assert self.session.goodbye_until == self.now + goodbye

    @rule()
    def goodbye_window_ends(self) -> None:
        until = self.session.goodbye_until
        due = self.session.status is SessionStatus.CLOSING and until is not None and self.now >= until - TIMER_TOLERANCE
        if not due:
            self._refused(lambda: self.session.close(self.now))
            return
        self._moved(self.session.close(self.now))
        assert self.session.status is SessionStatus.CLOSED

    @rule(seconds=st.integers(min_value=-3600, max_value=4 * 3600))
    def extension_applied(self, seconds: int) -> None:
        if self.session.status is not SessionStatus.ACTIVE or seconds <= 0:
            self._refused(lambda: self.session.extend(seconds))
            return
        self._moved(self.session.extend(seconds))
        assert self.session.ends_at == self.previous.ends_at + timedelta(seconds=seconds)
        assert self.session.version == self.previous.version + 1

    @invariant()
    def status_only_moves_forward(self) -> None:
        assert RANK[self.session.status] - RANK[self.previous.status] in (0, 1)

    @invariant()
    def version_and_ends_at_only_grow_and_only_while_active(self) -> None:
        assert self.session.version >= self.previous.version
        assert self.session.ends_at >= self.previous.ends_at
        if (self.session.version, self.session.ends_at) != (self.previous.version, self.previous.ends_at):
            assert self.previous.status is SessionStatus.ACTIVE and self.session.status is SessionStatus.ACTIVE

    @invariant()
    def the_goodbye_window_is_set_once_on_leaving_active(self) -> None:
        assert (self.session.goodbye_until is None) == (self.session.status is SessionStatus.ACTIVE)
        if self.previous.goodbye_until is not None:
            assert self.session.goodbye_until == self.previous.goodbye_until

    @invariant()
    def only_an_active_session_in_time_takes_messages(self) -> None:
        expected = self.session.status is SessionStatus.ACTIVE and self.now < self.session.ends_at
        assert self.session.accepts_messages(self.now) == expected
        if self.session.status is not SessionStatus.CLOSING:
            assert not self.session.accepts_goodbye(self.now)

    @invariant()
    def a_closed_session_accepts_nothing(self) -> None:
        if self.session.status is not SessionStatus.CLOSED:
            return
        assert not self.session.accepts_messages(self.now)
        assert not self.session.accepts_goodbye(self.now)
        for attempt in (
            lambda: self.session.expire(self.now, timedelta(0)),
            lambda: self.session.end_early(self.now, timedelta(0)),
            lambda: self.session.close(self.now),
            lambda: self.session.extend(60),
        ):
            with pytest.raises(IllegalTransition):
                attempt()


TestSessionMachine = SessionMachine.TestCase
TestSessionMachine.settings = MACHINE_SETTINGS


class ExtensionMachine(RuleBasedStateMachine):
    """An extension request under any sequence of answers, payments, timeouts and session ends."""

    TERMINAL = frozenset(
        {ExtensionStatus.REJECTED, ExtensionStatus.EXPIRED, ExtensionStatus.APPLIED, ExtensionStatus.VOID}
    )

    def __init__(self) -> None:
        super().__init__()
        self.status = ExtensionStatus.REQUESTED
        self.path = [self.status]

    @rule(event=st.sampled_from(ExtensionStatus))
    def something_happens(self, event: ExtensionStatus) -> None:
        if extension_can_become(self.status, event):
            self.status = event
            self.path.append(event)

    @invariant()
    def requested_is_only_the_start(self) -> None:
        assert self.path.count(ExtensionStatus.REQUESTED) == 1

    @invariant()
    def an_ended_request_stays_ended(self) -> None:
        ended = [status for status in self.path if status in self.TERMINAL]
        assert len(ended) <= 1
        if ended:
            assert self.path[-1] == ended[0]

    @invariant()
    def time_is_added_only_after_a_yes_or_for_free(self) -> None:
        if ExtensionStatus.APPLIED in self.path:
            assert self.path[:-1] in (
                [ExtensionStatus.REQUESTED],
                [ExtensionStatus.REQUESTED, ExtensionStatus.ACCEPTED],
            )


TestExtensionMachine = ExtensionMachine.TestCase
TestExtensionMachine.settings = MACHINE_SETTINGS


# -- pairing -------------------------------------------------------------------------------------------------------

MITRAS = 2
MAX_CLIENTS = 2


class PairingMachine(RuleBasedStateMachine):
    """Requests blasted to mitras, who accept or decline while clients cancel, windows close and mitras leave. The
    services guard each move in SQL exactly as `can_become` and `has_capacity` say; this drives those rules."""

    requests = Bundle("requests")

    def __init__(self) -> None:
        super().__init__()
        self.status: dict[int, RequestStatus] = {}
        self.endings: dict[int, int] = {}
        self.matched_by: dict[int, int] = {}
        self.offers: dict[tuple[int, int], OfferStatus] = {}
        self.open_sessions = [0] * MITRAS
        self.online = [True] * MITRAS

    def _end(self, request: int, target: RequestStatus) -> bool:
        if not self.status[request].can_become(target):
            return False
        self.status[request] = target
        self.endings[request] += 1
        for (offered, mitra), status in list(self.offers.items()):
            if offered == request and status is OfferStatus.OFFERED:
                self.offers[(offered, mitra)] = OfferStatus.WITHDRAWN
        return True

    @rule(target=requests)
    def client_asks(self) -> int:
        request = len(self.status)
        self.status[request] = RequestStatus.SEARCHING
        self.endings[request] = 0
        self.blast_delivered(request)
        return request

    @rule(request=requests)
    def blast_delivered(self, request: int) -> None:
        """The first delivery of the blast, or any redelivery of it."""
        if not self.status[request].is_open:
            return
        for mitra in range(MITRAS):
            if self.online[mitra] and has_capacity(self.open_sessions[mitra], MAX_CLIENTS):
                self.offers.setdefault((request, mitra), OfferStatus.OFFERED)

    @rule(request=requests, mitra=st.integers(0, MITRAS - 1))
    def mitra_accepts(self, request: int, mitra: int) -> None:
        offer = self.offers.get((request, mitra))
        if offer in (None, OfferStatus.DECLINED) or not has_capacity(self.open_sessions[mitra], MAX_CLIENTS):
            return
        if self._end(request, RequestStatus.MATCHED):
            self.matched_by[request] = mitra
            self.offers[(request, mitra)] = OfferStatus.ACCEPTED
            self.open_sessions[mitra] += 1

    @rule(request=requests, mitra=st.integers(0, MITRAS - 1))
    def mitra_declines(self, request: int, mitra: int) -> None:
        if self.offers.get((request, mitra)) is OfferStatus.OFFERED:
            self.offers[(request, mitra)] = OfferStatus.DECLINED

    @rule(request=requests, ending=st.sampled_from([RequestStatus.CANCELLED, RequestStatus.NO_MITRA]))
    def search_ends(self, request: int, ending: RequestStatus) -> None:
        self._end(request, ending)

    @rule(mitra=st.integers(0, MITRAS - 1))
    def mitra_goes_offline(self, mitra: int) -> None:
        self.online[mitra] = False
        for (request, offered_to), status in list(self.offers.items()):
            if offered_to == mitra and status is OfferStatus.OFFERED:
                self.offers[(request, offered_to)] = OfferStatus.WITHDRAWN

    @rule(mitra=st.integers(0, MITRAS - 1))
    def mitra_comes_back(self, mitra: int) -> None:
        self.online[mitra] = True

    @precondition(lambda self: any(self.open_sessions))
    @rule(mitra=st.integers(0, MITRAS - 1))
    def a_session_closes(self, mitra: int) -> None:
        self.open_sessions[mitra] = max(0, self.open_sessions[mitra] - 1)

    @rule(request=requests, event=st.sampled_from(RequestStatus))
    def a_late_or_repeated_event_changes_nothing(self, request: int, event: RequestStatus) -> None:
        before = self.status[request]
        if before is not RequestStatus.SEARCHING:
            assert not before.can_become(event)
            assert not self._end(request, event)
            assert self.status[request] is before

    @invariant()
    def a_request_ends_exactly_once(self) -> None:
        for request, status in self.status.items():
            assert self.endings[request] == (0 if status is RequestStatus.SEARCHING else 1)
            assert status.is_open == (status is RequestStatus.SEARCHING)

    @invariant()
    def one_winner_and_it_held_an_offer(self) -> None:
        for request, status in self.status.items():
            accepted = [m for (r, m), offer in self.offers.items() if r == request and offer is OfferStatus.ACCEPTED]
            if status is RequestStatus.MATCHED:
                assert accepted == [self.matched_by[request]]
            else:
                assert accepted == []

    @invariant()
    def an_ended_request_offers_nothing(self) -> None:
        for (request, _mitra), offer in self.offers.items():
            if not self.status[request].is_open:
                assert offer is not OfferStatus.OFFERED

    @invariant()
    def capacity_is_never_exceeded(self) -> None:
        assert all(0 <= count <= MAX_CLIENTS for count in self.open_sessions)


TestPairingMachine = PairingMachine.TestCase
TestPairingMachine.settings = MACHINE_SETTINGS


def test_a_request_can_only_end_and_only_from_searching() -> None:
    for current in RequestStatus:
        for target in RequestStatus:
            expected = current is RequestStatus.SEARCHING and target is not RequestStatus.SEARCHING
            assert current.can_become(target) == expected, (current, target)


# -- billing -------------------------------------------------------------------------------------------------------

INVOICE = "inv-0001"
PRICE = 35_000

reports = st.builds(
    Report,
    invoice_id=st.sampled_from([INVOICE, INVOICE, "inv-other"]),
    status=st.sampled_from([TransactionStatus.PAID, TransactionStatus.EXPIRED, None]),
    amount=st.sampled_from([Decimal(PRICE), Decimal(PRICE), Decimal(PRICE - 1)]),
    paid_amount=st.sampled_from([Decimal(PRICE), None, Decimal(PRICE + 1000)]),
    currency=st.sampled_from(["IDR", "IDR", "USD", None]),
)


class PaymentMachine(RuleBasedStateMachine):
    """One order and whatever Xendit reports about it, replayed, reordered and mismatched: it moves once."""

    def __init__(self) -> None:
        super().__init__()
        self.order = Order(status=TransactionStatus.PENDING, amount=PRICE, currency="IDR", invoice_id=INVOICE)
        self.applied = 0
        self.seen: list[Report] = []

    @rule(report=reports)
    def provider_reports(self, report: Report) -> None:
        before = self.order.status
        verdict = judge(self.order, report)
        if verdict.outcome is Outcome.APPLIED:
            assert verdict.move_to is not None and before.can_become(verdict.move_to)
            self.order = Order(verdict.move_to, self.order.amount, self.order.currency, self.order.invoice_id)
            self.applied += 1
        else:
            assert verdict.move_to is None
        self.seen.append(report)

    @rule(data=st.data())
    def a_report_is_replayed(self, data: st.DataObject) -> None:
        if not self.seen:
            return
        report = data.draw(st.sampled_from(self.seen))
        assert judge(self.order, report).outcome is not Outcome.APPLIED

    @rule(move=st.sampled_from(TransactionStatus))
    def an_illegal_move_raises(self, move: TransactionStatus) -> None:
        if self.order.status.can_become(move):
            return
        with pytest.raises(IllegalMove):
            self.order.status.move(move)

    @invariant()
    def the_order_moves_at_most_once(self) -> None:
        assert self.applied == (0 if self.order.status is TransactionStatus.PENDING else 1)

    @invariant()
    def money_that_does_not_match_is_never_applied(self) -> None:
        if self.order.status is TransactionStatus.PAID:
            wrong = Report(INVOICE, TransactionStatus.PAID, Decimal(PRICE), Decimal(PRICE - 1), "IDR")
            assert judge(self.order, wrong).outcome is Outcome.QUARANTINED

    @invariant()
    def a_settled_order_answers_replays_without_moving(self) -> None:
        paid = Report(INVOICE, TransactionStatus.PAID, Decimal(PRICE), Decimal(PRICE), "IDR")
        expired = Report(INVOICE, TransactionStatus.EXPIRED, Decimal(PRICE), None, "IDR")
        if self.order.status is TransactionStatus.PAID:
            assert judge(self.order, paid).outcome is Outcome.DUPLICATE
            assert judge(self.order, expired).outcome is Outcome.IGNORED
        if self.order.status is TransactionStatus.EXPIRED:
            assert judge(self.order, paid).outcome is Outcome.QUARANTINED
            assert judge(self.order, expired).outcome is Outcome.DUPLICATE


TestPaymentMachine = PaymentMachine.TestCase
TestPaymentMachine.settings = MACHINE_SETTINGS


class CreditMachine(RuleBasedStateMachine):
    """A paid credit reserved by requests, released, consumed by a session or refunded, in any order."""

    def __init__(self) -> None:
        super().__init__()
        self.status = CreditStatus.AVAILABLE
        self.path = [self.status]

    @rule(event=st.sampled_from(CreditStatus))
    def something_happens(self, event: CreditStatus) -> None:
        if self.status.can_become(event):
            self.status = self.status.move(event)
            self.path.append(self.status)
        else:
            with pytest.raises(IllegalMove):
                self.status.move(event)

    @invariant()
    def used_or_refunded_is_final(self) -> None:
        final = [status for status in self.path if status in (CreditStatus.CONSUMED, CreditStatus.REFUNDED)]
        assert len(final) <= 1
        if final:
            assert self.path[-1] == final[0]

    @invariant()
    def a_credit_is_used_only_through_a_reservation_and_refunded_only_through_refunding(self) -> None:
        for before, after in zip(self.path, self.path[1:], strict=False):
            if after is CreditStatus.CONSUMED:
                assert before is CreditStatus.RESERVED
            if after is CreditStatus.REFUNDED:
                assert before is CreditStatus.REFUNDING


TestCreditMachine = CreditMachine.TestCase
TestCreditMachine.settings = MACHINE_SETTINGS
