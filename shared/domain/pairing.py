"""Pairing ("Mulai Curhat"): who may ask, what a request buys, who is offered it, who wins it, how a search ends,
and the events that tell the apps.

The rules PostgreSQL must enforce atomically are enforced there by the pairing repository
(shared/adapters/postgres/pairing.py), each in a statement named for it; each such rule below names its statement,
and each statement names its rule.
"""

from __future__ import annotations

import hashlib
import hmac
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING

from shared.domain import accounts
from shared.domain.config import AppConfig
from shared.domain.documents import (
    BLAST_TOPIC,
    OfferDocument,
    PairingRequestDocument,
    SessionDocument,
    offer_path,
    request_path,
    session_path,
)
from shared.domain.events import DocumentDelete, DocumentWrite, Event, TaskRequest, TopicMessage, ts
from shared.domain.notify import push
from shared.domain.presence import heartbeat_fresh
from shared.domain.session import session_timers

if TYPE_CHECKING:
    from shared.domain.billing import Credit  # a type only: pairing's instances need none of billing

TIMEOUT_QUEUE = "pairing-timeouts"
TIMEOUT_HANDLER = "task_pairing_timeout"
# The end of a past mitra's preference window: the request is offered to everyone available.
WIDEN_HANDLER = "task_pairing_widen"
# A mitra's session has closed: the searching requests they can take are offered to them (functions/pairing.py
# `on_mitra_slot_freed`).
SLOT_FREED_TOPIC = "mitra-slot-freed"
# The estimated wait (`estimated_wait`): the median wait of at most WAIT_HISTORY_LIMIT requests matched within
# WAIT_HISTORY_DAYS, asked within WAIT_HOUR_SPAN hours (Jakarta clock) of now; null below WAIT_HISTORY_MIN of them.
WAIT_HISTORY_DAYS = 14
WAIT_HISTORY_LIMIT = 50
WAIT_HISTORY_MIN = 5
WAIT_HOUR_SPAN = 1
# A timeout task that fires a little early (Cloud Tasks' own jitter) still ends the search.
DEADLINE_TOLERANCE = timedelta(seconds=1)
# The window `pairing_requests_per_hour` counts requests in.
RATE_WINDOW = timedelta(hours=1)
# The window `free_trial_cancels_per_day` counts the free-trial searches a client cancelled in.
FREE_TRIAL_CANCEL_WINDOW = timedelta(days=1)


class RequestStatus(StrEnum):
    SEARCHING = "searching"
    MATCHED = "matched"
    NO_MITRA = "no_mitra"
    CANCELLED = "cancelled"

    @property
    def is_open(self) -> bool:
        return self is RequestStatus.SEARCHING

    def can_become(self, target: RequestStatus) -> bool:
        """A request ends exactly once: searching → matched | no_mitra | cancelled, nothing after. Enforced by the
        guarded UPDATEs of `PairingRepository.start_session_if_first` and `PairingRepository.end_search_if_searching`
        (`WHERE status = 'searching'`)."""
        return self is RequestStatus.SEARCHING and target is not RequestStatus.SEARCHING


class OfferStatus(StrEnum):
    OFFERED = "offered"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    WITHDRAWN = "withdrawn"


class RequestKind(StrEnum):
    PAID = "paid"
    FREE_TRIAL = "free_trial"


class Refusal(StrEnum):
    """Why a client may not open a request, or a mitra may not take one: the error code the caller gets."""

    REQUEST_OPEN = "request_open"
    SESSION_OPEN = "session_open"
    RATE_LIMITED = "rate_limited"
    FREE_TRIAL_UNAVAILABLE = "free_trial_unavailable"
    PAYMENT_REQUIRED = "payment_required"
    UNKNOWN_TIER = "unknown_tier"
    OFFER_DECLINED = "offer_declined"
    ALREADY_TAKEN = "already_taken"
    REQUEST_CLOSED = "request_closed"
    CAPACITY_REACHED = "capacity_reached"
    NOT_A_PAST_MITRA = "not_a_past_mitra"


@dataclass(frozen=True)
class Refused:
    reason: Refusal
    retry_after_s: int | None = None
    # The request or session that is already open.
    open_id: str | None = None


# -- the client asks -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AskingClient:
    """A client about to ask, read under its row lock (which serialises one client's requests), and the moment of
    asking (the transaction's)."""

    firebase_uid: str
    now: datetime


