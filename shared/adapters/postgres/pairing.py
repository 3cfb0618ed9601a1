"""Pairing's SQL: requests, the offers of each to available mitras, and the start of the session a mitra wins."""

from __future__ import annotations

from typing import Any

from shared.adapters.postgres.database import Row
from shared.adapters.postgres.settings import CONFIG_COLUMN, config_from
from shared.adapters.postgres.sql import Sql
from shared.config import get_settings
from shared.domain.config import AppConfig
from shared.domain.pairing import (
    FREE_TRIAL_CANCEL_WINDOW,
    RATE_WINDOW,
    WAIT_HISTORY_DAYS,
    WAIT_HISTORY_LIMIT,
    WAIT_HOUR_SPAN,
    AskingClient,
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

# The rule `shared.domain.pairing.has_capacity` for the mitra `m`: their open sessions against their own maximum, or
# the global one (`shared.domain.pairing.capacity_of`, `:max_clients`).
_OPEN_SESSIONS = "(SELECT count(*) FROM sessions s WHERE s.mitra_id = m.id AND s.status IN ('active', 'closing'))"
_CAPACITY = "COALESCE(m.max_concurrent_clients, :max_clients)"
_AT_CAPACITY = f"{_OPEN_SESSIONS} >= {_CAPACITY}"

# The rule `shared.domain.pairing.is_available` for every mitra at once: who may be offered a request right now.
# Shared with the control center (its live figures, and the reroute's check); takes `available_params`.
AVAILABLE_MITRAS = f"""
    SELECT m.id, m.firebase_uid FROM mitras m
    WHERE m.active AND m.presence = 'online' AND m.firebase_uid IS NOT NULL
      AND m.heard_until >= now()
      AND {_OPEN_SESSIONS} < {_CAPACITY}
"""

# The offers a blast has just made to mitras that an accept filled while it ran, taken back before anyone sees them
# (`offer_to_available_mitras`). They are rows of the blast's own change, so they are deleted, not withdrawn: the mitra
# was never offered the request, and the client's `offered_count` (every offer row) does not count them.
_FULL_AFTER_BLAST = f"""
    DELETE FROM pairing_offers o USING mitras m
    WHERE o.request_id = CAST(:request AS uuid) AND o.mitra_id = ANY(CAST(:mitras AS uuid[])) AND o.status = 'offered'
      AND m.id = o.mitra_id AND {_AT_CAPACITY}
    RETURNING m.firebase_uid
"""

# Who a searching request `r` may be offered to now: while its preference window is open
# (`shared.domain.pairing.preference`), only the past mitra the client asked for; then everyone. Takes the
# mitra as `:mitra_id`-free column `candidate.id`.
_PREFERENCE_ALLOWS = """
    (r.preferred_until IS NULL OR r.preferred_until <= now() OR r.preferred_mitra_id = candidate.id)
"""

# A revived offer: one withdrawn earlier (the mitra went offline, or reached capacity) is offered again; an offer
# declined, accepted or still open stays as it is. `revived` tells a revival (an UPDATE: xmax set) from a new row.
_OFFER_OR_REVIVE = """
    ON CONFLICT (request_id, mitra_id) DO UPDATE SET status = 'offered', offered_at = now(), responded_at = NULL
    WHERE pairing_offers.status = 'withdrawn'
    RETURNING request_id, mitra_id, (xmax <> 0) AS revived, offered_at
"""

# The estimated wait's history (`shared.domain.pairing.estimated_wait`): the latest matched requests within
# WAIT_HISTORY_DAYS asked at an hour of the Jakarta clock within WAIT_HOUR_SPAN of now's (around midnight too).
_RECENT_WAITS = """
WITH recent AS (
    SELECT ended_at, EXTRACT(epoch FROM ended_at - created_at) AS wait_s,
           abs(EXTRACT(hour FROM created_at AT TIME ZONE 'Asia/Jakarta')
               - EXTRACT(hour FROM now() AT TIME ZONE 'Asia/Jakarta')) AS hours_apart
    FROM pairing_requests
    WHERE status = 'matched' AND ended_at > now() - make_interval(days => :days)
), alike AS (
    SELECT wait_s FROM recent WHERE LEAST(hours_apart, 24 - hours_apart) <= :span ORDER BY ended_at DESC LIMIT :limit
)
SELECT count(*) AS matched, percentile_cont(0.5) WITHIN GROUP (ORDER BY wait_s) AS median_s FROM alike
"""


# Blocks (`shared.domain.blocks`): the client `{client}` and the mitra `{mitra}` are never offered to each other when
# either blocked the other. Kept apart from AVAILABLE_MITRAS, which says who is available to anyone.
NOT_BLOCKED = "NOT EXISTS (SELECT 1 FROM blocks b WHERE b.client_id = {client} AND b.mitra_id = {mitra})"


def trial_key() -> str:
    """The secret `shared.domain.pairing.trial_identities` keys its hashes with (HALO_IDENTITY_HASH_KEY)."""
    return get_settings().identity_hash_key


def available_params(config: AppConfig) -> dict[str, Any]:
    """The parameters AVAILABLE_MITRAS takes."""
    return {"max_clients": config.max_concurrent_clients}


_CLIENT_SHOWN = "c.display_name, c.anonymous, c.alias_number"

# `shared.domain.pairing.trial_identities` of the client `c`: the hashes of its verified phone number and email.
_TRIAL_IDENTITIES = """
    LATERAL (SELECT encode(hmac(convert_to(identity, 'UTF8'), convert_to(:trial_key, 'UTF8'), 'sha256'), 'hex')
                 AS identity_hash
             FROM (VALUES ('phone:' || c.phone), ('email:' || lower(c.email))) AS i (identity)
             WHERE identity IS NOT NULL) AS identities
"""

# Whether the client `:id` has had its free trial (`shared.domain.pairing.free_trial`): this account, or another on
# its verified phone number or email. Shared with pricing_quote.
FREE_TRIAL_USED = f"""
    (EXISTS (SELECT 1 FROM free_trials WHERE client_id = CAST(:id AS uuid))
     OR EXISTS (SELECT 1 FROM clients c, {_TRIAL_IDENTITIES}, free_trial_identities used
                WHERE c.id = CAST(:id AS uuid) AND used.identity_hash = identities.identity_hash))
"""

# Where a mitra's offer stands, read before the accept's transaction so that a mitra who taps after another has won
# learns it in one round trip. FOR SHARE waits for an accept that is deciding right now (it holds the request's row
# until it commits) and reads what it decided; shared with every other mitra waiting, and kept only for this one
# statement, it holds up no one. A mitra whose offer was accepted finds the session it won, and when that session
# ended as the accept answered (`shared.domain.pairing.won_already`: the session started at `now()` and was to end
# `duration_s` later, the same sum as _START's).
_OFFER_STANDING = """
    SELECT o.status AS offer, r.status AS request, s.id::text AS session_id,
           s.started_at + make_interval(secs => r.duration_s) AS first_ends_at
    FROM pairing_offers o JOIN pairing_requests r ON r.id = o.request_id JOIN mitras m ON m.id = o.mitra_id
         LEFT JOIN sessions s ON s.request_id = r.id AND o.status = 'accepted'
    WHERE o.request_id = CAST(:r AS uuid) AND o.mitra_id = CAST(:m AS uuid) AND m.active
    FOR SHARE OF r
"""

# The mitra's row lock makes the capacity count in _START safe against this mitra's other accepts: that count is
# a later statement's, so it sees every session they committed. The settings ride along (no statement of their own).
_CLAIM = f"""
    SELECT m.firebase_uid, m.display_name, o.status AS offer, m.max_concurrent_clients AS own_max, {CONFIG_COLUMN}
    FROM mitras m JOIN pairing_offers o ON o.mitra_id = m.id AND o.request_id = CAST(:r AS uuid)
    WHERE m.id = CAST(:m AS uuid) AND m.active
    FOR UPDATE OF m
"""

# The rule `shared.domain.pairing.first_accept_wins`, decided in one statement: the session starts if the request is
# still searching and the mitra has room (`has_capacity`). Between mitras accepting at once, the unique request_id of
# sessions decides: the others' inserts wait for the first to commit, then insert nothing and hold nothing, so they
# all return at once. (Racing to UPDATE the request instead would leave each loser holding its row until it rolled
# back, and the losers would finish one after another.) The request's UPDATE, guarded by `status = 'searching'`
# (a request ends exactly once: `RequestStatus.can_become`), then refuses a start that a cancel or the search's
# timeout got to first. A free trial's session inserts the client's row of free_trials, whose PRIMARY KEY
# (`free_trials_pkey`) is what makes the trial once-only (`shared.domain.pairing.free_trial`), and the hashes of the
# client's verified phone number and email into free_trial_identities, so that no other account on them has one.
_START = f"""
WITH request AS (
    SELECT r.status, r.client_id, r.kind, r.duration_s, c.firebase_uid AS client_uid,
           c.display_name, c.anonymous, c.alias_number,
           (SELECT count(*) FROM sessions s WHERE s.mitra_id = CAST(:m AS uuid) AND s.status IN ('active', 'closing'))
               AS open_sessions
    FROM pairing_requests r JOIN clients c ON c.id = r.client_id
    WHERE r.id = CAST(:r AS uuid)
), started AS (
    INSERT INTO sessions (id, request_id, client_id, mitra_id, kind, started_at, ends_at)
    SELECT CAST(:session AS uuid), CAST(:r AS uuid), client_id, CAST(:m AS uuid), kind, now(),
           now() + make_interval(secs => duration_s)
    FROM request WHERE status = 'searching' AND open_sessions < :max_clients
    ON CONFLICT (request_id) DO NOTHING
    RETURNING started_at, ends_at, version
), matched AS (
    UPDATE pairing_requests SET status = 'matched', mitra_id = CAST(:m AS uuid), ended_at = now()
    WHERE id = CAST(:r AS uuid) AND status = 'searching' AND EXISTS (SELECT FROM started)
    RETURNING ended_at
), free_trial AS (
    INSERT INTO free_trials (client_id, session_id)
    SELECT client_id, CAST(:session AS uuid) FROM request, matched WHERE request.kind = 'free_trial'
), trial_identities AS (
    INSERT INTO free_trial_identities (identity_hash)
    SELECT identity_hash FROM request, matched, clients c, {_TRIAL_IDENTITIES}
    WHERE request.kind = 'free_trial' AND c.id = request.client_id
    ON CONFLICT DO NOTHING
)
SELECT request.*, started.started_at, started.ends_at, started.version, matched.ended_at AS matched_at
FROM request LEFT JOIN started ON true LEFT JOIN matched ON true
"""


class PairingRepository:
    def __init__(self, sql: Sql) -> None:
        self._sql = sql

    # -- the client asks -----------------------------------------------------------------------------------------

    def lock_client(self, client_id: str) -> AskingClient | None:
        """The client's row locked until the change ends, so one client's requests are decided one at a time."""
        row = self._sql.one(
            "SELECT firebase_uid, now() AS now FROM clients WHERE id = CAST(:id AS uuid) FOR UPDATE", {"id": client_id}
        )
        return AskingClient(**row) if row else None

    def standing(self, client_id: str) -> ClientStanding:
        """Read after `lock_client`: a statement of its own sees every request the client's earlier calls committed."""
        row = self._sql.one(
            f"""SELECT (SELECT id::text FROM pairing_requests
                       WHERE client_id = CAST(:id AS uuid) AND status = 'searching' LIMIT 1) AS open_request_id,
                      (SELECT id::text FROM sessions
                       WHERE client_id = CAST(:id AS uuid) AND status IN ('active', 'closing') LIMIT 1)
                          AS open_session_id,
                      recent.requested_in_window, recent.oldest_in_window,
                      {FREE_TRIAL_USED} AS free_trial_used,
                      cancels.free_trial_cancels, cancels.earliest_free_trial_cancel
               FROM (SELECT count(*) AS requested_in_window, min(created_at) AS oldest_in_window
                     FROM pairing_requests
                     WHERE client_id = CAST(:id AS uuid) AND created_at > now() - make_interval(secs => :window_s))
                    AS recent,
                    (SELECT count(*) AS free_trial_cancels, min(ended_at) AS earliest_free_trial_cancel
                     FROM pairing_requests
                     WHERE client_id = CAST(:id AS uuid) AND kind = 'free_trial' AND status = 'cancelled'
                       AND ended_at > now() - make_interval(secs => :cancel_window_s))
                    AS cancels""",
            {
                "id": client_id,
                "window_s": RATE_WINDOW.total_seconds(),
                "cancel_window_s": FREE_TRIAL_CANCEL_WINDOW.total_seconds(),
                "trial_key": trial_key(),
            },
        )
        assert row is not None
        return ClientStanding(**row)

    def tier_active(self, tier_id: str) -> bool:
        return bool(self._sql.scalar("SELECT active FROM pricing_tiers WHERE id = :id", {"id": tier_id}))

    def anyone_available(self, config: AppConfig) -> bool:
        """Whether any mitra is available (`shared.domain.pairing.is_available`)."""
        return bool(self._sql.scalar(f"SELECT EXISTS ({AVAILABLE_MITRAS})", available_params(config)))

    def past_mitra(self, client_id: str, mitra_id: str, config: AppConfig) -> PastMitra:
        """Whether the client had a session with this mitra, whether either blocked the other (NOT_BLOCKED), and
        whether the mitra is available right now."""
        row = self._sql.one(
            f"""SELECT EXISTS (SELECT 1 FROM sessions
                               WHERE client_id = CAST(:client AS uuid) AND mitra_id = CAST(:mitra AS uuid))
                           AS had_session,
                       EXISTS (SELECT 1 FROM ({AVAILABLE_MITRAS}) AS available
                               WHERE available.id = CAST(:mitra AS uuid)) AS available,
                       {NOT_BLOCKED.format(client="CAST(:client AS uuid)", mitra="CAST(:mitra AS uuid)")} AS allowed""",
            {"client": client_id, "mitra": mitra_id, **available_params(config)},
        )
        assert row is not None
        return PastMitra(had_session=row["had_session"], allowed=row["allowed"], available=row["available"])

    def recent_waits(self) -> RecentWaits:
        """See _RECENT_WAITS."""
        row = self._sql.one(
            _RECENT_WAITS, {"days": WAIT_HISTORY_DAYS, "span": WAIT_HOUR_SPAN, "limit": WAIT_HISTORY_LIMIT}
        )
        assert row is not None
        median = row["median_s"]
        return RecentWaits(matched=row["matched"], median_s=float(median) if median is not None else None)

    def add_request(self, request: NewRequest) -> None:
        """Created now (the transaction's moment, as `lock_client` read it); a request that does not search ended
        as it began. The unique index `pairing_requests_one_open` refuses a client's second searching request, should
        the rule `shared.domain.pairing.may_ask` ever be bypassed."""
        purchase = request.purchase
        self._sql.execute(
            """INSERT INTO pairing_requests (id, client_id, status, kind, tier_id, duration_s, transaction_id,
                                             search_deadline, ended_at, preferred_mitra_id, preferred_until)
               VALUES (CAST(:id AS uuid), CAST(:client AS uuid), :status, :kind, :tier, :duration,
                       CAST(:transaction AS uuid), :deadline,
                       CASE WHEN :status = 'searching' THEN NULL ELSE now() END,
                       CAST(:preferred AS uuid), :preferred_until)""",
            {
                "id": request.request_id,
                "client": request.client_id,
                "status": request.status,
                "kind": purchase.kind,
                "tier": request.tier_id,
                "duration": purchase.duration_s,
                "transaction": purchase.transaction_id,
                "deadline": request.search_deadline,
                "preferred": request.preferred_mitra_id,
                "preferred_until": request.preferred_until,
            },
        )

    # -- offering it -----------------------------------------------------------------------------------------------

    def searching_request_for_offers(self, request_id: str) -> OfferedRequest | None:
        """FOR SHARE: an accept (which updates the row) waits for this change to commit, so it withdraws the offers
        made in it too."""
        row = self._sql.one(
            f"""SELECT r.id::text AS request_id, r.kind, r.duration_s, r.search_deadline, {_CLIENT_SHOWN}
                FROM pairing_requests r JOIN clients c ON c.id = r.client_id
                WHERE r.id = CAST(:id AS uuid) AND r.status = 'searching' FOR SHARE OF r""",
            {"id": request_id},
        )
        return _offered(row) if row else None

    def offer_to_available_mitras(self, request_id: str, config: AppConfig) -> list[str]:
        """The request offered to every available mitra (`shared.domain.pairing.is_available`) not offered it yet,
        only to the preferred one while its preference window is open (_PREFERENCE_ALLOWS); the uids of those
        offered now.

        The uids are read back through the mitras' primary key, not by joining the CTE again: the planner cannot
        estimate how many mitras are available (a recent-heartbeat range and a per-mitra capacity), guesses a few,
        and joined two CTEs of 5,000 rows each in a nested loop (25 million comparisons, 2.4 s; bench/pairing.py).

        An accept racing the blast cannot leave a full mitra holding its offer. The insert's snapshot is taken as it
        starts, so a mitra whose accept is deciding meanwhile still looks available. Each offer's foreign key then
        locks its mitra's row (FOR KEY SHARE) until this change commits, and the accept holds that row FOR UPDATE:
        - An accept that locked the row first commits before the insert goes on. The second statement, with a
          snapshot of its own, sees its session and takes back the offers made to every mitra now full
          (_FULL_AFTER_BLAST).
        - An accept that comes later waits for this commit, then withdraws the offer itself
          (`withdraw_offers_if_full`)."""
        params = {"request": request_id, **available_params(config)}
        rows = self._sql.all(
            f"""WITH added AS (
                    INSERT INTO pairing_offers (request_id, mitra_id)
                    SELECT r.id, candidate.id FROM pairing_requests r, ({AVAILABLE_MITRAS}) AS candidate
                    WHERE r.id = CAST(:request AS uuid) AND {_PREFERENCE_ALLOWS}
                      AND {NOT_BLOCKED.format(client="r.client_id", mitra="candidate.id")}
                    ON CONFLICT DO NOTHING RETURNING mitra_id)
                SELECT added.mitra_id::text, m.firebase_uid FROM added JOIN mitras m ON m.id = added.mitra_id
                ORDER BY m.firebase_uid""",
            params,
        )
        if not rows:
            return []
        full = self._sql.all(_FULL_AFTER_BLAST, {**params, "mitras": [row["mitra_id"] for row in rows]})
        withdrawn = {row["firebase_uid"] for row in full}
        return [row["firebase_uid"] for row in rows if row["firebase_uid"] not in withdrawn]

    def offer_searching_requests_to(self, mitra_id: str, config: AppConfig) -> list[OfferedRequest]:
        """If this mitra is available (online, with room: `shared.domain.pairing.is_available`), every request
        still searching that it may be offered (_PREFERENCE_ALLOWS) offered to it: new offers, and offers withdrawn
        earlier made again (_OFFER_OR_REVIVE); declined ones stay declined. Those offered now."""
        rows = self._sql.all(
            f"""WITH candidate AS (
                    SELECT available.id FROM ({AVAILABLE_MITRAS}) AS available
                    WHERE available.id = CAST(:mitra AS uuid)),
                added AS (
                    INSERT INTO pairing_offers (request_id, mitra_id)
                    SELECT r.id, candidate.id FROM pairing_requests r, candidate
                    WHERE r.status = 'searching' AND r.search_deadline > now() AND {_PREFERENCE_ALLOWS}
                      AND {NOT_BLOCKED.format(client="r.client_id", mitra="candidate.id")}
                    {_OFFER_OR_REVIVE})
                SELECT r.id::text AS request_id, r.kind, r.duration_s, r.search_deadline, {_CLIENT_SHOWN},
                       CASE WHEN added.revived THEN added.offered_at END AS again_at
                FROM added JOIN pairing_requests r ON r.id = added.request_id JOIN clients c ON c.id = r.client_id
                ORDER BY r.created_at""",
            {"mitra": mitra_id, **available_params(config)},
        )
        return [_offered(row) for row in rows]

    def lock_mitra_for_offers(self, mitra_id: str) -> str | None:
        """An active mitra's uid, its row locked until the change ends: its accepts (which lock it too, _CLAIM) wait,
        so the capacity counted for its offers is not changing meanwhile."""
        return self._sql.scalar(  # type: ignore[no-any-return]
            "SELECT firebase_uid FROM mitras WHERE id = CAST(:id AS uuid) AND active FOR UPDATE", {"id": mitra_id}
        )

    def offered_counts(self, request_ids: list[str]) -> dict[str, int]:
        """How many mitras each request has been offered to (every offer row, whatever became of it)."""
        rows = self._sql.all(
            """SELECT request_id::text, count(*) AS offered FROM pairing_offers
               WHERE request_id = ANY(CAST(:ids AS uuid[])) GROUP BY request_id""",
            {"ids": request_ids},
        )
        return {row["request_id"]: row["offered"] for row in rows}

    def withdraw_offers_if_full(self, mitra_id: str, config: AppConfig) -> list[tuple[str, str]]:
        """A mitra at capacity (`shared.domain.pairing.has_capacity`, `capacity_of`) holds no open offer: each one
        withdrawn (made again when a slot frees, `offer_searching_requests_to`); (mitra uid, request id) of each."""
        rows = self._sql.all(
            f"""UPDATE pairing_offers o SET status = 'withdrawn', responded_at = now() FROM mitras m
                WHERE o.mitra_id = CAST(:mitra AS uuid) AND o.status = 'offered' AND m.id = o.mitra_id
                  AND {_AT_CAPACITY}
                RETURNING m.firebase_uid, o.request_id::text""",
            {"mitra": mitra_id, "max_clients": config.max_concurrent_clients},
        )
        return [(row["firebase_uid"], row["request_id"]) for row in rows]

    def end_preference(self, request_id: str, *, declined_by: str | None = None) -> bool:
        """A searching request's preference window ends now (its timer fired, or, `declined_by` given, the preferred
        mitra declined): it goes to everyone. False when there was no window open to end (for that mitra)."""
        row = self._sql.one(
            """UPDATE pairing_requests SET preferred_until = now()
               WHERE id = CAST(:r AS uuid) AND status = 'searching' AND preferred_until > now()
                 AND (CAST(:m AS uuid) IS NULL OR preferred_mitra_id = CAST(:m AS uuid))
               RETURNING id""",
            {"r": request_id, "m": declined_by},
        )
        return row is not None

    # -- a mitra answers -------------------------------------------------------------------------------------------

    def offer_standing(self, request_id: str, mitra_id: str) -> OfferStanding | None:
        row = self._sql.one(_OFFER_STANDING, {"r": request_id, "m": mitra_id})
        if row is None:
            return None
        won = Match(row["session_id"], request_id, row["first_ends_at"]) if row["session_id"] else None
        return OfferStanding(OfferStatus(row["offer"]), RequestStatus(row["request"]), won)

    def claim_offer(self, request_id: str, mitra_id: str) -> Claim | None:
        """The active mitra holding an offer of this request, its row locked until the change ends."""
        row = self._sql.one(_CLAIM, {"r": request_id, "m": mitra_id})
        if row is None:
            return None
        return Claim(
            row["firebase_uid"],
            row["display_name"],
            OfferStatus(row["offer"]),
            config_from(row["config"]),
            own_max_clients=row["own_max"],
        )

    def start_session_if_first(
        self, request_id: str, mitra_id: str, session_id: str, *, max_clients: int
    ) -> StartAttempt | None:
        """See _START; None when there is no such request."""
        row = self._sql.one(
            _START,
            {
                "r": request_id,
                "m": mitra_id,
                "session": session_id,
                "max_clients": max_clients,
                "trial_key": trial_key(),
            },
        )
        if row is None:
            return None
        return StartAttempt(
            status=RequestStatus(row["status"]),
            kind=RequestKind(row["kind"]),
            client_uid=row["client_uid"],
            client=_client_shown(row),
            open_sessions=row["open_sessions"],
            started_at=row["started_at"],
            ends_at=row["ends_at"],
            version=row["version"],
            matched_at=row["matched_at"],
        )

    def withdraw_offers_on_match(self, request_id: str, mitra_id: str) -> list[str]:
        """Every open offer of the matched request withdrawn, the winner's accepted; the uids of their mitras. A
        statement of its own, after `start_session_if_first`: if a blast was still offering the request, that
        statement's UPDATE waited for it to commit, and this one sees its offers too."""
        rows = self._sql.all(
            """UPDATE pairing_offers o
               SET status = CASE WHEN o.mitra_id = CAST(:m AS uuid) THEN 'accepted' ELSE 'withdrawn' END,
                   responded_at = now()
               FROM mitras m WHERE o.request_id = CAST(:r AS uuid) AND o.status = 'offered' AND m.id = o.mitra_id
               RETURNING m.firebase_uid""",
            {"r": request_id, "m": mitra_id},
        )
        return [row["firebase_uid"] for row in rows]

    def decline_if_offered(self, request_id: str, mitra_id: str) -> str | None:
        """The mitra's open offer declined; the mitra's uid, or None when it held no open offer."""
        return self._sql.scalar(  # type: ignore[no-any-return]
            """UPDATE pairing_offers o SET status = 'declined', responded_at = now() FROM mitras m
               WHERE o.request_id = CAST(:r AS uuid) AND o.mitra_id = CAST(:m AS uuid) AND m.id = o.mitra_id
                 AND o.status = 'offered'
               RETURNING m.firebase_uid""",
            {"r": request_id, "m": mitra_id},
        )

    def has_offer(self, request_id: str, mitra_id: str) -> bool:
        return bool(
            self._sql.scalar(
                """SELECT EXISTS (SELECT 1 FROM pairing_offers
                                  WHERE request_id = CAST(:r AS uuid) AND mitra_id = CAST(:m AS uuid))""",
                {"r": request_id, "m": mitra_id},
            )
        )

    # -- the search ends -------------------------------------------------------------------------------------------

    def status_for_client(self, request_id: str, client_id: str) -> RequestStatus | None:
        """The request's status, if it is this client's."""
        status = self._sql.scalar(
            "SELECT status FROM pairing_requests WHERE id = CAST(:r AS uuid) AND client_id = CAST(:c AS uuid)",
            {"r": request_id, "c": client_id},
        )
        return RequestStatus(status) if status is not None else None

    def search_window(self, request_id: str) -> SearchWindow | None:
        row = self._sql.one(
            """SELECT status, search_deadline, now() AS now, preferred_until
               FROM pairing_requests WHERE id = CAST(:r AS uuid)""",
            {"r": request_id},
        )
        if row is None:
            return None
        return SearchWindow(RequestStatus(row["status"]), row["search_deadline"], row["now"], row["preferred_until"])

    def end_search_if_searching(self, request_id: str, status: RequestStatus) -> SearchEnded | None:
        """A request ends exactly once (`RequestStatus.can_become`): only while it searches; None when it had
        already ended (or a concurrent end or accept got there while this waited for the row)."""
        row = self._sql.one(
            """UPDATE pairing_requests r SET status = :status, ended_at = now()
               FROM clients c WHERE r.id = CAST(:r AS uuid) AND r.status = 'searching' AND c.id = r.client_id
               RETURNING c.firebase_uid AS client_uid, r.ended_at""",
            {"r": request_id, "status": status},
        )
        return SearchEnded(**row) if row else None

    def withdraw_offers(self, request_id: str) -> list[str]:
        """Every open offer of an ended request withdrawn; the uids of their mitras."""
        rows = self._sql.all(
            """UPDATE pairing_offers o SET status = 'withdrawn', responded_at = now() FROM mitras m
               WHERE o.request_id = CAST(:r AS uuid) AND o.status = 'offered' AND m.id = o.mitra_id
               RETURNING m.firebase_uid""",
            {"r": request_id},
        )
        return [row["firebase_uid"] for row in rows]

    def withdraw_open_offers_of(self, mitra_ids: list[str]) -> list[tuple[str, str]]:
        """Every open offer these mitras hold withdrawn; (mitra uid, request id) of each."""
        rows = self._sql.all(
            """UPDATE pairing_offers o SET status = 'withdrawn', responded_at = now() FROM mitras m
               WHERE o.mitra_id = ANY(CAST(:ids AS uuid[])) AND o.status = 'offered' AND m.id = o.mitra_id
               RETURNING m.firebase_uid, o.request_id::text""",
            {"ids": mitra_ids},
        )
        return [(row["firebase_uid"], row["request_id"]) for row in rows]


def _client_shown(row: Row) -> ClientShown:
    return ClientShown(row["display_name"], row["anonymous"], row["alias_number"])


def _offered(row: Row) -> OfferedRequest:
    return OfferedRequest(
        request_id=row["request_id"],
        kind=RequestKind(row["kind"]),
        duration_s=row["duration_s"],
        search_deadline=row["search_deadline"],
        client=_client_shown(row),
        again_at=row.get("again_at"),
    )
