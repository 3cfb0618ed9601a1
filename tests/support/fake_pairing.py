"""Pairing's repository in memory: the promises of shared/adapters/postgres/pairing.py, with its guarded statements'
rules (shared.domain.pairing.is_available, first_accept_wins through has_capacity and RequestStatus.can_become, the
free trial's primary key, one open request per client) applied in Python."""

from __future__ import annotations

import statistics
import uuid
from dataclasses import replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from shared.domain import pairing
from shared.domain.config import AppConfig
from shared.domain.pairing import (
    AskingClient,
    Availability,
    Claim,
    ClientShown,
    ClientStanding,
    Match,
    NewRequest,
    OfferedRequest,
    OfferStanding,
    OfferStatus,
    PastMitra,
    RecentWaits,
    RequestKind,
    RequestStatus,
    SearchEnded,
    SearchWindow,
    StartAttempt,
)

if TYPE_CHECKING:
    from tests.support.fakes import FakeDatabase

Row = dict[str, Any]
OPEN_SESSION = ("active", "closing")

# The key the fakes hash trial identities with (HALO_IDENTITY_HASH_KEY in the real stack).
TRIAL_KEY = "fake-identity-hash-key"


class UniqueViolation(Exception):
    """A row PostgreSQL's unique index or primary key (named in the message) would refuse."""


def add_client(
    db: FakeDatabase,
    *,
    display_name: str = "Sari",
    anonymous: bool = False,
    phone: str | None = None,
    email: str | None = None,
) -> str:
    client_id = str(uuid.uuid4())
    db.table("clients")[client_id] = {
        "id": client_id,
        "firebase_uid": f"uid-client-{client_id[:8]}",
        "display_name": display_name,
        "anonymous": anonymous,
        "alias_number": 1000 + len(db.table("clients")),
        "phone": phone,
        "email": email,
    }
    return client_id


def add_mitra(
    db: FakeDatabase,
    *,
    online: bool = True,
    heard_s_ago: float = 0,
    active: bool = True,
    name: str = "Mitra Anisa",
    max_clients: int | None = None,
) -> str:
    """A mitra; online ones were heard from `heard_s_ago` seconds ago; `max_clients`: their own capacity."""
    mitra_id = str(uuid.uuid4())
    db.table("mitras")[mitra_id] = {
        "id": mitra_id,
        "firebase_uid": f"uid-mitra-{mitra_id[:8]}",
        "display_name": name,
        "active": active,
        "presence": "online" if online else "offline",
        "last_heartbeat_at": db.now - timedelta(seconds=heard_s_ago) if online else None,
        "heard_until": db.now - timedelta(seconds=heard_s_ago - db.config.heartbeat_grace_s) if online else None,
        "max_concurrent_clients": max_clients,
    }
    return mitra_id


def add_tier(db: FakeDatabase, tier_id: str, *, active: bool = True) -> None:
    db.table("pricing_tiers")[tier_id] = {"id": tier_id, "active": active}


def uid(db: FakeDatabase, table: str, row_id: str) -> str:
    return str(db.table(table)[row_id]["firebase_uid"])


