"""Pairing: a client's request is offered to every available mitra at once; the first to accept gets the session."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from shared.adapters.postgres.database import Database, Row, Tx
from shared.domain import accounts, pairing
from shared.domain.config import AppConfig
from shared.domain.events import Committed, TopicMessage
from shared.domain.pairing import OfferStatus, RequestStatus
from shared.errors import Conflict, InvalidRequest, NotFound, RateLimited, Unavailable
from shared.services import credits, lifecycle, outbox, projections, settings_store
from shared.services.availability import AVAILABLE_MITRAS, available_params
from shared.services.outbox import ts
from shared.services.ports import Ports
from shared.services.projector import project_after_commit, publish_committed

TIMEOUT_QUEUE = "pairing-timeouts"
TIMEOUT_HANDLER = "task_pairing_timeout"
BLAST_TOPIC = "pairing-requested"
# A timeout task that fires a little early (Cloud Tasks' own jitter) still ends the search.
_DEADLINE_TOLERANCE = timedelta(seconds=1)


@dataclass(frozen=True)
class RequestOutcome:
    request_id: str
    status: str
    search_deadline: datetime


@dataclass(frozen=True)
class Match:
    session_id: str
    request_id: str
    ends_at: datetime


# -- the client asks -----------------------------------------------------------------------------------------------


def request_pairing(
    ports: Ports, client_id: str, *, tier_id: str | None, free_trial: bool, idempotency_key: str | None
) -> RequestOutcome:
    with ports.db.transaction() as tx:
        client = tx.one(
            "SELECT firebase_uid FROM clients WHERE id = CAST(:id AS uuid) FOR UPDATE", {"id": client_id}
        )  # serialises one client's requests
        if client is None:
            raise NotFound("no such client")
        if idempotency_key:
            replay = tx.one(
                """SELECT id::text, status, search_deadline FROM pairing_requests
                   WHERE client_id = CAST(:client AS uuid) AND idempotency_key = :key""",
                {"client": client_id, "key": idempotency_key},
            )
            if replay:
                return RequestOutcome(replay["id"], replay["status"], replay["search_deadline"])
        _refuse_if_busy(tx, client_id)
        config = settings_store.load_config(tx)
        _refuse_if_too_fast(tx, client_id, config.pairing_requests_per_hour)
        request_id = str(uuid.uuid4())
        kind, duration_s, transaction_id = _what_is_bought(
            tx, config, client_id, request_id, tier_id=tier_id, free_trial=free_trial
        )
        anyone = tx.scalar(f"SELECT EXISTS ({AVAILABLE_MITRAS})", available_params(config))
        status = RequestStatus.SEARCHING if anyone else RequestStatus.NO_MITRA
        row = tx.one(
            """INSERT INTO pairing_requests (id, client_id, status, kind, tier_id, duration_s, transaction_id,
                                             idempotency_key, search_deadline, ended_at)
               VALUES (CAST(:id AS uuid), CAST(:client AS uuid), :status, :kind, :tier, :duration,
                       CAST(:transaction AS uuid), :key, now() + make_interval(secs => :window),
                       CASE WHEN :status = 'searching' THEN NULL ELSE now() END)
               RETURNING created_at, search_deadline""",
            {"id": request_id, "client": client_id, "status": status, "kind": kind, "tier": tier_id,
             "duration": duration_s, "transaction": transaction_id, "key": idempotency_key,
             "window": config.pairing_search_window_s},
        )  # fmt: skip
        assert row is not None
        projections.request_status(
            tx, request_id, client_uid=client["firebase_uid"], status=status, at=row["created_at"],
            extra={"search_deadline": ts(row["search_deadline"]), "kind": kind, "duration_s": duration_s},
        )  # fmt: skip
        if status is RequestStatus.SEARCHING:
            outbox.publish(tx, BLAST_TOPIC, {"request_id": request_id})
            # Scheduled before the commit: a task for a request that never committed finds nothing and stops,
            # while a request that committed without its task would search forever.
            ports.tasks.schedule(
                queue=TIMEOUT_QUEUE, task_id=pairing.pairing_timeout_task_id(request_id), handler=TIMEOUT_HANDLER,
                payload={"request_id": request_id}, at=row["search_deadline"],
            )  # fmt: skip
        else:
            credits.release(tx, request_id)  # ended before it began: a paid credit stays with the client
    project_after_commit(ports, tx.outbox_ids)
    return RequestOutcome(request_id, status, row["search_deadline"])


def _refuse_if_too_fast(tx: Tx, client_id: str, per_hour: int) -> None:
    recent = tx.one(
        """SELECT count(*) AS n, ceil(extract(epoch FROM min(created_at) + interval '1 hour' - now())) AS wait_s
           FROM pairing_requests WHERE client_id = CAST(:id AS uuid) AND created_at > now() - interval '1 hour'""",
        {"id": client_id},
    )
    assert recent is not None
    if recent["n"] >= per_hour:
        raise RateLimited("too many requests in the last hour", retry_after_s=max(1, int(recent["wait_s"])))


def _refuse_if_busy(tx: Tx, client_id: str) -> None:
    open_request = tx.scalar(
        "SELECT id::text FROM pairing_requests WHERE client_id = CAST(:id AS uuid) AND status = 'searching'",
        {"id": client_id},
    )
    if open_request:
        raise Conflict(
            "you already have a request searching", code="request_open", details={"request_id": open_request}
        )
    open_session = tx.scalar(
        "SELECT id::text FROM sessions WHERE client_id = CAST(:id AS uuid) AND status IN ('active', 'closing')",
        {"id": client_id},
    )
    if open_session:
        raise Conflict("you are already in a session", code="session_open", details={"session_id": open_session})


def _what_is_bought(
    tx: Tx, config: AppConfig, client_id: str, request_id: str, *, tier_id: str | None, free_trial: bool
) -> tuple[str, int, str | None]:
    """The request's kind, length and, when paid, the transaction whose credit it reserves."""
    if free_trial:
        used = tx.scalar(
            "SELECT EXISTS (SELECT 1 FROM free_trials WHERE client_id = CAST(:id AS uuid))", {"id": client_id}
        )
        if not config.free_trial_enabled or used:
            raise Conflict("the free trial is not available to you", code="free_trial_unavailable")
        return pairing.RequestKind.FREE_TRIAL, config.free_trial_minutes * 60, None
    assert tier_id is not None
    tier_active = tx.scalar("SELECT active FROM pricing_tiers WHERE id = :id", {"id": tier_id})
    # A credit bought before its tier was retired is still the client's to use, for the length it bought.
    credit = credits.reserve(tx, client_id, tier_id=tier_id, request_id=request_id)
    if credit is not None:
        return pairing.RequestKind.PAID, credit.duration_s, credit.transaction_id
    if not tier_active:
        raise InvalidRequest("no such pricing tier", fields=[{"field": "tier_id", "problem": "unknown or inactive"}])
    raise Conflict(
        "pay for this tier first", code="payment_required", details={"checkout": "billing_checkout", "tier_id": tier_id}
    )