@dataclass(frozen=True)
class ClientStanding:
    """What decides whether a client may open a request, read once the client's row is locked."""

    open_request_id: str | None
    open_session_id: str | None
    requested_in_window: int
    oldest_in_window: datetime | None
    # The client's account, or its verified phone number or email (`trial_identities`), has had its free trial.
    free_trial_used: bool
    # Free-trial searches the client cancelled within FREE_TRIAL_CANCEL_WINDOW, and when the earliest ended.
    free_trial_cancels: int = 0
    earliest_free_trial_cancel: datetime | None = None


def may_ask(standing: ClientStanding, *, now: datetime, per_hour: int) -> Refused | None:
    """One open request per client (the unique index `pairing_requests_one_open` holds it in PostgreSQL too), none
    while the client is in a session, and at most `per_hour` requests in RATE_WINDOW (setting
    `pairing_requests_per_hour`); None when the client may ask."""
    if standing.open_request_id is not None:
        return Refused(Refusal.REQUEST_OPEN, open_id=standing.open_request_id)
    if standing.open_session_id is not None:
        return Refused(Refusal.SESSION_OPEN, open_id=standing.open_session_id)
    if standing.requested_in_window >= per_hour:
        wait = (standing.oldest_in_window or now) + RATE_WINDOW - now
        return Refused(Refusal.RATE_LIMITED, retry_after_s=max(1, math.ceil(wait.total_seconds())))
    return None


@dataclass(frozen=True)
class Purchase:
    """What a request buys: its kind, its length and, when paid, the transaction whose credit it holds."""

    kind: RequestKind
    duration_s: int
    transaction_id: str | None = None


def free_trial(config: AppConfig, standing: ClientStanding, *, now: datetime) -> Purchase | Refused:
    """The free trial is the client's once, ever, while the control center offers it: once per account and once per
    verified phone number or email (`trial_identities`), so a new account on the same phone gets none. `used` is
    read when the client asks; what makes it once-only is the PRIMARY KEY of `free_trials` (client_id,
    `free_trials_pkey`), which `PairingRepository.start_session_if_first` inserts into when the trial's session
    starts, with the account's identities into `free_trial_identities`.

    Every free-trial search pushes every online mitra, so a client who keeps asking and cancelling is limited: at
    most `free_trial_cancels_per_day` cancelled free-trial searches in FREE_TRIAL_CANCEL_WINDOW, then 429 until the
    earliest leaves it (docs/contract.md, "Abuse limits")."""
    if not config.free_trial_enabled or standing.free_trial_used:
        return Refused(Refusal.FREE_TRIAL_UNAVAILABLE)
    if standing.free_trial_cancels >= config.free_trial_cancels_per_day:
        wait = (standing.earliest_free_trial_cancel or now) + FREE_TRIAL_CANCEL_WINDOW - now
        return Refused(Refusal.RATE_LIMITED, retry_after_s=max(1, math.ceil(wait.total_seconds())))
    return Purchase(RequestKind.FREE_TRIAL, config.free_trial_minutes * 60)


def trial_identities(phone: str | None, email: str | None, *, key: str) -> list[str]:
    """What binds a free trial beyond the account: HMAC-SHA-256, under a secret key, of the verified phone number and
    of the verified email (lowercased), never the values themselves. Keyed, so that the hashes kept after an account
    is deleted are no key to a person without the secret (an unkeyed hash of a phone number is found by trying every
    number). The same in SQL: the pairing repository's _TRIAL_IDENTITIES."""
    identities = [f"phone:{phone}" if phone else None, f"email:{email.lower()}" if email else None]
    return [hmac.new(key.encode(), i.encode(), hashlib.sha256).hexdigest() for i in identities if i]


def paid(credit: Credit | None, *, tier_active: bool) -> Purchase | Refused:
    """A paid tier needs one of the client's credits of that tier reserved for the request
    (`CreditsRepository.reserve`), consumed when its session starts and released when the search ends without one.
    A credit bought before its tier was retired is still the client's to use, for the length it bought."""
    if credit is not None:
        return Purchase(RequestKind.PAID, credit.duration_s, credit.transaction_id)
    return Refused(Refusal.PAYMENT_REQUIRED if tier_active else Refusal.UNKNOWN_TIER)


