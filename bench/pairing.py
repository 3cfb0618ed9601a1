"""Pairing: `pairing_accept` alone and with 50 mitras racing for one request; the blast to 1,000 online mitras.

The services run in-process on the real adapters (`shared.adapters.runtime`) against the stack's database, as
tests/integration/test_pairing_race.py does; states are arranged with SQL. Every accept includes its projection
(Firestore documents, the push published), since the caller waits for it.
Targets (TARGETS.md): p99 of 50 racing accepts ≤ 5x the uncontended p50, exactly one winner always; blast to
1,000 online mitras ≤ 1.3x a raw batched write of the same 1,000 offer documents.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

from bench import _stack
from bench._stack import PgCounter, Timed, p50, percentile, verdict

UNCONTENDED_TRIALS = 50
RACERS = 50
CONTENDED_TRIALS = 30
BLAST_MITRAS = 1000
BLAST_TRIALS = 5
TARGET_CONTENTION = 5.0
TARGET_BLAST = 1.3


def run() -> str:
    skipped = _stack.skip_without_gcloud()
    if skipped:
        return skipped
    _stack.stack()
    _stack.quiet_world()
    counter = PgCounter()
    ports = _stack.service_ports(counter=counter)
    try:
        return "\n\n".join([_accepts(ports, counter), _blast(ports, counter)])
    finally:
        ports.db.close()


# -- accept ----------------------------------------------------------------------------------------------------------


def _accept(ports: Any, mitra_id: str, request_id: str) -> tuple[str, float]:
    from shared.errors import Conflict
    from shared.services import pairing

    started = time.perf_counter()
    try:
        pairing.accept(ports, mitra_id, request_id)
        outcome = "won"
    except Conflict as lost:
        outcome = lost.code
    return outcome, (time.perf_counter() - started) * 1000


def _close_session(db: Any, request_id: str) -> None:
    """So no mitra reaches its capacity over many trials."""
    with db.transaction() as tx:
        tx.execute("UPDATE sessions SET status = 'closed' WHERE request_id = CAST(:r AS uuid)", {"r": request_id})


def _accepts(ports: Any, counter: PgCounter) -> str:
    db = _stack.halo_db()
    alone = _stack.sql_online_mitras(db, 1)[0]
    racers = _stack.sql_online_mitras(db, RACERS)
    uncontended: list[float] = []
    contended: list[float] = []
    winners: list[int] = []
    wire: list[int] = []
    statements: list[int] = []
    try:
        for trial in range(3 + UNCONTENDED_TRIALS):  # 3 warm-up trials
            request_id = _stack.sql_searching_request(db, _stack.sql_client(db), [alone])
            counter.reset()
            outcome, ms = _accept(ports, alone, request_id)
            if outcome != "won":
                raise RuntimeError(f"an uncontended accept lost: {outcome}")
            if trial >= 3:
                uncontended.append(ms)
                wire.append(counter.wire)
                statements.append(len(counter.statements))
            _close_session(db, request_id)

        with ThreadPoolExecutor(RACERS) as pool:
            for trial in range(1 + CONTENDED_TRIALS):  # the first opens every racer's connection
                request_id = _stack.sql_searching_request(db, _stack.sql_client(db), racers)
                start = threading.Barrier(RACERS)

                def race(mitra_id: str, request_id: str = request_id, start: threading.Barrier = start) -> Any:
                    start.wait()
                    return _accept(ports, mitra_id, request_id)

                results = list(pool.map(race, racers))
                outcomes = Counter(outcome for outcome, _ in results)
                if trial >= 1:
                    contended.extend(ms for _, ms in results)
                    winners.append(outcomes["won"])
                    if outcomes["won"] + outcomes["already_taken"] != RACERS:
                        raise RuntimeError(f"unexpected outcomes in trial {trial}: {dict(outcomes)}")
                _close_session(db, request_id)
    finally:
        _stack.sql_offline(db, [alone, *racers])

    base = p50(uncontended)
    ratio = percentile(contended, 99) / base
    exactly_one = sum(1 for won in winners if won == 1)
    return "\n".join(
        [
            "pairing_accept (service in-process, real adapters; each call includes its projection)",
            f"{'':<44} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}",
            f"{f'uncontended, {UNCONTENDED_TRIALS} trials':<44} {base:>8.1f} {percentile(uncontended, 99):>8.1f} "
            f"{max(uncontended):>8.1f}",
            f"{f'{RACERS} mitras at once, {CONTENDED_TRIALS} trials (all calls)':<44} {p50(contended):>8.1f} "
            f"{percentile(contended, 99):>8.1f} {max(contended):>8.1f}",
            f"an uncontended accept: {p50(statements):.0f} PostgreSQL statements, {p50(wire):.0f} wire round trips "
            "(both transactions: the accept and its projection)",
            f"p99(contended)/p50(uncontended) = {ratio:.1f}x  (target ≤ {TARGET_CONTENTION:g}x)  "
            f"{verdict(ratio <= TARGET_CONTENTION)}",
            f"exactly one winner: {exactly_one}/{len(winners)} trials  {verdict(exactly_one == len(winners))}",
        ]
    )


# -- blast -----------------------------------------------------------------------------------------------------------


def _offer_document(request_id: str, expires_at: Any) -> dict[str, Any]:
    """What the blast writes for each mitra (shared/services/pairing.py::_offer), for the raw write to match."""
    return {"request_id": request_id, "client_name": "Klien Bench", "kind": "free_trial", "duration_s": 900,
            "minutes": 15, "expires_at": expires_at, "status": "offered"}  # fmt: skip


def _raw_write(client: Any, uids: list[str]) -> float:
    """google-cloud-firestore's own batches of 500: the same 1,000 documents, two commits."""
    from datetime import UTC, datetime, timedelta

    request_id = str(uuid.uuid4())
    data = _offer_document(request_id, datetime.now(UTC) + timedelta(seconds=60))
    started = time.perf_counter()
    for first in range(0, len(uids), 500):
        batch = client.batch()
        for uid in uids[first : first + 500]:
            batch.set(client.document(f"mitras/{uid}/offers/{request_id}"), data, merge=True)
        batch.commit()
    return (time.perf_counter() - started) * 1000