# -- offering it to every available mitra ----------------------------------------------------------------------------


# The offers, a write to each mitra's offer document and one push to all of them, in one statement.
_BLAST = f"""
WITH available AS ({AVAILABLE_MITRAS}),
added AS (
    INSERT INTO pairing_offers (request_id, mitra_id)
    SELECT CAST(:request AS uuid), id FROM available
    ON CONFLICT DO NOTHING RETURNING mitra_id
),
offered AS (SELECT m.firebase_uid FROM added JOIN mitras m ON m.id = added.mitra_id),
{projections.OfferDocuments.cte("offered")},
push AS (
    INSERT INTO outbox (kind, destination, payload)
    SELECT 'pubsub', :push_topic, jsonb_set(CAST(:push AS jsonb), '{{data,recipients}}', jsonb_agg(firebase_uid))
    FROM offered HAVING count(*) > 0
    RETURNING id, payload -> 'data' AS message
)
SELECT {projections.OfferDocuments.RECORDED} AS offer_documents, (SELECT id FROM push) AS push_outbox_id,
       (SELECT message FROM push) AS push
"""


def blast(ports: Ports, request_id: str) -> int:
    """Offer a searching request to every available mitra not yet offered it. Safe to run again: a redelivered
    message finds the offers already recorded and sends nothing twice. Returns how many new offers were made."""
    with ports.db.transaction() as tx:
        request = _searching_request_for_offers(tx, request_id)
        if request is None:
            return 0
        config = settings_store.config_from(request["config"])
        client_name = _client_name(request, config)
        offer_documents = projections.OfferDocuments(
            request_id, "merge", projections.offer_document(request_id, _offer(request, client_name))
        )
        push = _offer_push(request, client_name, recipients=[])  # the statement names every mitra it offered
        blasted = tx.one(
            _BLAST,
            {"request": request_id, **available_params(config), **offer_documents.params(),
             "push_topic": projections.NOTIFY_TOPIC, "push": json.dumps(outbox.message_payload(push))},
        )  # fmt: skip
    assert blasted is not None
    offered = projections.OfferDocuments.count(blasted["offer_documents"])
    if offered:
        publish_committed(
            ports,
            [*offer_documents.committed(blasted["offer_documents"]),
             Committed(blasted["push_outbox_id"], TopicMessage(projections.NOTIFY_TOPIC, blasted["push"]))],
        )  # fmt: skip
    return offered


