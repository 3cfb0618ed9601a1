"""Pairing: a client's request is offered to every available mitra at once; the first to accept gets the session.

`accept` is the hot path: an early read that refuses a mitra who has already lost, then one change whose guarded
statement (`start_session_if_first`) decides who wins, and whose events (the offers withdrawn, the request matched,
the session's document, the client's push, the session's timers) are inserted together when it commits.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Protocol, TypeVar

from shared.domain import blocks, pairing
from shared.domain.config import AppConfig
from shared.domain.idempotency import KeyedCall
from shared.domain.pairing import (
    AskingClient,
    Claim,
    ClientStanding,
    Declined,
    Match,
    NewRequest,
    OfferedRequest,
    OfferStanding,
    PastMitra,
    Purchase,
    RecentWaits,
    Refusal,
    Refused,
    RequestEnded,
    RequestKind,
    RequestOutcome,
    RequestStatus,
    SearchEnded,
    SearchWindow,
    StartAttempt,
)
from shared.errors import AppError, Conflict, InvalidRequest, NotFound, RateLimited, Unavailable
from shared.services import credits, idempotency, projector
from shared.services.parties import refuse
from shared.services.ports import Ports
from shared.services.unit_of_work import UnitOfWork

__all__ = ["Declined", "Match", "PairingRepository", "RequestEnded", "RequestOutcome"]


class PairingRepository(Protocol):
    """What pairing needs from storage (shared/adapters/postgres/pairing.py)."""

    def lock_client(self, client_id: str) -> AskingClient | None: ...

    def standing(self, client_id: str) -> ClientStanding: ...

    def tier_active(self, tier_id: str) -> bool: ...

    def anyone_available(self, config: AppConfig) -> bool: ...

    def past_mitra(self, client_id: str, mitra_id: str, config: AppConfig) -> PastMitra: ...

    def recent_waits(self) -> RecentWaits: ...

    def add_request(self, request: NewRequest) -> None: ...

    def searching_request_for_offers(self, request_id: str) -> OfferedRequest | None: ...

    def offer_to_available_mitras(self, request_id: str, config: AppConfig) -> list[str]: ...

    def offer_searching_requests_to(self, mitra_id: str, config: AppConfig) -> list[OfferedRequest]: ...

    def lock_mitra_for_offers(self, mitra_id: str) -> str | None: ...

    def offered_counts(self, request_ids: list[str]) -> dict[str, int]: ...

    def withdraw_offers_if_full(self, mitra_id: str, config: AppConfig) -> list[tuple[str, str]]: ...

    def end_preference(self, request_id: str, *, declined_by: str | None = None) -> bool: ...

    def offer_standing(self, request_id: str, mitra_id: str) -> OfferStanding | None: ...

    def claim_offer(self, request_id: str, mitra_id: str) -> Claim | None: ...

    def start_session_if_first(
        self, request_id: str, mitra_id: str, session_id: str, *, max_clients: int
    ) -> StartAttempt | None: ...

    def withdraw_offers_on_match(self, request_id: str, mitra_id: str) -> list[str]: ...

    def decline_if_offered(self, request_id: str, mitra_id: str) -> str | None: ...

    def has_offer(self, request_id: str, mitra_id: str) -> bool: ...

    def status_for_client(self, request_id: str, client_id: str) -> RequestStatus | None: ...

    def search_window(self, request_id: str) -> SearchWindow | None: ...

    def end_search_if_searching(self, request_id: str, status: RequestStatus) -> SearchEnded | None: ...

    def withdraw_offers(self, request_id: str) -> list[str]: ...

    def withdraw_open_offers_of(self, mitra_ids: list[str]) -> list[tuple[str, str]]: ...


# -- the client asks ---------------------------------------------------------------------------------------------------


def request_pairing(
    ports: Ports,
    client_id: str,
    *,
    tier_id: str | None,
    free_trial: bool,
    mitra_id: str | None = None,
    keyed: KeyedCall | None = None,
) -> RequestOutcome:
    """Searching, offered to every available mitra by the blast; with nobody available, searching all the same
    (someone may come online) or `no_mitra` at once, as the setting `wait_when_nobody_online` says. With `mitra_id`
    (a mitra the client had before), offered to that mitra alone first (`shared.domain.pairing.preference`).
    A retry with the same Idempotency-Key gets the first answer (shared/services/idempotency.py); without one, a
    second request while the first searches is 409 `request_open`, naming it."""
    request_id = str(uuid.uuid4())
    with ports.uow() as uow:
        if (first := idempotency.first_answer(uow, keyed, RequestOutcome)) is not None:
            return first
        client = uow.pairing.lock_client(client_id)
        if client is None:
            raise NotFound("no such client")
        standing = uow.pairing.standing(client_id)
        config = uow.settings.load()
        _refuse(pairing.may_ask(standing, now=client.now, per_hour=config.pairing_requests_per_hour), tier_id)
        deadline = pairing.search_deadline(client.now, config.pairing_search_window_s)
        preferred_until = None
        if mitra_id is not None:
            past = uow.pairing.past_mitra(client_id, mitra_id, config)
            preferred_until = _refuse(pairing.preference(past, asked_at=client.now, deadline=deadline, config=config))
        bought = _what_is_bought(
            uow,
            config,
            standing,
            client_id=client_id,
            request_id=request_id,
            tier_id=tier_id,
            free_trial=free_trial,
            now=client.now,
        )
        purchase = _refuse(bought, tier_id)
        request = NewRequest(
            request_id=request_id,
            client_id=client_id,
            status=pairing.opening_status(
                uow.pairing.anyone_available(config), wait_when_nobody_online=config.wait_when_nobody_online
            ),
            purchase=purchase,
            tier_id=tier_id,
            search_deadline=deadline,
            preferred_mitra_id=mitra_id,
            preferred_until=preferred_until,
        )
        uow.pairing.add_request(request)
        estimated = None
        if request.status.is_open:
            estimated = pairing.estimated_wait(uow.pairing.recent_waits())
        else:
            uow.credits.release(request_id)  # ended before it began: a paid credit stays with the client
        uow.outbox.add(
            *pairing.request_opened(
                request, client_uid=client.firebase_uid, asked_at=client.now, estimated_wait_s=estimated
            )
        )
        outcome = RequestOutcome(request_id, request.status, deadline, estimated, preferred_until)
        idempotency.remember(uow, keyed, outcome)
        committed = uow.commit()
    projector.deliver(ports, committed)
    return outcome


def _what_is_bought(
    uow: UnitOfWork,
    config: AppConfig,
    standing: ClientStanding,
    *,
    client_id: str,
    request_id: str,
    tier_id: str | None,
    free_trial: bool,
    now: datetime,
) -> Purchase | Refused:
    if free_trial:
        return pairing.free_trial(config, standing, now=now)
    assert tier_id is not None
    tier_active = uow.pairing.tier_active(tier_id)
    credit = uow.credits.reserve(client_id, tier_id=tier_id, request_id=request_id)
    return pairing.paid(credit, tier_active=tier_active)


# -- offering it to every available mitra ------------------------------------------------------------------------------


def blast(ports: Ports, request_id: str) -> int:
    """Offer a searching request to every available mitra not yet offered it (only to the past mitra asked for while
    its preference window is open). Safe to run again: a redelivered message finds the offers already recorded and
    sends nothing twice. Returns how many new offers were made."""
    with ports.uow() as uow:
        request = uow.pairing.searching_request_for_offers(request_id)
        if request is None:
            return 0
        config = uow.settings.load()
        offered = uow.pairing.offer_to_available_mitras(request_id, config)
        if not offered:
            return 0
        uow.outbox.add(*pairing.offers_made(request, offered, config))
        _tell_offered_counts(uow, [request_id])
        committed = uow.commit()
    projector.deliver(ports, committed)
    return len(offered)


def widen(ports: Ports, request_id: str) -> str:
    """The preference window of a request for a past mitra has ended: it is offered to everyone available. Returns
    what happened, for the task log."""
    with ports.uow() as uow:
        window = uow.pairing.search_window(request_id)
        if window is None or not window.status.is_open:
            return "stale"
        if not pairing.preference_over(window):
            raise Unavailable("the preference window is still open")  # fired early: Cloud Tasks retries shortly
        uow.pairing.end_preference(request_id)
        uow.commit()
    return f"offered {blast(ports, request_id)}"


def offer_searching_requests_to(uow: UnitOfWork, mitra_id: str, mitra_uid: str) -> None:
    """A mitra who just came online, or has room again, is offered every request still searching that they can be
    offered, at once (offers withdrawn earlier made again); none when they are not available."""
    config = uow.settings.load()
    requests = uow.pairing.offer_searching_requests_to(mitra_id, config)
    for request in requests:
        uow.outbox.add(*pairing.offers_made(request, [mitra_uid], config))
    _tell_offered_counts(uow, [request.request_id for request in requests])


def offer_room(uow: UnitOfWork, mitra_id: str, mitra_uid: str) -> None:
    """A mitra's room changed (a session of theirs closed, or an admin set their capacity), inside the caller's
    change, the mitra's row locked: at capacity, their open offers are withdrawn; with room, they are offered what
    is searching."""
    withdrawn = uow.pairing.withdraw_offers_if_full(mitra_id, uow.settings.load())
    uow.outbox.add(*pairing.offers_withdrawn(withdrawn))
    offer_searching_requests_to(uow, mitra_id, mitra_uid)


def offer_freed_slot(ports: Ports, mitra_id: str) -> int:
    """A session of this mitra closed (`shared.domain.pairing.slot_freed`): they are offered the searching requests
    they can take. Safe to run again: offers already open are not made twice. Returns how many events it added."""
    with ports.uow() as uow:
        mitra_uid = uow.pairing.lock_mitra_for_offers(mitra_id)
        if mitra_uid is None:
            return 0
        offer_room(uow, mitra_id, mitra_uid)
        committed = uow.commit()
    projector.deliver(ports, committed)
    return len(committed)


def _tell_offered_counts(uow: UnitOfWork, request_ids: list[str]) -> None:
    if request_ids:
        counts = uow.pairing.offered_counts(request_ids)
        uow.outbox.add(*(pairing.offered_count_document(r, counts.get(r, 0)) for r in request_ids))


# -- a mitra answers ---------------------------------------------------------------------------------------------------


def accept(ports: Ports, mitra_id: str, request_id: str, *, keyed: KeyedCall | None = None) -> Match:
    """First come, first served, decided by PostgreSQL (`shared.domain.pairing.first_accept_wins`): one session per
    request, for a request still searching, to a mitra with room. The winner asking again (its reply was lost) gets
    its session again (`won_already`), with or without an Idempotency-Key."""
    if (first := idempotency.peek(ports, keyed, Match)) is not None:
        return first
    with ports.uow(one_statement=True) as uow:
        standing = uow.pairing.offer_standing(request_id, mitra_id)
    if standing is None:
        raise NotFound("no such offer")
    if (won := pairing.won_already(standing)) is not None:
        return won
    refused = pairing.settled(standing)
    if refused is not None and (first := idempotency.peek(ports, keyed, Match)) is not None:
        # A copy of this keyed call won while this one read: its answer committed with the match, so it is there.
        return first
    _refuse(refused)
    session_id = str(uuid.uuid4())
    with ports.uow() as uow:
        if (first := idempotency.first_answer(uow, keyed, Match)) is not None:
            return first
        claim = uow.pairing.claim_offer(request_id, mitra_id)
        if claim is None:
            raise NotFound("no such offer")
        _refuse(pairing.may_take(claim.offer))
        if uow.blocks.blocks_request(request_id, mitra_id):
            refuse(blocks.BLOCKED)
        max_clients = claim.max_clients
        attempt = uow.pairing.start_session_if_first(request_id, mitra_id, session_id, max_clients=max_clients)
        if attempt is None:
            raise NotFound("no such offer")
        started = pairing.first_accept_wins(attempt, max_clients)
        if isinstance(started, Refused):
            # The same mitra's accept, sent twice at once, may have won while this one waited: a statement of its
            # own sees it.
            won = _won_meanwhile(uow, request_id, mitra_id)
            if won is not None:
                return won
        started = _refuse(started)
        if attempt.kind is not RequestKind.FREE_TRIAL:
            credits.consume_held(uow, request_id)
        withdrawn = uow.pairing.withdraw_offers_on_match(request_id, mitra_id)
        now_full = uow.pairing.withdraw_offers_if_full(mitra_id, claim.config)
        uow.outbox.add(
            *pairing.offers_withdrawn([(uid, request_id) for uid in withdrawn] + now_full),
            *pairing.session_started(request_id, session_id, claim=claim, attempt=attempt, started=started),
        )
        match = Match(session_id=session_id, request_id=request_id, ends_at=started.ends_at)
        idempotency.remember(uow, keyed, match)
        committed = uow.commit()
    projector.deliver(ports, committed)
    return match


def _won_meanwhile(uow: UnitOfWork, request_id: str, mitra_id: str) -> Match | None:
    standing = uow.pairing.offer_standing(request_id, mitra_id)
    return pairing.won_already(standing) if standing is not None else None


def decline(ports: Ports, mitra_id: str, request_id: str, *, keyed: KeyedCall | None = None) -> Declined:
    """The offer is hidden for this mitra only; declining it again changes nothing and answers the same."""
    declined = Declined(request_id)
    with ports.uow() as uow:
        if (first := idempotency.first_answer(uow, keyed, Declined)) is not None:
            return first
        mitra_uid = uow.pairing.decline_if_offered(request_id, mitra_id)
        if mitra_uid is not None:
            uow.outbox.add(*pairing.offers_withdrawn([(mitra_uid, request_id)]))
            if uow.pairing.end_preference(request_id, declined_by=mitra_id):
                uow.outbox.add(pairing.blast_requested(request_id))  # the past mitra said no: everyone, now
        elif not uow.pairing.has_offer(request_id, mitra_id):
            raise NotFound("no such offer")
        idempotency.remember(uow, keyed, declined)
        committed = uow.commit()
    projector.deliver(ports, committed)
    return declined


# -- the search ends without a match -----------------------------------------------------------------------------------


def cancel(ports: Ports, client_id: str, request_id: str, *, keyed: KeyedCall | None = None) -> RequestEnded:
    """The client's word ends the search. Answers the request's final status, so cancelling again (the reply was
    lost) answers `cancelled` again."""
    with ports.uow() as uow:
        if (first := idempotency.first_answer(uow, keyed, RequestEnded)) is not None:
            return first
        status = uow.pairing.status_for_client(request_id, client_id)
        if status is None:
            raise NotFound("no such request")
        if status.can_become(RequestStatus.CANCELLED) and end_search(uow, request_id, RequestStatus.CANCELLED):
            status = RequestStatus.CANCELLED
        else:  # it had ended, or it ended while this waited for the row
            status = _ended_before(uow.pairing.status_for_client(request_id, client_id) or status)
        ended = RequestEnded(request_id, status)
        idempotency.remember(uow, keyed, ended)
        committed = uow.commit()
    projector.deliver(ports, committed)
    return ended


def _ended_before(status: RequestStatus) -> RequestStatus:
    if status is RequestStatus.MATCHED:
        raise Conflict("a mitra has already accepted this request", code="request_matched")
    return status


def expire_search(ports: Ports, request_id: str) -> str:
    """The search window has passed with no accept: `no_mitra`. Returns what happened, for the task log."""
    with ports.uow() as uow:
        window = uow.pairing.search_window(request_id)
        if window is None or not window.status.can_become(RequestStatus.NO_MITRA):
            return "stale"
        if not pairing.search_expired(window):
            raise Unavailable("the search window is still open")  # fired early: Cloud Tasks retries shortly
        if not end_search(uow, request_id, RequestStatus.NO_MITRA):
            return "stale"  # a duplicate delivery, or an accept, ended it while this one waited for the row
        committed = uow.commit()
    projector.deliver(ports, committed)
    return RequestStatus.NO_MITRA


def end_search(uow: UnitOfWork, request_id: str, status: RequestStatus) -> bool:
    """End a search that is still on (cancelled, or nobody accepted), inside the caller's change: its credit
    released, its offers withdrawn, the client told. False if it had already ended."""
    ended = uow.pairing.end_search_if_searching(request_id, status)
    if ended is None:
        return False
    uow.credits.release(request_id)  # no session came of it: a paid credit stays with the client
    withdrawn = uow.pairing.withdraw_offers(request_id)
    uow.outbox.add(*pairing.search_ended(request_id, ended, status, withdrawn))
    return True


# -- refusals ----------------------------------------------------------------------------------------------------------


Decided = TypeVar("Decided")


def _refuse(decided: Decided | Refused, tier_id: str | None = None) -> Decided:
    """What a rule decided, unless it refused: then the caller's error."""
    if isinstance(decided, Refused):
        raise _error(decided, tier_id)
    return decided