def search_deadline(asked_at: datetime, window_s: int) -> datetime:
    """A search lasts `pairing_search_window_s`; then it ends `no_mitra` (`search_timeout`) unless a mitra accepted."""
    return asked_at + timedelta(seconds=window_s)


def opening_status(anyone_available: bool, *, wait_when_nobody_online: bool) -> RequestStatus:
    """With nobody available the request still searches its window when the setting `wait_when_nobody_online` says
    so (someone is likely to come online, and is offered it then); otherwise it ends at once, `no_mitra`."""
    return RequestStatus.SEARCHING if anyone_available or wait_when_nobody_online else RequestStatus.NO_MITRA


@dataclass(frozen=True)
class PastMitra:
    """What decides a request for a mitra the client had before (`pairing_request.mitra_id`)."""

    # The client has had a session with this mitra.
    had_session: bool
    # Neither blocked the other (`PairingRepository.past_mitra`: NOT_BLOCKED, issue 25).
    allowed: bool
    # Available right now (`is_available`).
    available: bool


def preference(
    past: PastMitra, *, asked_at: datetime, deadline: datetime, config: AppConfig
) -> datetime | Refused | None:
    """Until when a request for a past mitra is offered to that mitra alone (then to everyone available, by the
    timer `preference_timer`): `preferred_mitra_first_s` after asking, never past the search's deadline. A mitra the
    client never had a session with is refused (409 `not_a_past_mitra`). A mitra who is not available right now
    (offline, at capacity) or who does not take this client (`allowed`) is no reason to wait: the request goes to
    everyone at once (None), saying nothing of why."""
    if not past.had_session:
        return Refused(Refusal.NOT_A_PAST_MITRA)
    if not (past.allowed and past.available) or config.preferred_mitra_first_s == 0:
        return None
    return min(asked_at + timedelta(seconds=config.preferred_mitra_first_s), deadline)


def preference_timer(request_id: str, until: datetime) -> TaskRequest:
    """At the end of the preference window the request is offered to everyone available (`task_pairing_widen`)."""
    return TaskRequest(TIMEOUT_QUEUE, f"pairing-widen-{request_id}", WIDEN_HANDLER, {"request_id": request_id}, until)


def preference_over(window: SearchWindow) -> bool:
    """The preference window has ended (within DEADLINE_TOLERANCE: a timer may fire a little early)."""
    return window.preferred_until is None or window.now >= window.preferred_until - DEADLINE_TOLERANCE


@dataclass(frozen=True)
class RecentWaits:
    """The waits of recent matched requests at a similar hour (`PairingRepository.recent_waits`)."""

    matched: int
    median_s: float | None


def estimated_wait(recent: RecentWaits) -> int | None:
    """What the client is told to expect: the median wait (asked → matched) of recent requests at a similar hour
    (WAIT_HISTORY_*), rounded up to the second; None with fewer than WAIT_HISTORY_MIN of them."""
    if recent.matched < WAIT_HISTORY_MIN or recent.median_s is None:
        return None
    return max(0, math.ceil(recent.median_s))


@dataclass(frozen=True)
class NewRequest:
    request_id: str
    client_id: str
    status: RequestStatus
    purchase: Purchase
    tier_id: str | None
    search_deadline: datetime
    preferred_mitra_id: str | None = None
    preferred_until: datetime | None = None


@dataclass(frozen=True)
class RequestOutcome:
    request_id: str
    status: RequestStatus
    search_deadline: datetime
    estimated_wait_s: int | None = None
    preferred_mitra_until: datetime | None = None


def request_document(
    request_id: str, *, client_uid: str, status: RequestStatus, at: datetime, **extra: object
) -> DocumentWrite:
    """The client's app follows its request here: searching, then matched (with the session), no_mitra or cancelled."""
    return DocumentWrite.at(
        request_path(request_id),
        PairingRequestDocument.model_validate(
            {"request_id": request_id, "client_uid": client_uid, "status": status, "updated_at": ts(at), **extra}
        ),
    )


