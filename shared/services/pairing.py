"""Pairing: a client's request is offered to every available mitra at once; the first to accept gets the session.

`accept` is the hot path: an early read that refuses a mitra who has already lost, then one change whose guarded
statement (`start_session_if_first`) decides who wins, and whose events (the offers withdrawn, the request matched,
the session's document, the client's push, the session's timers) are inserted together when it commits.
"""

from __future__ import annotations

import uuid
from typing import Protocol, TypeVar

from shared.domain import pairing
from shared.domain.config import AppConfig
from shared.domain.pairing import (
    AskingClient,
    Claim,
    ClientStanding,
    Match,
    NewRequest,
    OfferedRequest,
    OfferStanding,
    Purchase,
    Refusal,
    Refused,
    RequestKind,
    RequestOutcome,
    RequestStatus,
    SearchEnded,
    SearchWindow,
    StartAttempt,
)
from shared.errors import AppError, Conflict, InvalidRequest, NotFound, RateLimited, Unavailable
from shared.services import credits, projector
from shared.services.ports import Ports
from shared.services.unit_of_work import UnitOfWork

__all__ = ["Match", "PairingRepository", "RequestOutcome"]


class PairingRepository(Protocol):
    """What pairing needs from storage (shared/adapters/postgres/pairing.py)."""

    def lock_client(self, client_id: str) -> AskingClient | None: ...

    def request_by_key(self, client_id: str, idempotency_key: str) -> RequestOutcome | None: ...

    def standing(self, client_id: str) -> ClientStanding: ...

    def tier_active(self, tier_id: str) -> bool: ...

    def anyone_available(self, config: AppConfig) -> bool: ...

    def add_request(self, request: NewRequest) -> None: ...

    def searching_request_for_offers(self, request_id: str) -> OfferedRequest | None: ...

    def offer_to_available_mitras(self, request_id: str, config: AppConfig) -> list[str]: ...

    def offer_searching_requests_to(self, mitra_id: str) -> list[OfferedRequest]: ...

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
    ports: Ports, client_id: str, *, tier_id: str | None, free_trial: bool, idempotency_key: str | None
) -> RequestOutcome:
    """Searching, offered to every available mitra by the blast; or `no_mitra` at once when nobody is available.
    A retry with the same idempotency key gets the first request."""
    request_id = str(uuid.uuid4())
    with ports.uow() as uow:
        client = uow.pairing.lock_client(client_id)
        if client is None:
            raise NotFound("no such client")
        if idempotency_key and (replay := uow.pairing.request_by_key(client_id, idempotency_key)):
            return replay
        standing = uow.pairing.standing(client_id)
        config = uow.settings.load()
        _refuse(pairing.may_ask(standing, now=client.now, per_hour=config.pairing_requests_per_hour), tier_id)
        bought = _what_is_bought(
            uow, config, standing, client_id=client_id, request_id=request_id, tier_id=tier_id, free_trial=free_trial
        )
        purchase = _refuse(bought, tier_id)
        request = NewRequest(
            request_id=request_id,
            client_id=client_id,
            status=pairing.opening_status(uow.pairing.anyone_available(config)),
            purchase=purchase,
            tier_id=tier_id,
            idempotency_key=idempotency_key,
            search_deadline=pairing.search_deadline(client.now, config.pairing_search_window_s),
        )
        uow.pairing.add_request(request)
        if not request.status.is_open:
            uow.credits.release(request_id)  # ended before it began: a paid credit stays with the client
        uow.outbox.add(*pairing.request_opened(request, client_uid=client.firebase_uid, asked_at=client.now))
        committed = uow.commit()
    projector.deliver(ports, committed)
    return RequestOutcome(request_id, request.status, request.search_deadline)


def _what_is_bought(
    uow: UnitOfWork,
    config: AppConfig,
    standing: ClientStanding,
    *,
    client_id: str,
    request_id: str,
    tier_id: str | None,
    free_trial: bool,
) -> Purchase | Refused:
    if free_trial:
        return pairing.free_trial(config, used=standing.free_trial_used)
    assert tier_id is not None
    tier_active = uow.pairing.tier_active(tier_id)
    credit = uow.credits.reserve(client_id, tier_id=tier_id, request_id=request_id)
    return pairing.paid(credit, tier_active=tier_active)


