"""Late writes against the Firestore emulator (shared/domain/projection.py): a versioned document keeps the newest of
each field whatever order its writes land in, also when a late write read the document before a newer one changed
it (its conditional commit fails and it reads again), and a message is created once, so a create that comes after
the erasure of its text does not bring the text back.

Every test runs on both ways of sending (HALO_PUBLIC_CLIENT_API)."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from emulators.stack import PROJECT, LocalStack
from shared.adapters.firestore import FirestoreWriter, _Found
from shared.domain.events import DELETE_FIELD, DocumentWrite
from shared.domain.projection import VERSIONS_FIELD

pytestmark = pytest.mark.needs_gcloud

PATHS = pytest.mark.parametrize("public_api", [False, True], ids=["fast-path", "public-api"])


class HeldWriter(FirestoreWriter):
    """Holds its first read of `held` until released: a write that has read the document and not yet committed,
    as a slow or retried delivery is. Counts reads."""

    def __init__(self, held: str, *, public_api: bool) -> None:
        super().__init__(PROJECT, public_api=public_api)
        self._held = held
        self.has_read = threading.Event()
        self.release = threading.Event()
        self.reads = 0

    def _read(self, paths: list[str]) -> dict[str, _Found | None]:
        found = super()._read(paths)
        self.reads += 1
        if self._held in paths and not self.has_read.is_set():
            self.has_read.set()
            assert self.release.wait(10)
        return found


@pytest.fixture(scope="module")
def client(stack: LocalStack) -> Iterator[Any]:
    from google.cloud import firestore

    db = firestore.Client(project=PROJECT)
    yield db
    db.close()


def _session() -> str:
    return f"sessions/{uuid.uuid4()}"


def _started(path: str) -> DocumentWrite:
    return DocumentWrite.at(
        path, {"status": "active", "participant_uids": ["client", "mitra-1"], "mitra_name": "Anisa", "kind": "paid"}
    )


def _rerouted(path: str) -> DocumentWrite:
    return DocumentWrite.at(path, {"participant_uids": ["client", "mitra-2"], "mitra_name": "Budi"})


@PATHS
def test_a_write_that_lands_late_keeps_only_what_nothing_newer_set(public_api: bool, client: Any) -> None:
    writer, path = FirestoreWriter(PROJECT, public_api=public_api), _session()

    writer.apply([_rerouted(path)], [20])
    writer.apply([_started(path)], [10])

    document = client.document(path).get().to_dict()
    assert document["participant_uids"] == ["client", "mitra-2"]
    assert document["mitra_name"] == "Budi"
    assert (document["status"], document["kind"]) == ("active", "paid"), "the late write's other fields land"
    assert document[VERSIONS_FIELD]["participant_uids"] == 20


@PATHS
def test_a_write_held_after_reading_loses_to_the_newer_one_that_landed_meanwhile(public_api: bool, client: Any) -> None:
    path = _session()
    FirestoreWriter(PROJECT, public_api=public_api).apply([_started(path)], [10])
    late = HeldWriter(path, public_api=public_api)
    stale = DocumentWrite.at(path, {"participant_uids": ["client", "mitra-1"], "status": "closing"})
    held = threading.Thread(target=late.apply, args=([stale], [15]))
    held.start()
    assert late.has_read.wait(10)

    FirestoreWriter(PROJECT, public_api=public_api).apply([_rerouted(path)], [20])
    late.release.set()
    held.join(10)

    document = client.document(path).get().to_dict()
    assert document["participant_uids"] == ["client", "mitra-2"], "the held write did not put the old mitra back"
    assert document["status"] == "closing", "what nothing newer set still landed"
    assert late.reads == 2, "its conditional commit failed and it read the document again"


@PATHS
def test_a_message_is_created_once_and_a_late_create_brings_no_erased_text_back(public_api: bool, client: Any) -> None:
    writer = FirestoreWriter(PROJECT, public_api=public_api)
    path = f"{_session()}/messages/{uuid.uuid4()}"
    create = DocumentWrite.at(path, {"text": "rahasia", "seq": 1}, merge=False)
    erase = DocumentWrite.at(path, {"text": DELETE_FIELD, "erased": True})

    writer.apply([create], [1])
    writer.apply([erase], [2])
    writer.apply([create], [1])  # delivered again, after the erasure

    assert client.document(path).get().to_dict() == {"seq": 1, "erased": True}


@PATHS
def test_a_create_already_done_does_not_fail_the_writes_sharing_its_commit(public_api: bool, client: Any) -> None:
    """The projector's batch: a message delivered again beside writes that are new."""
    writer = FirestoreWriter(PROJECT, public_api=public_api)
    session = _session()
    old, new = f"{session}/messages/{uuid.uuid4()}", f"{session}/messages/{uuid.uuid4()}"
    writer.apply([DocumentWrite.at(old, {"text": "pertama"}, merge=False)], [1])
    others = [DocumentWrite.at(f"group/{uuid.uuid4()}", {"n": n}) for n in range(12)]

    again, first = DocumentWrite.at(old, {"text": "pertama"}, merge=False), DocumentWrite.at(new, {"text": "kedua"})
    writer.apply([again, DocumentWrite(first.paths, first.data, merge=False), *others], [1, 2, *range(3, 15)])

    assert client.document(new).get().to_dict() == {"text": "kedua"}
    assert all(client.document(event.paths[0]).get().exists for event in others)


@PATHS
def test_versioned_writes_to_a_document_that_does_not_exist_yet_race_to_create_it(
    public_api: bool, client: Any
) -> None:
    # A versioned collection no document model describes, so each writer may set a field of its own.
    path = f"revocations/{uuid.uuid4()}"
    writers = [FirestoreWriter(PROJECT, public_api=public_api) for _ in range(4)]
    events = [DocumentWrite.at(path, {"status": f"s{n}", f"field_{n}": n}) for n in range(4)]
    threads = [
        threading.Thread(target=writer.apply, args=([event], [n + 1]))
        for n, (writer, event) in enumerate(zip(writers, events, strict=True))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)

    document = client.document(path).get().to_dict()
    assert document["status"] == "s3"
    assert [document[f"field_{n}"] for n in range(4)] == [0, 1, 2, 3]