def _searching_request_for_offers(tx: Tx, request_id: str) -> Row | None:
    # FOR SHARE: an accept (which updates the row) waits for this blast to commit, so it withdraws these offers too.
    return tx.one(
        f"""SELECT r.id::text AS request_id, r.kind, r.duration_s, r.search_deadline,
                   c.display_name, c.anonymous, c.alias_number, {settings_store.CONFIG_COLUMN}
            FROM pairing_requests r JOIN clients c ON c.id = r.client_id
            WHERE r.id = CAST(:id AS uuid) AND r.status = 'searching' FOR SHARE OF r""",
        {"id": request_id},
    )


def _client_name(request: Row, config: AppConfig) -> str:
    return accounts.name_for_mitra(
        display_name=request["display_name"], anonymous=request["anonymous"], alias_number=request["alias_number"],
        mode=config.anonymity_mode,
    )  # fmt: skip


def _offer(request: Row, client_name: str) -> dict[str, Any]:
    return {"client_name": client_name, "kind": request["kind"], "duration_s": request["duration_s"],
            "minutes": request["duration_s"] // 60, "expires_at": ts(request["search_deadline"]),
            "status": "offered"}  # fmt: skip


def _offer_push(request: Row, client_name: str, *, recipients: list[str]) -> dict[str, Any]:
    return dict(projections.push(
        dedup_key=f"offer:{request['request_id']}", recipients=recipients,
        data={"type": "pairing_offer", "request_id": request["request_id"]},
        title="Ada yang ingin curhat", body=f"{client_name} menunggu, {request['duration_s'] // 60} menit",
    ).data)  # fmt: skip


def offer_searching_requests_to(tx: Tx, mitra_id: str, mitra_uid: str, config: AppConfig) -> None:
    """A mitra who just came online is offered every request still searching, at once."""
    requests = tx.all(
        """WITH added AS (
               INSERT INTO pairing_offers (request_id, mitra_id)
               SELECT r.id, CAST(:mitra AS uuid) FROM pairing_requests r
               WHERE r.status = 'searching' AND r.search_deadline > now()
               ON CONFLICT DO NOTHING RETURNING request_id)
           SELECT r.id::text AS request_id, r.kind, r.duration_s, r.search_deadline,
                  c.display_name, c.anonymous, c.alias_number
           FROM added JOIN pairing_requests r ON r.id = added.request_id JOIN clients c ON c.id = r.client_id""",
        {"mitra": mitra_id},
    )
    for request in requests:
        client_name = _client_name(request, config)
        projections.offers(tx, request["request_id"], [mitra_uid], _offer(request, client_name))
        outbox.publish(tx, projections.NOTIFY_TOPIC, _offer_push(request, client_name, recipients=[mitra_uid]))