def request_opened(
    request: NewRequest, *, client_uid: str, asked_at: datetime, estimated_wait_s: int | None = None
) -> list[Event]:
    """The request's document (with the estimated wait, and nobody offered yet) and, while it searches, the blast
    that offers it, the timer that ends it and, for a past mitra preferred, the timer that widens it to everyone."""
    preferred = {"preferred_mitra_until": ts(request.preferred_until)} if request.preferred_until else {}
    document = request_document(
        request.request_id,
        client_uid=client_uid,
        status=request.status,
        at=asked_at,
        search_deadline=ts(request.search_deadline),
        kind=request.purchase.kind,
        duration_s=request.purchase.duration_s,
        offered_count=0,
        estimated_wait_s=estimated_wait_s,
        **preferred,
    )
    if not request.status.is_open:
        return [document]
    events: list[Event] = [
        document,
        blast_requested(request.request_id),
        search_timeout(request.request_id, request.search_deadline),
    ]
    if request.preferred_until is not None:
        events.append(preference_timer(request.request_id, request.preferred_until))
    return events


def offered_count_document(request_id: str, offered_count: int) -> DocumentWrite:
    """The client sees how many mitras their request has been offered to, as re-offers happen (a merge of that
    field alone: it never undoes the request's status)."""
    return DocumentWrite.at(request_path(request_id), PairingRequestDocument(offered_count=offered_count))


def blast_requested(request_id: str) -> TopicMessage:
    """Offer the request to every available mitra (functions/pairing.py `on_pairing_requested`)."""
    return TopicMessage(BLAST_TOPIC, {"request_id": request_id})


def pairing_timeout_task_id(request_id: str) -> str:
    return f"pairing-timeout-{request_id}"


def search_timeout(request_id: str, deadline: datetime) -> TaskRequest:
    """The search ends `no_mitra` at its deadline unless a mitra accepted first."""
    return TaskRequest(
        TIMEOUT_QUEUE, pairing_timeout_task_id(request_id), TIMEOUT_HANDLER, {"request_id": request_id}, deadline
    )


# -- offering it -------------------------------------------------------------------------------------------------------


def capacity_of(own_max: int | None, config: AppConfig) -> int:
    """A mitra's maximum of concurrent clients: their own (`mitras.max_concurrent_clients`, set by an admin), or the
    global setting `max_concurrent_clients` when they have none. The SQL's COALESCE(m.max_concurrent_clients,
    :max_clients) in the repository's _AT_CAPACITY (shared by AVAILABLE_MITRAS, the blast's withdrawal of offers to
    mitras filled meanwhile, and `PairingRepository.withdraw_offers_if_full`) is this rule; an accept reads the
    mitra's own with its claim (`Claim.max_clients`)."""
    return own_max if own_max is not None else config.max_concurrent_clients


def has_capacity(open_sessions: int, max_concurrent_clients: int) -> bool:
    """A mitra holds at most `max_concurrent_clients` open (active or closing) sessions at once: counted under the
    mitra's row lock by `PairingRepository.start_session_if_first` for an accept, and by AVAILABLE_MITRAS for an
    offer (`is_available`)."""
    return open_sessions < max_concurrent_clients


@dataclass(frozen=True)
class Availability:
    """What decides whether a mitra is offered a request."""

    active: bool
    online: bool
    has_uid: bool
    # Heard from until then (shared.domain.presence.heartbeat_fresh).
    heard_until: datetime | None
    open_sessions: int
    # The mitra's own maximum of concurrent clients (None: the global setting).
    max_clients: int | None = None


def is_available(mitra: Availability, *, now: datetime, config: AppConfig) -> bool:
    """Who is offered a request right now: an active mitra with a Firebase uid, online, heard from within its lease
    (shared.domain.presence.heartbeat_fresh), below their capacity (`has_capacity`, `capacity_of`). Applied to every
    mitra at once by the repository's AVAILABLE_MITRAS (`PairingRepository.offer_to_available_mitras`,
    `anyone_available`; the control center counts and reroutes with it too)."""
    return (
        mitra.active
        and mitra.online
        and mitra.has_uid
        and heartbeat_fresh(mitra.heard_until, now)
        and has_capacity(mitra.open_sessions, capacity_of(mitra.max_clients, config))
    )


@dataclass(frozen=True)
class ClientShown:
    """The client as a mitra may see them (shared.domain.accounts.name_for_mitra decides)."""

    display_name: str
    anonymous: bool
    alias_number: int

    def name(self, config: AppConfig) -> str:
        return accounts.name_for_mitra(
            display_name=self.display_name,
            anonymous=self.anonymous,
            alias_number=self.alias_number,
            mode=config.anonymity_mode,
        )