def _error(refused: Refused, tier_id: str | None) -> AppError:
    reason = refused.reason
    if reason is Refusal.REQUEST_OPEN:
        return Conflict(
            "you already have a request searching", code=reason.value, details={"request_id": refused.open_id}
        )
    if reason is Refusal.SESSION_OPEN:
        return Conflict("you are already in a session", code=reason.value, details={"session_id": refused.open_id})
    if reason is Refusal.RATE_LIMITED:
        return RateLimited("too many requests for now; try again later", retry_after_s=refused.retry_after_s or 1)
    if reason is Refusal.PAYMENT_REQUIRED:
        return Conflict(
            "pay for this tier first", code=reason.value, details={"checkout": "billing_checkout", "tier_id": tier_id}
        )
    if reason is Refusal.UNKNOWN_TIER:
        return InvalidRequest("no such pricing tier", fields=[{"field": "tier_id", "problem": "unknown or inactive"}])
    return Conflict(_REFUSED[reason], code=reason.value)


_REFUSED = {
    Refusal.FREE_TRIAL_UNAVAILABLE: "the free trial is not available to you",
    Refusal.OFFER_DECLINED: "you declined this request",
    Refusal.ALREADY_TAKEN: "another mitra accepted first",
    Refusal.REQUEST_CLOSED: "this request is no longer searching",
    Refusal.CAPACITY_REACHED: "you are at your maximum of concurrent clients",
    Refusal.NOT_A_PAST_MITRA: "you can only ask again for a mitra you had a session with",
}
