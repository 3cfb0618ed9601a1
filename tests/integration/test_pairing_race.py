"""First come, first served, decided by PostgreSQL: races against a real server."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from emulators.stack import LocalStack
from shared import bootstrap
from shared.adapters.postgres.database import Database
from shared.errors import Conflict
from shared.services import pairing
from shared.services.ports import Ports
from tests.support import world

pytestmark = pytest.mark.needs_gcloud


@pytest.fixture
def ports(stack: LocalStack, db: Database) -> Iterator[Ports]:
    """The real adapters, on this test's own database, with a pool as large as the race (as 50 instances would be)."""
    pooled = Database(db._connect, max_idle=64)
    yield bootstrap.ports_on(pooled)
    pooled.close()


@pytest.fixture(scope="module")
def workers() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(64) as pool:
        yield pool


def _race(ports: Ports, workers: ThreadPoolExecutor, mitra_ids: list[str], request_ids: list[str]) -> list[str]:
    """Every (mitra, request) pair accepts at the same instant; returns each outcome's code."""
    pairs = [(m, r) for m in mitra_ids for r in request_ids]
    start = threading.Barrier(len(pairs))

    def accept(pair: tuple[str, str]) -> str:
        start.wait()
        try:
            pairing.accept(ports, *pair)
        except Conflict as lost:
            return lost.code
        return "won"

    return list(workers.map(accept, pairs))


@pytest.mark.timeout(600)
def test_fifty_mitras_racing_for_one_request_always_make_exactly_one_winner(
    ports: Ports, db: Database, workers: ThreadPoolExecutor
) -> None:
    mitras = world.add_online_mitras(db, 50)
    for trial in range(1000):
        request_id = world.add_searching_request(db, world.add_client(db), mitras)

        outcomes = Counter(_race(ports, workers, mitras, [request_id]))

        assert outcomes == Counter({"won": 1, "already_taken": 49}), f"trial {trial}: {outcomes}"
        with db.transaction() as tx:
            assert (
                tx.scalar("SELECT count(*) FROM sessions WHERE request_id = CAST(:r AS uuid)", {"r": request_id}) == 1
            )
            # Close it so no mitra reaches capacity over the trials.
            tx.execute("UPDATE sessions SET status = 'closed' WHERE request_id = CAST(:r AS uuid)", {"r": request_id})


def test_one_mitra_accepting_many_requests_at_once_never_exceeds_capacity(
    ports: Ports, db: Database, workers: ThreadPoolExecutor
) -> None:
    """Default max_concurrent_clients is 3: of ten simultaneous accepts by one mitra exactly three win."""
    mitra = world.add_online_mitras(db, 1)
    requests = [world.add_searching_request(db, world.add_client(db), mitra) for _ in range(10)]

    outcomes = Counter(_race(ports, workers, mitra, requests))

    assert outcomes == Counter({"won": 3, "capacity_reached": 7})
    with db.transaction() as tx:
        open_sessions = tx.scalar(
            "SELECT count(*) FROM sessions WHERE mitra_id = CAST(:m AS uuid) AND status = 'active'", {"m": mitra[0]}
        )
    assert open_sessions == 3


def test_a_redelivered_blast_offers_and_pushes_nothing_twice(ports: Ports, db: Database) -> None:
    world.add_online_mitras(db, 3)
    request_id = world.add_searching_request(db, world.add_client(db), [])

    first, again = pairing.blast(ports, request_id), pairing.blast(ports, request_id)

    assert (first, again) == (3, 0)
    with db.transaction() as tx:
        offers = tx.scalar("SELECT count(*) FROM pairing_offers WHERE request_id = CAST(:r AS uuid)", {"r": request_id})
        offer_docs = tx.scalar(  # one row writes every offer document of a blast
            """SELECT coalesce(sum(jsonb_array_length(payload -> 'paths')), 0) FROM outbox
               WHERE kind = 'firestore' AND destination LIKE :p""",
            {"p": f"%/offers/{request_id}"},
        )
        pushes = tx.scalar(
            """SELECT count(*) FROM outbox
               WHERE kind = 'pubsub' AND destination = 'notify' AND payload->'data'->>'dedup_key' = :k""",
            {"k": f"offer:{request_id}"},
        )
    assert (offers, offer_docs, pushes) == (3, 3, 1)