# -- a mitra answers -------------------------------------------------------------------------------------------------


# Where a mitra's offer stands, read before the accept's transaction so that a mitra who taps after another has won
# learns it in one round trip. FOR SHARE waits for an accept that is deciding right now (it holds the request's row
# until it commits) and reads what it decided; shared with every other mitra waiting, and kept only for this one
# statement, it holds up no one.
_OFFER_STANDING = """
    SELECT o.status AS offer, r.status AS request
    FROM pairing_offers o JOIN pairing_requests r ON r.id = o.request_id JOIN mitras m ON m.id = o.mitra_id
    WHERE o.request_id = CAST(:r AS uuid) AND o.mitra_id = CAST(:m AS uuid) AND m.active
    FOR SHARE OF r
"""

# The mitra's row lock makes the capacity count in _START safe against this mitra's other accepts: that count is
# a later statement's, so it sees every session they committed.
_CLAIM = f"""
    SELECT m.firebase_uid, m.display_name, o.status AS offer, {settings_store.CONFIG_COLUMN}
    FROM mitras m JOIN pairing_offers o ON o.mitra_id = m.id AND o.request_id = CAST(:r AS uuid)
    WHERE m.id = CAST(:m AS uuid) AND m.active
    FOR UPDATE OF m
"""

# The session starts if the request is still searching and the mitra has room (pairing.has_capacity). Between
# mitras accepting at once, the unique request_id of sessions decides: the others' inserts wait for the first to
# commit, then insert nothing and hold nothing, so they all return at once. (Racing to UPDATE the request instead
# would leave each loser holding its row until it rolled back, and the losers would finish one after another.)
# The request's conditional UPDATE then refuses a start that a cancel or the search's timeout got to first.
_START = """
WITH request AS (
    SELECT r.status, r.client_id, r.kind, r.duration_s, c.firebase_uid AS client_uid,
           c.display_name AS client_display_name, c.anonymous, c.alias_number,
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
    -- The primary key on free_trials is what makes the trial once-only.
    INSERT INTO free_trials (client_id, session_id)
    SELECT client_id, CAST(:session AS uuid) FROM request, matched WHERE request.kind = 'free_trial'
)
SELECT request.*, started.started_at, started.ends_at, started.version, matched.ended_at AS matched_at
FROM request LEFT JOIN started ON true LEFT JOIN matched ON true
"""


def accept(ports: Ports, mitra_id: str, request_id: str) -> Match:
    """First come, first served, decided by PostgreSQL: one session per request, for a request still searching."""
    _refuse_if_settled(ports.db, mitra_id, request_id)
    with ports.db.transaction() as tx:
        mitra = _open_offer(tx.one(_CLAIM, {"r": request_id, "m": mitra_id}))
        config = settings_store.config_from(mitra["config"])
        session_id = str(uuid.uuid4())
        started = tx.one(
            _START,
            {"r": request_id, "m": mitra_id, "session": session_id, "max_clients": config.max_concurrent_clients},
        )
        if started is None:
            raise NotFound("no such offer")
        if started["matched_at"] is None:
            raise _not_started(started, config)
        if started["kind"] != pairing.RequestKind.FREE_TRIAL:
            credits.consume(tx, request_id)
        committed = _announce_session(tx, config, request_id, session_id, mitra_id=mitra_id, mitra=mitra,
                                      started=started)  # fmt: skip
        lifecycle.schedule_timers(
            ports.tasks, session_id=session_id, version=started["version"], started_at=started["started_at"],
            ends_at=started["ends_at"], config=config,
        )  # fmt: skip
    publish_committed(ports, committed)
    return Match(session_id=session_id, request_id=request_id, ends_at=started["ends_at"])


def _refuse_if_settled(db: Database, mitra_id: str, request_id: str) -> None:
    """Only ever refuses: who wins is decided in the transaction, under its locks."""
    standing = _open_offer(db.read_one(_OFFER_STANDING, {"r": request_id, "m": mitra_id}))
    if standing["request"] != RequestStatus.SEARCHING:
        raise _lost(standing["request"])


