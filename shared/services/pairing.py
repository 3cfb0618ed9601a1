"""Pairing: a client's request is offered to every available mitra at once; the first to accept gets the session."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from shared.adapters.db import Row, Tx
from shared.domain import accounts, pairing
from shared.domain.config import AppConfig
from shared.domain.pairing import RequestStatus
from shared.errors import Conflict, InvalidRequest, NotFound, RateLimited, Unavailable
from shared.services import credits, lifecycle, outbox, projections, settings_store
from shared.services.outbox import ts
from shared.services.ports import Ports
from shared.services.projector import project_after_commit

TIMEOUT_QUEUE = "pairing-timeouts"
TIMEOUT_HANDLER = "task_pairing_timeout"
BLAST_TOPIC = "pairing-requested"
# A timeout task that fires a little early (Cloud Tasks' own jitter) still ends the search.
_DEADLINE_TOLERANCE = timedelta(seconds=1)

# Online, heartbeat fresh, active, below capacity: who is offered a request right now.
AVAILABLE_MITRAS = """
    SELECT m.id, m.firebase_uid FROM mitras m
    WHERE m.active AND m.presence = 'online' AND m.firebase_uid IS NOT NULL
      AND m.last_heartbeat_at > now() - make_interval(secs => :grace_s)
      AND (SELECT count(*) FROM sessions s WHERE s.mitra_id = m.id AND s.status IN ('active', 'closing'))
          < :max_clients