def test_a_blast_for_a_request_that_ended_offers_nothing(ports: Ports, db: Database) -> None:
    world.add_online_mitras(db, 2)
    request_id = world.add_searching_request(db, world.add_client(db), [])
    with db.transaction() as tx:
        tx.execute("UPDATE pairing_requests SET status = 'cancelled' WHERE id = CAST(:r AS uuid)", {"r": request_id})

    assert pairing.blast(ports, request_id) == 0


def test_a_blast_racing_an_accept_that_fills_a_mitra_leaves_them_no_offer(ports: Ports, db: Database) -> None:
    """The accept of another request holds a mitra's row and fills their one slot while the blast decides: the blast
    saw them available (the accept had not committed), and its offer waits on that row. Once the accept commits, the
    offer is withdrawn before anyone is told of it, and made again when the slot frees. The other mitra is offered
    the request as usual."""
    full, free = world.add_online_mitras(db, 2)
    first = world.add_searching_request(db, world.add_client(db), [full])
    second = world.add_searching_request(db, world.add_client(db), [])
    with db.transaction() as tx:
        tx.execute("UPDATE mitras SET max_concurrent_clients = 1 WHERE id = CAST(:m AS uuid)", {"m": full})
        uids = {
            row["id"]: row["firebase_uid"]
            for row in tx.all(
                "SELECT id::text, firebase_uid FROM mitras WHERE id = ANY(CAST(:m AS uuid[]))", {"m": [full, free]}
            )
        }
    outcome: list[int | BaseException] = []

    with db.transaction() as accept:  # what pairing_accept holds while it decides (_CLAIM, _START)
        accept.execute("SELECT 1 FROM mitras WHERE id = CAST(:m AS uuid) FOR UPDATE", {"m": full})
        accept.execute(
            """INSERT INTO sessions (request_id, client_id, mitra_id, kind, ends_at)
               SELECT id, client_id, CAST(:m AS uuid), kind, now() + interval '15 minutes'
               FROM pairing_requests WHERE id = CAST(:r AS uuid)""",
            {"m": full, "r": first},
        )

        def blast() -> None:
            try:
                outcome.append(pairing.blast(ports, second))
            except BaseException as exc:
                outcome.append(exc)

        blasting = threading.Thread(target=blast)
        blasting.start()
        _wait_until_a_statement_waits_on_a_lock(db, "pairing_offers")
        # the accept commits as the block ends

    blasting.join(timeout=30)
    assert outcome == [1], "only the mitra with room was offered the second request"
    assert _offer_status(db, second, full) == "withdrawn"
    assert _offer_status(db, second, free) == "offered"
    with db.transaction() as tx:
        told = tx.all(
            """SELECT kind, destination || payload::text AS said FROM outbox
               WHERE (kind = 'firestore' AND destination LIKE :doc) OR payload->'data'->>'dedup_key' = :push""",
            {"doc": f"%/offers/{second}", "push": f"offer:{second}"},
        )
    assert sorted(row["kind"] for row in told) == ["firestore", "pubsub"], "one offer document write, one push"
    assert all(uids[free] in row["said"] and uids[full] not in row["said"] for row in told)

    with db.transaction() as tx:
        tx.execute("UPDATE sessions SET status = 'closed' WHERE request_id = CAST(:r AS uuid)", {"r": first})
    assert pairing.offer_freed_slot(ports, full) > 0
    assert _offer_status(db, second, full) == "offered", "the slot freed: the request still searching is offered"


def _offer_status(db: Database, request_id: str, mitra_id: str) -> str | None:
    with db.transaction() as tx:
        return tx.scalar(  # type: ignore[no-any-return]
            "SELECT status FROM pairing_offers WHERE request_id = CAST(:r AS uuid) AND mitra_id = CAST(:m AS uuid)",
            {"r": request_id, "m": mitra_id},
        )


def _wait_until_a_statement_waits_on_a_lock(db: Database, table: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with db.transaction() as tx:
            waiting = tx.scalar(
                """SELECT count(*) FROM pg_stat_activity
                   WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE :q""",
                {"q": f"%{table}%"},
            )
        if waiting:
            return
        time.sleep(0.01)
    raise TimeoutError(f"no statement on {table} came to wait on a lock")