def _open_offer(found: Row | None) -> Row:
    """The row found for this mitra's offer, unless there is none or the mitra declined it."""
    if found is None:
        raise NotFound("no such offer")
    if found["offer"] == OfferStatus.DECLINED:
        raise Conflict("you declined this request", code="offer_declined")
    return found


def _not_started(started: Row, config: AppConfig) -> Conflict:
    """Why _START started no session, or started one that the request's UPDATE then refused."""
    if started["started_at"] is not None:  # a cancel or the timeout ended the search while this accept waited
        return _closed()
    if not pairing.has_capacity(started["open_sessions"], config.max_concurrent_clients):
        return Conflict("you are at your maximum of concurrent clients", code="capacity_reached")
    if started["status"] == RequestStatus.SEARCHING:  # as first read: another mitra's session committed meanwhile
        return _taken()
    return _lost(started["status"])


def _lost(status: str) -> Conflict:
    return _taken() if status == RequestStatus.MATCHED else _closed()


def _taken() -> Conflict:
    return Conflict("another mitra accepted first", code="already_taken")


def _closed() -> Conflict:
    return Conflict("this request is no longer searching", code="request_closed")


# Every open offer of the request withdrawn (the winner's accepted), and each one's document deleted. A statement of
# its own, after _START: if a blast was still offering the request, _START's UPDATE waited for it to commit, and
# this statement sees its offers too.
_WITHDRAW = f"""
WITH withdrawn AS (
    UPDATE pairing_offers o
    SET status = CASE WHEN o.mitra_id = CAST(:m AS uuid) THEN 'accepted' ELSE 'withdrawn' END, responded_at = now()
    FROM mitras m WHERE o.request_id = CAST(:request AS uuid) AND o.status = 'offered' AND m.id = o.mitra_id
    RETURNING m.firebase_uid
),
{projections.OfferDocuments.cte("withdrawn")}
SELECT {projections.OfferDocuments.RECORDED} AS offer_documents
"""


def _announce_session(
    tx: Tx, config: AppConfig, request_id: str, session_id: str, *, mitra_id: str, mitra: Row, started: Row
) -> list[Committed]:
    """The offers withdrawn, the client's request matched, the session's document and the client's push."""
    withdrawn = projections.OfferDocuments(request_id, "delete", {})
    recorded = tx.scalar(_WITHDRAW, {"request": request_id, "m": mitra_id, **withdrawn.params()})
    committed = withdrawn.committed(recorded)  # none when every offer was already withdrawn
    client_uid = started["client_uid"]
    out = outbox.Batch()
    projections.request_status(
        out, request_id, client_uid=client_uid, status=RequestStatus.MATCHED, at=started["matched_at"],
        extra={"session_id": session_id, "mitra": {"display_name": mitra["display_name"]}},
    )  # fmt: skip
    projections.session(
        out, session_id,
        {"status": "active", "participant_uids": [client_uid, mitra["firebase_uid"]], "client_uid": client_uid,
         "mitra_uid": mitra["firebase_uid"],
         "client_name": accounts.name_for_mitra(display_name=started["client_display_name"],
                                                anonymous=started["anonymous"], alias_number=started["alias_number"],
                                                mode=config.anonymity_mode),
         "mitra_name": mitra["display_name"], "kind": started["kind"], "started_at": ts(started["started_at"]),
         "ends_at": ts(started["ends_at"]), "version": started["version"]},
    )  # fmt: skip
    projections.notify(
        out, dedup_key=f"matched:{request_id}", recipients=[client_uid],
        data={"type": "matched", "request_id": request_id, "session_id": session_id},
        title="Bestie kamu sudah siap", body=f"{mitra['display_name']} siap mendengarkan",
    )  # fmt: skip
    return committed + out.insert(tx)