class FakePairingRepository:
    def __init__(self, db: FakeDatabase) -> None:
        self._db = db

    def _requests(self) -> dict[Any, Row]:
        return self._db.table("pairing_requests")

    def _offers(self) -> dict[Any, Row]:
        return self._db.table("pairing_offers")

    def _open_sessions(self, mitra_id: str) -> int:
        return sum(
            1 for s in self._db.table("sessions").values() if s["mitra_id"] == mitra_id and s["status"] in OPEN_SESSION
        )

    def _shown(self, client_id: str) -> ClientShown:
        client = self._db.table("clients")[client_id]
        return ClientShown(client["display_name"], client["anonymous"], client["alias_number"])

    def _offered(self, request: Row) -> OfferedRequest:
        return OfferedRequest(
            request["id"],
            RequestKind(request["kind"]),
            request["duration_s"],
            request["search_deadline"],
            self._shown(request["client_id"]),
        )

    # -- the client asks -------------------------------------------------------------------------------------------

    def lock_client(self, client_id: str) -> AskingClient | None:
        client = self._db.table("clients").get(client_id)
        return AskingClient(client["firebase_uid"], self._db.now) if client else None

    def standing(self, client_id: str) -> ClientStanding:
        mine = [r for r in self._requests().values() if r["client_id"] == client_id]
        recent = [r["created_at"] for r in mine if r["created_at"] > self._db.now - pairing.RATE_WINDOW]
        cancels = [
            r["ended_at"]
            for r in mine
            if r["kind"] == RequestKind.FREE_TRIAL
            and r["status"] == RequestStatus.CANCELLED
            and r["ended_at"] > self._db.now - pairing.FREE_TRIAL_CANCEL_WINDOW
        ]
        sessions = self._db.table("sessions").values()
        return ClientStanding(
            open_request_id=next((r["id"] for r in mine if r["status"] == RequestStatus.SEARCHING), None),
            open_session_id=next(
                (s["id"] for s in sessions if s["client_id"] == client_id and s["status"] in OPEN_SESSION), None
            ),
            requested_in_window=len(recent),
            oldest_in_window=min(recent, default=None),
            free_trial_used=client_id in self._db.table("free_trials")
            or any(identity in self._db.table("free_trial_identities") for identity in self._identities(client_id)),
            free_trial_cancels=len(cancels),
            earliest_free_trial_cancel=min(cancels, default=None),
        )

    def _identities(self, client_id: str) -> list[str]:
        client = self._db.table("clients")[client_id]
        return pairing.trial_identities(client.get("phone"), client.get("email"), key=TRIAL_KEY)

    def tier_active(self, tier_id: str) -> bool:
        tier = self._db.table("pricing_tiers").get(tier_id)
        return bool(tier and tier["active"])

    def _available(self, config: AppConfig) -> list[Row]:
        return [
            m
            for m in self._db.table("mitras").values()
            if pairing.is_available(
                Availability(
                    active=m["active"],
                    online=m["presence"] == "online",
                    has_uid=m["firebase_uid"] is not None,
                    heard_until=m["heard_until"],
                    open_sessions=self._open_sessions(m["id"]),
                    max_clients=m.get("max_concurrent_clients"),
                ),
                now=self._db.now,
                config=config,
            )
        ]

    def anyone_available(self, config: AppConfig) -> bool:
        return bool(self._available(config))

    def past_mitra(self, client_id: str, mitra_id: str, config: AppConfig) -> PastMitra:
        had = any(
            s["client_id"] == client_id and s["mitra_id"] == mitra_id for s in self._db.table("sessions").values()
        )
        available = any(m["id"] == mitra_id for m in self._available(config))
        return PastMitra(had, not self._blocked(client_id, mitra_id), available)

    def recent_waits(self) -> RecentWaits:
        """Every matched request within the history window (the fakes have no clock hours to compare)."""
        since = self._db.now - timedelta(days=pairing.WAIT_HISTORY_DAYS)
        matched = sorted(
            (r for r in self._requests().values() if r["status"] == RequestStatus.MATCHED and r["ended_at"] > since),
            key=lambda r: r["ended_at"],
            reverse=True,
        )[: pairing.WAIT_HISTORY_LIMIT]
        waits = [(r["ended_at"] - r["created_at"]).total_seconds() for r in matched]
        return RecentWaits(len(waits), statistics.median(waits) if waits else None)

    def add_request(self, request: NewRequest) -> None:
        if request.status is RequestStatus.SEARCHING and self.standing(request.client_id).open_request_id:
            raise UniqueViolation("pairing_requests_one_open")
        searching = request.status is RequestStatus.SEARCHING
        self._requests()[request.request_id] = {
            "id": request.request_id,
            "client_id": request.client_id,
            "status": request.status,
            "kind": request.purchase.kind,
            "tier_id": request.tier_id,
            "duration_s": request.purchase.duration_s,
            "transaction_id": request.purchase.transaction_id,
            "search_deadline": request.search_deadline,
            "mitra_id": None,
            "created_at": self._db.now,
            "ended_at": None if searching else self._db.now,
            "preferred_mitra_id": request.preferred_mitra_id,
            "preferred_until": request.preferred_until,
        }

    # -- offering it -----------------------------------------------------------------------------------------------

    def searching_request_for_offers(self, request_id: str) -> OfferedRequest | None:
        request = self._requests().get(request_id)
        return self._offered(request) if request and request["status"] == RequestStatus.SEARCHING else None

    def _preference_allows(self, request: Row, mitra_id: str) -> bool:
        until: datetime | None = request.get("preferred_until")
        return until is None or until <= self._db.now or request.get("preferred_mitra_id") == mitra_id

    def _offer(self, request_id: str, mitra_id: str, *, revive: bool = False) -> datetime | bool:
        """True for a new offer; the moment of a revived one (withdrawn before); False when nothing changed."""
        offer = self._offers().get((request_id, mitra_id))
        if offer is not None:
            if not revive or offer["status"] != OfferStatus.WITHDRAWN:
                return False
            offer.update(status=OfferStatus.OFFERED, offered_at=self._db.now, responded_at=None)
            return self._db.now
        self._offers()[(request_id, mitra_id)] = {
            "request_id": request_id,
            "mitra_id": mitra_id,
            "status": OfferStatus.OFFERED,
            "offered_at": self._db.now,
            "responded_at": None,
        }
        return True

    def offer_to_available_mitras(self, request_id: str, config: AppConfig) -> list[str]:
        request = self._requests()[request_id]
        offered = [
            m["firebase_uid"]
            for m in self._available(config)
            if self._preference_allows(request, m["id"])
            and not self._blocked(request["client_id"], m["id"])
            and self._offer(request_id, m["id"])
        ]
        return sorted(offered)

    def _blocked(self, client_id: str, mitra_id: str) -> bool:
        """NOT_BLOCKED (shared/adapters/postgres/pairing.py)."""
        return any(b["client_id"] == client_id and b["mitra_id"] == mitra_id for b in self._db.table("blocks").values())

    def offer_searching_requests_to(self, mitra_id: str, config: AppConfig) -> list[OfferedRequest]:
        if not any(m["id"] == mitra_id for m in self._available(config)):
            return []
        offered = []
        for r in sorted(self._requests().values(), key=lambda r: r["created_at"]):
            if not (
                r["status"] == RequestStatus.SEARCHING
                and r["search_deadline"] > self._db.now
                and self._preference_allows(r, mitra_id)
                and not self._blocked(r["client_id"], mitra_id)
            ):
                continue
            made = self._offer(r["id"], mitra_id, revive=True)
            if made is not False:
                again = made if isinstance(made, datetime) else None
                offered.append(replace(self._offered(r), again_at=again))
        return offered

    def lock_mitra_for_offers(self, mitra_id: str) -> str | None:
        mitra = self._db.table("mitras").get(mitra_id)
        return mitra["firebase_uid"] if mitra and mitra["active"] else None

    def offered_counts(self, request_ids: list[str]) -> dict[str, int]:
        counts: dict[str, int] = {}
        for request_id, _ in self._offers():
            if request_id in request_ids:
                counts[request_id] = counts.get(request_id, 0) + 1
        return counts

    def withdraw_offers_if_full(self, mitra_id: str, config: AppConfig) -> list[tuple[str, str]]:
        mitra = self._db.table("mitras")[mitra_id]
        room = pairing.capacity_of(mitra.get("max_concurrent_clients"), config)
        if pairing.has_capacity(self._open_sessions(mitra_id), room):
            return []
        return self.withdraw_open_offers_of([mitra_id])

    def end_preference(self, request_id: str, *, declined_by: str | None = None) -> bool:
        request = self._requests().get(request_id)
        if (
            request is None
            or request["status"] != RequestStatus.SEARCHING
            or request.get("preferred_until") is None
            or request["preferred_until"] <= self._db.now
            or (declined_by is not None and request["preferred_mitra_id"] != declined_by)
        ):
            return False
        request["preferred_until"] = self._db.now
        return True

    # -- a mitra answers -------------------------------------------------------------------------------------------

    def offer_standing(self, request_id: str, mitra_id: str) -> OfferStanding | None:
        offer = self._offers().get((request_id, mitra_id))
        if offer is None or not self._db.table("mitras")[mitra_id]["active"]:
            return None
        won = None
        if offer["status"] == OfferStatus.ACCEPTED:
            session = next(s for s in self._db.table("sessions").values() if s["request_id"] == request_id)
            ends_at = session["started_at"] + timedelta(seconds=self._requests()[request_id]["duration_s"])
            won = Match(session["id"], request_id, ends_at)
        return OfferStanding(OfferStatus(offer["status"]), RequestStatus(self._requests()[request_id]["status"]), won)

    def claim_offer(self, request_id: str, mitra_id: str) -> Claim | None:
        offer = self._offers().get((request_id, mitra_id))
        mitra = self._db.table("mitras").get(mitra_id)
        if offer is None or mitra is None or not mitra["active"]:
            return None
        return Claim(
            mitra["firebase_uid"],
            mitra["display_name"],
            OfferStatus(offer["status"]),
            self._db.config,
            own_max_clients=mitra.get("max_concurrent_clients"),
        )

    def start_session_if_first(
        self, request_id: str, mitra_id: str, session_id: str, *, max_clients: int
    ) -> StartAttempt | None:
        request = self._requests().get(request_id)
        if request is None:
            return None
        client = self._db.table("clients")[request["client_id"]]
        status = RequestStatus(request["status"])
        open_sessions = self._open_sessions(mitra_id)
        taken = any(s["request_id"] == request_id for s in self._db.table("sessions").values())
        session: Row | None = None
        if status is RequestStatus.SEARCHING and pairing.has_capacity(open_sessions, max_clients) and not taken:
            session = self._start(session_id, request, mitra_id)
        matched_at = None
        if session is not None and status.can_become(RequestStatus.MATCHED):
            request.update(status=RequestStatus.MATCHED, mitra_id=mitra_id, ended_at=self._db.now)
            matched_at = self._db.now
            if request["kind"] == RequestKind.FREE_TRIAL:
                if request["client_id"] in self._db.table("free_trials"):
                    raise UniqueViolation("free_trials_pkey")
                self._db.table("free_trials")[request["client_id"]] = {"session_id": session_id, "used_at": matched_at}
                for identity in self._identities(request["client_id"]):
                    self._db.table("free_trial_identities").setdefault(identity, {"used_at": matched_at})
        return StartAttempt(
            status=status,
            kind=RequestKind(request["kind"]),
            client_uid=client["firebase_uid"],
            client=self._shown(request["client_id"]),
            open_sessions=open_sessions,
            started_at=session["started_at"] if session else None,
            ends_at=session["ends_at"] if session else None,
            version=session["version"] if session else None,
            matched_at=matched_at,
        )

    def _start(self, session_id: str, request: Row, mitra_id: str) -> Row:
        """A session row shaped as tests/support/fake_chat.py's, so chat works on it."""
        session: Row = {
            "id": session_id,
            "request_id": request["id"],
            "client_id": request["client_id"],
            "mitra_id": mitra_id,
            "status": "active",
            "kind": request["kind"],
            "started_at": self._db.now,
            "ends_at": self._db.now + timedelta(seconds=request["duration_s"]),
            "next_seq": 0,
            "version": 1,
            **{f"{side}_{field}": 0 for side in ("client", "mitra") for field in ("delivered_seq", "read_seq")},
            **{
                f"{side}_{field}": None for side in ("client", "mitra") for field in ("receipts_outbox_id", "typing_at")
            },
        }
        self._db.table("sessions")[session_id] = session
        return session

    def _respond(self, offer: Row, status: OfferStatus) -> str:
        offer.update(status=status, responded_at=self._db.now)
        return str(self._db.table("mitras")[offer["mitra_id"]]["firebase_uid"])

    def _open_offers(self, request_id: str) -> list[Row]:
        return [o for o in self._offers().values() if o["request_id"] == request_id and o["status"] == "offered"]

    def withdraw_offers_on_match(self, request_id: str, mitra_id: str) -> list[str]:
        return [
            self._respond(o, OfferStatus.ACCEPTED if o["mitra_id"] == mitra_id else OfferStatus.WITHDRAWN)
            for o in self._open_offers(request_id)
        ]

    def decline_if_offered(self, request_id: str, mitra_id: str) -> str | None:
        offer = self._offers().get((request_id, mitra_id))
        if offer is None or offer["status"] != OfferStatus.OFFERED:
            return None
        return self._respond(offer, OfferStatus.DECLINED)

    def has_offer(self, request_id: str, mitra_id: str) -> bool:
        return (request_id, mitra_id) in self._offers()

    # -- the search ends -------------------------------------------------------------------------------------------

    def status_for_client(self, request_id: str, client_id: str) -> RequestStatus | None:
        request = self._requests().get(request_id)
        return RequestStatus(request["status"]) if request and request["client_id"] == client_id else None

    def search_window(self, request_id: str) -> SearchWindow | None:
        request = self._requests().get(request_id)
        if request is None:
            return None
        return SearchWindow(
            RequestStatus(request["status"]), request["search_deadline"], self._db.now, request.get("preferred_until")
        )

    def end_search_if_searching(self, request_id: str, status: RequestStatus) -> SearchEnded | None:
        request = self._requests().get(request_id)
        if request is None or not RequestStatus(request["status"]).can_become(status):
            return None
        request.update(status=status, ended_at=self._db.now)
        return SearchEnded(self._db.table("clients")[request["client_id"]]["firebase_uid"], self._db.now)

    def withdraw_offers(self, request_id: str) -> list[str]:
        return [self._respond(o, OfferStatus.WITHDRAWN) for o in self._open_offers(request_id)]

    def withdraw_open_offers_of(self, mitra_ids: list[str]) -> list[tuple[str, str]]:
        return [
            (self._respond(o, OfferStatus.WITHDRAWN), o["request_id"])
            for o in list(self._offers().values())
            if o["mitra_id"] in mitra_ids and o["status"] == OfferStatus.OFFERED
        ]