# -- offering it to every available mitra ------------------------------------------------------------------------------


def blast(ports: Ports, request_id: str) -> int:
    """Offer a searching request to every available mitra not yet offered it. Safe to run again: a redelivered
    message finds the offers already recorded and sends nothing twice. Returns how many new offers were made."""
    with ports.uow() as uow:
        request = uow.pairing.searching_request_for_offers(request_id)
        if request is None:
            return 0
        config = uow.settings.load()
        offered = uow.pairing.offer_to_available_mitras(request_id, config)
        if not offered:
            return 0
        uow.outbox.add(*pairing.offers_made(request, offered, config))
        committed = uow.commit()
    projector.deliver(ports, committed)
    return len(offered)


def offer_searching_requests_to(uow: UnitOfWork, mitra_id: str, mitra_uid: str) -> None:
    """A mitra who just came online is offered every request still searching, at once."""
    requests = uow.pairing.offer_searching_requests_to(mitra_id)
    if requests:
        config = uow.settings.load()
        for request in requests:
            uow.outbox.add(*pairing.offers_made(request, [mitra_uid], config))


# -- a mitra answers ---------------------------------------------------------------------------------------------------


def accept(ports: Ports, mitra_id: str, request_id: str) -> Match:
    """First come, first served, decided by PostgreSQL (`shared.domain.pairing.first_accept_wins`): one session per
    request, for a request still searching, to a mitra with room."""
    with ports.uow(one_statement=True) as uow:
        standing = uow.pairing.offer_standing(request_id, mitra_id)
    if standing is None:
        raise NotFound("no such offer")
    _refuse(pairing.settled(standing))
    session_id = str(uuid.uuid4())
    with ports.uow() as uow:
        claim = uow.pairing.claim_offer(request_id, mitra_id)
        if claim is None:
            raise NotFound("no such offer")
        _refuse(pairing.may_take(claim.offer))
        max_clients = claim.config.max_concurrent_clients
        attempt = uow.pairing.start_session_if_first(request_id, mitra_id, session_id, max_clients=max_clients)
        if attempt is None:
            raise NotFound("no such offer")
        started = _refuse(pairing.first_accept_wins(attempt, max_clients))
        if attempt.kind is not RequestKind.FREE_TRIAL:
            credits.consume_held(uow, request_id)
        withdrawn = uow.pairing.withdraw_offers_on_match(request_id, mitra_id)
        uow.outbox.add(
            *pairing.offers_withdrawn([(uid, request_id) for uid in withdrawn]),
            *pairing.session_started(request_id, session_id, claim=claim, attempt=attempt, started=started),
        )
        committed = uow.commit()
    projector.deliver(ports, committed)
    return Match(session_id=session_id, request_id=request_id, ends_at=started.ends_at)


def decline(ports: Ports, mitra_id: str, request_id: str) -> None:
    """The offer is hidden for this mitra only; declining it again changes nothing."""
    with ports.uow() as uow:
        mitra_uid = uow.pairing.decline_if_offered(request_id, mitra_id)
        if mitra_uid is None:
            if not uow.pairing.has_offer(request_id, mitra_id):
                raise NotFound("no such offer")
            return
        uow.outbox.add(*pairing.offers_withdrawn([(mitra_uid, request_id)]))
        committed = uow.commit()
    projector.deliver(ports, committed)


# -- the search ends without a match -----------------------------------------------------------------------------------


def cancel(ports: Ports, client_id: str, request_id: str) -> RequestStatus:
    """The client's word ends the search. Returns the request's final status."""
    with ports.uow() as uow:
        status = uow.pairing.status_for_client(request_id, client_id)
        if status is None:
            raise NotFound("no such request")
        if not status.can_become(RequestStatus.CANCELLED):
            return _ended_before(status)
        if not end_search(uow, request_id, RequestStatus.CANCELLED):  # it ended while this waited for the row
            return _ended_before(uow.pairing.status_for_client(request_id, client_id) or status)
        committed = uow.commit()
    projector.deliver(ports, committed)
    return RequestStatus.CANCELLED


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
        return RateLimited("too many requests in the last hour", retry_after_s=refused.retry_after_s or 1)
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
}