def decline(ports: Ports, mitra_id: str, request_id: str) -> None:
    with ports.db.transaction() as tx:
        declined = tx.one(
            """UPDATE pairing_offers o SET status = 'declined', responded_at = now() FROM mitras m
               WHERE o.request_id = CAST(:r AS uuid) AND o.mitra_id = CAST(:m AS uuid) AND m.id = o.mitra_id
                 AND o.status = 'offered'
               RETURNING m.firebase_uid""",
            {"r": request_id, "m": mitra_id},
        )
        if declined is None:
            exists = tx.scalar(
                "SELECT EXISTS (SELECT 1 FROM pairing_offers WHERE request_id = CAST(:r AS uuid)"
                " AND mitra_id = CAST(:m AS uuid))",
                {"r": request_id, "m": mitra_id},
            )
            if not exists:
                raise NotFound("no such offer")
            return
        projections.withdraw_offers(tx, request_id, [declined["firebase_uid"]])
    project_after_commit(ports, tx.outbox_ids)


# -- the search ends without a match ---------------------------------------------------------------------------------


def cancel(ports: Ports, client_id: str, request_id: str) -> str:
    """The client's word ends the search. Returns the request's final status."""
    with ports.db.transaction() as tx:
        owner = tx.one(
            "SELECT status FROM pairing_requests WHERE id = CAST(:r AS uuid) AND client_id = CAST(:c AS uuid)",
            {"r": request_id, "c": client_id},
        )
        if owner is None:
            raise NotFound("no such request")
        if not end_search(tx, request_id, RequestStatus.CANCELLED):
            status = tx.scalar("SELECT status FROM pairing_requests WHERE id = CAST(:r AS uuid)", {"r": request_id})
            if status == RequestStatus.MATCHED:
                raise Conflict("a mitra has already accepted this request", code="request_matched")
            return str(status)
    project_after_commit(ports, tx.outbox_ids)
    return RequestStatus.CANCELLED


def expire_search(ports: Ports, request_id: str) -> str:
    """The search window has passed with no accept: `no_mitra`. Returns what happened, for the task log."""
    with ports.db.transaction() as tx:
        request = tx.one(
            "SELECT status, search_deadline, now() AS now FROM pairing_requests WHERE id = CAST(:r AS uuid)",
            {"r": request_id},
        )
        if request is None or request["status"] != RequestStatus.SEARCHING:
            return "stale"
        if request["now"] < request["search_deadline"] - _DEADLINE_TOLERANCE:
            raise Unavailable("the search window is still open")  # fired early: Cloud Tasks retries shortly
        if not end_search(tx, request_id, RequestStatus.NO_MITRA):
            return "stale"  # a duplicate delivery, or an accept, ended it while this one waited for the row
    project_after_commit(ports, tx.outbox_ids)
    return RequestStatus.NO_MITRA


def end_search(tx: Tx, request_id: str, status: RequestStatus) -> bool:
    """End a search that is still on (cancelled, or nobody accepted): its credit released, its offers withdrawn,
    the client told. False if it had already ended."""
    ended = tx.one(
        """UPDATE pairing_requests r SET status = :status, ended_at = now()
           FROM clients c WHERE r.id = CAST(:r AS uuid) AND r.status = 'searching' AND c.id = r.client_id
           RETURNING c.firebase_uid, r.ended_at""",
        {"r": request_id, "status": status},
    )
    if ended is None:
        return False
    credits.release(tx, request_id)  # no session came of it: a paid credit stays with the client
    withdrawn = tx.all(
        """UPDATE pairing_offers o SET status = 'withdrawn', responded_at = now() FROM mitras m
           WHERE o.request_id = CAST(:r AS uuid) AND o.status = 'offered' AND m.id = o.mitra_id
           RETURNING m.firebase_uid""",
        {"r": request_id},
    )
    projections.withdraw_offers(tx, request_id, [row["firebase_uid"] for row in withdrawn])
    projections.request_status(tx, request_id, client_uid=ended["firebase_uid"], status=status, at=ended["ended_at"])
    if status is RequestStatus.NO_MITRA:
        projections.notify(
            tx, dedup_key=f"no_mitra:{request_id}", recipients=[ended["firebase_uid"]],
            data={"type": "no_mitra", "request_id": request_id},
            title="Semua Bestie sedang sibuk", body="Coba lagi sebentar lagi, ya",
        )  # fmt: skip
    return True
