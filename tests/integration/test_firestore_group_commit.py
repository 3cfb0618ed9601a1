"""The Firestore writer's group commit, against the emulator: concurrent small writes share commits, none is lost,
writes to one document keep their order, and a failed commit fails every write it carried (never silently).

Every test runs on both ways of sending (HALO_PUBLIC_CLIENT_API): the fast path on the client's private attributes,
and the library's public batch API."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from emulators.stack import PROJECT, LocalStack
from shared.adapters.firestore import BATCH_LIMIT, GROUP_MAX_OPS, FirestoreWriter
from shared.domain.events import DocumentWrite

pytestmark = pytest.mark.needs_gcloud


class CountingWriter(FirestoreWriter):
    """Counts the commits actually sent, and how many writes each carried."""

    def __init__(self, *, public_api: bool) -> None:
        super().__init__(PROJECT, public_api=public_api)
        self.commits: list[int] = []
        self._count_lock = threading.Lock()

    def _commit_writes(self, writes: list[Any]) -> None:
        super()._commit_writes(writes)
        with self._count_lock:
            self.commits.append(len(writes))


@pytest.fixture(params=[False, True], ids=["fast-path", "public-api"])
def writer(stack: LocalStack, request: pytest.FixtureRequest) -> CountingWriter:
    return CountingWriter(public_api=request.param)


@pytest.fixture(scope="module")
def client(stack: LocalStack) -> Iterator[Any]:
    from google.cloud import firestore

    db = firestore.Client(project=PROJECT)
    yield db
    db.close()


def test_a_lone_write_is_committed_at_once(writer: CountingWriter, client: Any) -> None:
    path = f"group/{uuid.uuid4().hex}"

    writer.apply([DocumentWrite.at(path, {"n": 1}, merge=False)])

    assert writer.commits == [1]
    assert client.document(path).get().to_dict() == {"n": 1}


def test_concurrent_writes_share_commits_and_all_land(writer: CountingWriter, client: Any) -> None:
    run = uuid.uuid4().hex
    paths = [f"group_{run}/{n}" for n in range(200)]

    def write(path: str) -> None:
        writer.apply([DocumentWrite.at(path, {"path": path}, merge=False)])

    with ThreadPoolExecutor(32) as pool:
        list(pool.map(write, paths))

    stored = {doc.id: doc.to_dict() for doc in client.collection(f"group_{run}").stream()}
    assert len(stored) == 200, "no write is lost"
    assert all(stored[path.split("/")[1]] == {"path": path} for path in paths)
    assert sum(writer.commits) == 200
    assert len(writer.commits) < 200, f"writes under load shared commits: {len(writer.commits)} commits"
    assert max(writer.commits) <= BATCH_LIMIT


def test_writes_to_one_document_land_in_order(writer: CountingWriter, client: Any) -> None:
    path = f"group/{uuid.uuid4().hex}"
    lock = threading.Lock()
    order: list[int] = []

    def write(n: int) -> None:
        with lock:  # arrival order is known: each write enters the queue before the next starts
            order.append(n)
            writer.apply([DocumentWrite.at(path, {"last": n, f"seen_{n}": True})])

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(write, range(40)))

    doc = client.document(path).get().to_dict()
    assert doc["last"] == order[-1], "the last write to arrive is the one that stays"
    assert all(doc[f"seen_{n}"] for n in range(40))


class HeldGroup:
    """Writes to one fresh collection through `writer`, its first commit held until `release`: the writes queued
    meanwhile go out together in the next group. Records each write's outcome by name."""

    def __init__(self, writer: CountingWriter) -> None:
        self.run = uuid.uuid4().hex
        self.writer = writer
        self.results: dict[str, str] = {}
        self._gate = threading.Event()
        self._threads: list[threading.Thread] = []
        original = writer._commit_writes

        def held_then_real(writes: list[Any]) -> None:
            self._gate.wait(timeout=5)
            original(writes)

        writer._commit_writes = held_then_real  # type: ignore[method-assign]

    def write(self, name: str, data: dict[str, Any]) -> None:
        try:
            self.writer.apply([DocumentWrite.at(f"group_{self.run}/{name}", data, merge=False)])
            self.results[name] = "ok"
        except Exception as exc:
            self.results[name] = type(exc).__name__

    def start(self, writes: dict[str, dict[str, Any]]) -> None:
        """Each write on a thread of its own; returns once the first is held or the rest queued behind it."""
        for name, data in writes.items():
            thread = threading.Thread(target=self.write, args=(name, data))
            thread.start()
            self._threads.append(thread)
        if len(self._threads) == len(writes):
            while not self.writer._group.busy():
                pass
        else:
            while self.writer._group.waiting() < len(writes):
                pass

    def release(self) -> None:
        self._gate.set()
        for thread in self._threads:
            thread.join(timeout=10)

    def stored(self, client: Any) -> set[str]:
        return {doc.id for doc in client.collection(f"group_{self.run}").stream()}


def test_a_failed_commit_fails_every_write_it_carried(writer: CountingWriter, client: Any) -> None:
    held = HeldGroup(writer)
    held.start({"first": {"n": 1}})
    # These queue behind the first commit and go out together; one of them is invalid for Firestore.
    held.start({**{f"later{n}": {"n": n} for n in range(3)}, "bad": {"__bad__": "Firestore refuses a reserved name"}})
    held.release()

    assert held.results["first"] == "ok"
    failed = {name for name, outcome in held.results.items() if outcome != "ok"}
    assert failed == {"later0", "later1", "later2", "bad"}, held.results
    assert held.stored(client) == {"first"}, "the failed commit wrote nothing"


def test_a_large_write_goes_in_batches_of_its_own(writer: CountingWriter, client: Any) -> None:
    run = uuid.uuid4().hex
    ops = [DocumentWrite.at(f"group_{run}/{n}", {"n": n}, merge=False) for n in range(GROUP_MAX_OPS + BATCH_LIMIT)]

    writer.apply(ops)

    assert writer.commits == [BATCH_LIMIT, GROUP_MAX_OPS]
    assert sum(1 for _ in client.collection(f"group_{run}").stream()) == len(ops)


def test_a_document_firestore_cannot_store_fails_its_caller_alone(writer: CountingWriter, client: Any) -> None:
    held = HeldGroup(writer)
    held.start({"first": {"n": 1}})
    held.start({f"later{n}": {"n": n} for n in range(3)})
    held.write("unstorable", {"what": object()})  # refused on its own thread, before it could join the group
    held.release()

    assert held.results == {"first": "ok", "later0": "ok", "later1": "ok", "later2": "ok", "unstorable": "TypeError"}
    assert held.stored(client) == {"first", "later0", "later1", "later2"}
    assert writer.commits == [1, 3]
