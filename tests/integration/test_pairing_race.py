"""First come, first served, decided by PostgreSQL: races against a real server."""

from __future__ import annotations

import threading
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