def _blast(ports: Any, counter: PgCounter) -> str:
    from shared.adapters import runtime
    from shared.services import pairing

    db = _stack.halo_db()
    _stack.quiet_world()
    mitras = _stack.sql_online_mitras(db, BLAST_MITRAS)
    with db.transaction() as tx:
        uids = [
            row["firebase_uid"]
            for row in tx.all("SELECT firebase_uid FROM mitras WHERE id = ANY(CAST(:m AS uuid[]))", {"m": mitras})
        ]
    client = runtime.firestore().client
    documents, publisher = Timed(ports.documents, "apply"), Timed(ports.publisher, "publish")
    timed_ports = replace(ports, documents=documents, publisher=publisher)
    blasts: list[float] = []
    parts: dict[str, list[float]] = {"firestore": [], "pubsub": [], "postgres": []}
    wire: list[int] = []
    statements: list[int] = []
    raws: list[float] = []
    offered: list[int] = []
    requests: list[str] = []
    try:
        _raw_write(client, uids)  # warm: the documents' parents exist alike for both, channels open
        for _ in range(BLAST_TRIALS):
            raws.append(_raw_write(client, uids))
            with db.transaction() as tx:
                tx.execute("UPDATE mitras SET last_heartbeat_at = now() WHERE id = ANY(CAST(:m AS uuid[]))",
                           {"m": mitras})  # fmt: skip
            request_id = _stack.sql_searching_request(db, _stack.sql_client(db), [])
            requests.append(request_id)
            documents.seconds = publisher.seconds = 0.0
            counter.reset()
            started = time.perf_counter()
            offered.append(pairing.blast(timed_ports, request_id))
            blasts.append((time.perf_counter() - started) * 1000)
            parts["firestore"].append(documents.seconds * 1000)
            parts["pubsub"].append(publisher.seconds * 1000)
            parts["postgres"].append(counter.seconds * 1000)
            wire.append(counter.wire)
            statements.append(len(counter.statements))
        with db.transaction() as tx:
            pending = tx.scalar(
                "SELECT count(*) FROM outbox WHERE published_at IS NULL AND destination LIKE ANY(:p)",
                {"p": [f"%/offers/{request_id}" for request_id in requests]},
            )
    finally:
        _stack.sql_offline(db, mitras)
        with db.transaction() as tx:
            tx.execute(
                "UPDATE pairing_requests SET status = 'cancelled', ended_at = now() WHERE id = ANY(CAST(:r AS uuid[]))",
                {"r": requests},
            )
    ratio = p50(blasts) / p50(raws)
    rest = [total - sum(part[n] for part in parts.values()) for n, total in enumerate(blasts)]
    return "\n".join(
        [
            f"blast to {BLAST_MITRAS:,} online mitras ({BLAST_TRIALS} trials each, interleaved; median)",
            f"{'':<58} {'p50 ms':>8} {'min ms':>8} {'max ms':>8}",
            f"{'raw: firestore batch() of 500, 2 commits, 1,000 offer docs':<58} {p50(raws):>8.0f} "
            f"{min(raws):>8.0f} {max(raws):>8.0f}",
            f"{'pairing.blast (SQL, outbox, projection, push published)':<58} {p50(blasts):>8.0f} "
            f"{min(blasts):>8.0f} {max(blasts):>8.0f}",
            f"  of which (medians): Firestore commits {p50(parts['firestore']):.0f} ms, PostgreSQL "
            f"{p50(parts['postgres']):.0f} ms (incl. pg8000 decoding) in {p50(statements):.0f} statements "
            f"({p50(wire):.0f} wire round trips), "
            f"Pub/Sub publish {p50(parts['pubsub']):.0f} ms, the rest (Python: outbox rows, documents) "
            f"{p50(rest):.0f} ms",
            f"offers made per blast: {sorted(set(offered))}; offer rows left unpublished afterwards: {pending}",
            f"blast / raw = {ratio:.2f}x  (target ≤ {TARGET_BLAST}x)  {verdict(ratio <= TARGET_BLAST)}",
        ]
    )


if __name__ == "__main__":
    print(run())