@dataclass(frozen=True)
class OfferedRequest:
    """A searching request, as its offers show it."""

    request_id: str
    kind: RequestKind
    duration_s: int
    search_deadline: datetime
    client: ClientShown
    # An offer withdrawn earlier (the mitra went offline, or reached capacity) made again, at this moment.
    again_at: datetime | None = None


def offers_made(request: OfferedRequest, mitra_uids: Sequence[str], config: AppConfig) -> list[Event]:
    """The offer document of every mitra just offered the request, as one write (a blast to a thousand mitras is
    one event), and one push to all of them. An offer made again is pushed again (its own dedup key)."""
    if not mitra_uids:
        return []
    name = request.client.name(config)
    minutes = request.duration_s // 60
    document = DocumentWrite.of(
        tuple(offer_path(uid, request.request_id) for uid in mitra_uids),
        OfferDocument(
            request_id=request.request_id,
            client_name=name,
            kind=request.kind,
            duration_s=request.duration_s,
            minutes=minutes,
            expires_at=ts(request.search_deadline),
            status=OfferStatus.OFFERED,
        ),
    )
    again = f":{request.again_at.isoformat()}" if request.again_at is not None else ""
    offered = push(
        dedup_key=f"offer:{request.request_id}{again}",
        recipients=mitra_uids,
        data={"type": "pairing_offer", "request_id": request.request_id},
        text_key="push.pairing_offer",
        params={"name": name, "minutes": minutes},
    )
    return [document, offered]


def offers_withdrawn(offers: Sequence[tuple[str, str]]) -> list[Event]:
    """(mitra uid, request id) offers no longer open: their documents go, in one event."""
    if not offers:
        return []
    return [DocumentDelete(tuple(offer_path(uid, request_id) for uid, request_id in offers))]


# -- a mitra answers ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Match:
    session_id: str
    request_id: str
    ends_at: datetime


@dataclass(frozen=True)
class OfferStanding:
    """Where a mitra's offer stands, read before the accept's transaction; with the session this mitra won, when
    its offer was accepted."""

    offer: OfferStatus
    request: RequestStatus
    won: Match | None = None


def won_already(standing: OfferStanding) -> Match | None:
    """A mitra who accepted and won, asking again (the reply was lost), is answered as the first time: the session
    it won, ending when it first ended (`ends_at` as the accept answered it, before any extension)."""
    return standing.won if standing.offer is OfferStatus.ACCEPTED else None


def may_take(offer: OfferStatus) -> Refused | None:
    """A mitra who declined an offer may not take it after all (the offer is gone from its app)."""
    return Refused(Refusal.OFFER_DECLINED) if offer is OfferStatus.DECLINED else None


def settled(standing: OfferStanding) -> Refused | None:
    """An accept that cannot win, known before deciding: the mitra declined, or the request no longer searches.
    Only ever refuses: who wins is decided by `start_session_if_first`."""
    refused = may_take(standing.offer)
    if refused is None and not standing.request.can_become(RequestStatus.MATCHED):
        refused = lost_to(standing.request)
    return refused


def lost_to(status: RequestStatus) -> Refused:
    """A request another mitra took, or one whose search ended."""
    return Refused(Refusal.ALREADY_TAKEN if status is RequestStatus.MATCHED else Refusal.REQUEST_CLOSED)


@dataclass(frozen=True)
class Claim:
    """The accepting mitra, its row locked (its accepts go one at a time), and the settings, read with it."""

    mitra_uid: str
    display_name: str
    offer: OfferStatus
    config: AppConfig
    # The mitra's own maximum of concurrent clients (None: the global setting).
    own_max_clients: int | None = None

    @property
    def max_clients(self) -> int:
        return capacity_of(self.own_max_clients, self.config)


@dataclass(frozen=True)
class StartAttempt:
    """What `start_session_if_first` found and did: the request as it stood, and the session it started, if any."""

    status: RequestStatus
    kind: RequestKind
    client_uid: str
    client: ClientShown
    open_sessions: int
    started_at: datetime | None
    ends_at: datetime | None
    version: int | None
    matched_at: datetime | None


@dataclass(frozen=True)
class Started:
    """A session started by an accept."""

    started_at: datetime
    ends_at: datetime
    version: int
    matched_at: datetime