"""


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


def _available(config: AppConfig) -> dict[str, Any]:
    return {"grace_s": config.heartbeat_grace_s, "max_clients": config.max_concurrent_clients}


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
        anyone = tx.scalar(f"SELECT EXISTS ({AVAILABLE_MITRAS})", _available(config))
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


def blast(ports: Ports, request_id: str) -> int:
    """Offer a searching request to every available mitra not yet offered it. Safe to run again: a redelivered
    message finds the offers already recorded and sends nothing twice. Returns how many new offers were made."""
    with ports.db.transaction() as tx:
        request = _searching_request_for_offers(tx, request_id)
        if request is None:
            return 0
        config = settings_store.load_config(tx)
        offered = tx.all(
            f"""WITH available AS ({AVAILABLE_MITRAS}),
                     added AS (INSERT INTO pairing_offers (request_id, mitra_id)
                               SELECT CAST(:request AS uuid), id FROM available
                               ON CONFLICT DO NOTHING RETURNING mitra_id)
                SELECT available.firebase_uid FROM added JOIN available ON available.id = added.mitra_id""",
            {"request": request_id, **_available(config)},
        )
        _offer(tx, request, config, [row["firebase_uid"] for row in offered])
    project_after_commit(ports, tx.outbox_ids)
    return len(offered)


def _searching_request_for_offers(tx: Tx, request_id: str) -> Row | None:
    # FOR SHARE: an accept (which updates the row) waits for this blast to commit, so it withdraws these offers too.
    return tx.one(
        """SELECT r.id::text AS request_id, r.kind, r.duration_s, r.search_deadline,
                  c.display_name, c.anonymous, c.alias_number
           FROM pairing_requests r JOIN clients c ON c.id = r.client_id
           WHERE r.id = CAST(:id AS uuid) AND r.status = 'searching' FOR SHARE OF r""",
        {"id": request_id},
    )


def _offer(tx: Tx, request: Row, config: AppConfig, mitra_uids: list[str]) -> None:
    client_name = accounts.name_for_mitra(
        display_name=request["display_name"], anonymous=request["anonymous"], alias_number=request["alias_number"],
        mode=config.anonymity_mode,
    )  # fmt: skip
    projections.offers(
        tx, request["request_id"], mitra_uids,
        {"client_name": client_name, "kind": request["kind"], "duration_s": request["duration_s"],
         "minutes": request["duration_s"] // 60, "expires_at": ts(request["search_deadline"]), "status": "offered"},
    )  # fmt: skip
    projections.notify(
        tx, dedup_key=f"offer:{request['request_id']}", recipients=mitra_uids,
        data={"type": "pairing_offer", "request_id": request["request_id"]},
        title="Ada yang ingin curhat", body=f"{client_name} menunggu, {request['duration_s'] // 60} menit",
    )  # fmt: skip


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
        _offer(tx, request, config, [mitra_uid])


# -- a mitra answers -------------------------------------------------------------------------------------------------


def accept(ports: Ports, mitra_id: str, request_id: str) -> Match:
    """First come, first served, decided by PostgreSQL: the conditional UPDATE has exactly one winner."""
    with ports.db.transaction() as tx:
        config = settings_store.load_config(tx)
        mitra = tx.one(
            "SELECT firebase_uid, display_name FROM mitras WHERE id = CAST(:id AS uuid) AND active FOR UPDATE",
            {"id": mitra_id},
        )  # the row lock makes the capacity check below safe against this mitra's other accepts
        offer = tx.scalar(
            "SELECT status FROM pairing_offers WHERE request_id = CAST(:r AS uuid) AND mitra_id = CAST(:m AS uuid)",
            {"r": request_id, "m": mitra_id},
        )
        if mitra is None or offer is None:
            raise NotFound("no such offer")
        if offer == "declined":
            raise Conflict("you declined this request", code="offer_declined")
        open_sessions = tx.scalar(
            "SELECT count(*) FROM sessions WHERE mitra_id = CAST(:id AS uuid) AND status IN ('active', 'closing')",
            {"id": mitra_id},
        )
        if not pairing.has_capacity(open_sessions, config.max_concurrent_clients):
            raise Conflict("you are at your maximum of concurrent clients", code="capacity_reached")
        won = tx.one(
            """UPDATE pairing_requests SET status = 'matched', mitra_id = CAST(:m AS uuid), ended_at = now()
               WHERE id = CAST(:r AS uuid) AND status = 'searching'
               RETURNING client_id::text, kind, duration_s, ended_at""",
            {"r": request_id, "m": mitra_id},
        )
        if won is None:
            raise _lost(tx, request_id)
        match = _start_session(tx, config, request_id, mitra_id=mitra_id, mitra=mitra, won=won)
        lifecycle.schedule_timers(ports.tasks, session_id=match.session_id, version=1, started_at=won["ended_at"],
                                  ends_at=match.ends_at, config=config)  # fmt: skip
    project_after_commit(ports, tx.outbox_ids)
    return match


def _lost(tx: Tx, request_id: str) -> Conflict:
    status = tx.scalar("SELECT status FROM pairing_requests WHERE id = CAST(:id AS uuid)", {"id": request_id})
    if status == RequestStatus.MATCHED:
        return Conflict("another mitra accepted first", code="already_taken")
    return Conflict("this request is no longer searching", code="request_closed")


def _start_session(tx: Tx, config: AppConfig, request_id: str, *, mitra_id: str, mitra: Row, won: Row) -> Match:
    session_id = str(uuid.uuid4())
    session = tx.one(
        """INSERT INTO sessions (id, request_id, client_id, mitra_id, kind, started_at, ends_at)
           VALUES (CAST(:id AS uuid), CAST(:r AS uuid), CAST(:c AS uuid), CAST(:m AS uuid), :kind,
                   CAST(:at AS timestamptz), CAST(:at AS timestamptz) + make_interval(secs => :duration))
           RETURNING started_at, ends_at, version""",
        {"id": session_id, "r": request_id, "c": won["client_id"], "m": mitra_id, "kind": won["kind"],
         "at": won["ended_at"], "duration": won["duration_s"]},
    )  # fmt: skip
    assert session is not None
    if won["kind"] == pairing.RequestKind.FREE_TRIAL:
        # The primary key on free_trials is what makes the trial once-only.
        tx.execute(
            "INSERT INTO free_trials (client_id, session_id) VALUES (CAST(:c AS uuid), CAST(:s AS uuid))",
            {"c": won["client_id"], "s": session_id},
        )
    else:
        credits.consume(tx, request_id)
    withdrawn = tx.all(
        """UPDATE pairing_offers o SET status = CASE WHEN o.mitra_id = CAST(:m AS uuid) THEN 'accepted' ELSE 'withdrawn'
               END, responded_at = now()
           FROM mitras m WHERE o.request_id = CAST(:r AS uuid) AND o.status = 'offered' AND m.id = o.mitra_id
           RETURNING m.firebase_uid""",
        {"r": request_id, "m": mitra_id},
    )
    client = tx.one(
        "SELECT firebase_uid, display_name, anonymous, alias_number FROM clients WHERE id = CAST(:id AS uuid)",
        {"id": won["client_id"]},
    )
    assert client is not None
    projections.withdraw_offers(tx, request_id, [row["firebase_uid"] for row in withdrawn])
    projections.request_status(
        tx, request_id, client_uid=client["firebase_uid"], status=RequestStatus.MATCHED, at=won["ended_at"],
        extra={"session_id": session_id, "mitra": {"display_name": mitra["display_name"]}},
    )  # fmt: skip
    projections.session(
        tx, session_id,
        {"status": "active", "participant_uids": [client["firebase_uid"], mitra["firebase_uid"]],
         "client_uid": client["firebase_uid"], "mitra_uid": mitra["firebase_uid"],
         "client_name": accounts.name_for_mitra(display_name=client["display_name"], anonymous=client["anonymous"],
                                                alias_number=client["alias_number"], mode=config.anonymity_mode),
         "mitra_name": mitra["display_name"], "kind": won["kind"], "started_at": ts(session["started_at"]),
         "ends_at": ts(session["ends_at"]), "version": session["version"]},
    )  # fmt: skip
    projections.notify(
        tx, dedup_key=f"matched:{request_id}", recipients=[client["firebase_uid"]],
        data={"type": "matched", "request_id": request_id, "session_id": session_id},
        title="Bestie kamu sudah siap", body=f"{mitra['display_name']} siap mendengarkan",
    )  # fmt: skip
    return Match(session_id=session_id, request_id=request_id, ends_at=session["ends_at"])


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
        if not _end_search(tx, request_id, RequestStatus.CANCELLED):
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
        if not _end_search(tx, request_id, RequestStatus.NO_MITRA):
            return "stale"  # a duplicate delivery, or an accept, ended it while this one waited for the row
    project_after_commit(ports, tx.outbox_ids)
    return RequestStatus.NO_MITRA


def _end_search(tx: Tx, request_id: str, status: RequestStatus) -> bool:
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