def first_accept_wins(attempt: StartAttempt, max_concurrent_clients: int) -> Started | Refused:
    """A session starts for the first mitra to accept a request still searching (`RequestStatus.can_become`), if
    that mitra has room (`has_capacity`); one session per request. Decided atomically by
    `PairingRepository.start_session_if_first`: this reads its verdict, and says why a mitra lost."""
    if attempt.matched_at is not None:
        assert attempt.started_at is not None and attempt.ends_at is not None and attempt.version is not None
        return Started(attempt.started_at, attempt.ends_at, attempt.version, attempt.matched_at)
    if attempt.started_at is not None:  # a cancel or the timeout ended the search while this accept waited
        return Refused(Refusal.REQUEST_CLOSED)
    if not has_capacity(attempt.open_sessions, max_concurrent_clients):
        return Refused(Refusal.CAPACITY_REACHED)
    if attempt.status.can_become(RequestStatus.MATCHED):  # as first read: another mitra's session committed meanwhile
        return Refused(Refusal.ALREADY_TAKEN)
    return lost_to(attempt.status)


@dataclass(frozen=True)
class Declined:
    """An offer the mitra declined (or had declined before: declining again changes nothing)."""

    request_id: str
    status: str = OfferStatus.DECLINED


@dataclass(frozen=True)
class RequestEnded:
    """How a request the client cancelled stands: cancelled, or how it had ended before."""

    request_id: str
    status: RequestStatus


def session_started(
    request_id: str, session_id: str, *, claim: Claim, attempt: StartAttempt, started: Started
) -> list[Event]:
    """The client's request matched, the session's document for both apps, the client's push, and the session's
    timer (shared.domain.session.session_timers)."""
    client_uid, mitra_uid = attempt.client_uid, claim.mitra_uid
    matched = request_document(
        request_id,
        client_uid=client_uid,
        status=RequestStatus.MATCHED,
        at=started.matched_at,
        session_id=session_id,
        mitra={"display_name": claim.display_name},
    )
    session = DocumentWrite.at(
        session_path(session_id),
        SessionDocument(
            session_id=session_id,
            status="active",
            participant_uids=[client_uid, mitra_uid],
            client_uid=client_uid,
            mitra_uid=mitra_uid,
            client_name=attempt.client.name(claim.config),
            mitra_name=claim.display_name,
            kind=attempt.kind,
            started_at=ts(started.started_at),
            ends_at=ts(started.ends_at),
            version=started.version,
        ),
    )
    told = push(
        dedup_key=f"matched:{request_id}",
        recipients=[client_uid],
        data={"type": "matched", "request_id": request_id, "session_id": session_id},
        text_key="push.matched",
        params={"name": claim.display_name},
    )
    timers = session_timers(
        session_id,
        started.version,
        started_at=started.started_at,
        ends_at=started.ends_at,
        warning=timedelta(seconds=claim.config.session_warning_s),
    )
    return [matched, session, told, *timers]


# -- the search ends without a match -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SearchWindow:
    status: RequestStatus
    search_deadline: datetime
    now: datetime
    preferred_until: datetime | None = None


def search_expired(window: SearchWindow) -> bool:
    """The deadline has come (within DEADLINE_TOLERANCE, since a timer may fire a little early)."""
    return window.now >= window.search_deadline - DEADLINE_TOLERANCE


@dataclass(frozen=True)
class SearchEnded:
    client_uid: str
    ended_at: datetime


def search_ended(
    request_id: str, ended: SearchEnded, status: RequestStatus, withdrawn_uids: Sequence[str]
) -> list[Event]:
    """The offers' documents gone, the client's request document, and for `no_mitra` a push to try again later."""
    events = [
        *offers_withdrawn([(uid, request_id) for uid in withdrawn_uids]),
        request_document(request_id, client_uid=ended.client_uid, status=status, at=ended.ended_at),
    ]
    if status is RequestStatus.NO_MITRA:
        events.append(
            push(
                dedup_key=f"no_mitra:{request_id}",
                recipients=[ended.client_uid],
                data={"type": "no_mitra", "request_id": request_id},
                text_key="push.no_mitra",
            )
        )
    return events


# -- re-offers ---------------------------------------------------------------------------------------------------------


def slot_freed(mitra_id: str) -> TopicMessage:
    """A session of this mitra closed: they may have room again, and are offered the searching requests they can
    take (functions/pairing.py `on_mitra_slot_freed`; shared.services.pairing.offer_freed_slot)."""
    return TopicMessage(SLOT_FREED_TOPIC, {"mitra_id": mitra_id})
