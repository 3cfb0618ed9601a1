"""An outbox row keeps no words once published (docs/privacy.md), whichever way it is published: the fast path's
shared mark, the retry task's and the sweep's `mark_published`, and a deferred row another write carried. What
is delivered still carries them; an erasure's `text` deletion still reaches Firestore."""

from __future__ import annotations

import uuid
from dataclasses import replace
from typing import Any

import pytest

from emulators.stack import PROJECT, LocalStack
from shared import bootstrap
from shared.adapters.firestore import FirestoreWriter
from shared.adapters.postgres.database import Database
from shared.domain.events import DELETE_FIELD, DocumentWrite, Event
from shared.domain.notify import push
from shared.services import projector
from shared.services.ports import Ports

pytestmark = pytest.mark.needs_gcloud

WORDS = "aku capek banget hari ini"


class RecordingPublisher:
    def __init__(self) -> None:
        self.messages: list[tuple[str, bytes]] = []

    def publish(self, topic: str, data: bytes, attributes: dict[str, str]) -> str:
        self.messages.append((topic, data))
        return str(len(self.messages))

    def publish_all(self, messages: Any) -> list[str]:
        return [self.publish(topic, data, attributes) for topic, data, attributes in messages]


class RefusingWriter:
    def apply(self, events: Any) -> None:
        raise ConnectionError("firestore is unreachable")


@pytest.fixture(scope="module")
def firestore(stack: LocalStack) -> Any:
    from google.cloud import firestore

    return firestore.Client(project=PROJECT)


@pytest.fixture(scope="module")
def writer(stack: LocalStack) -> FirestoreWriter:
    """One writer for the module, its channel opened before the tests time anything."""
    warm = FirestoreWriter(PROJECT)
    warm.apply([DocumentWrite.at(f"outbox_words/{uuid.uuid4()}", {"warm": True})])
    return warm


def _events() -> tuple[str, list[Event]]:
    path = f"sessions/{uuid.uuid4()}/messages/{uuid.uuid4()}"
    document = DocumentWrite.at(path, {"text": WORDS, "seq": 1, "sender_role": "client"}, merge=False)
    session_id, message_id = path.split("/")[1], path.split("/")[3]
    preview = push(
        dedup_key=f"message:{message_id}",
        recipients=["uid-mitra"],
        data={"type": "message", "session_id": session_id, "message_id": message_id},
        title="Pesan",
        body=WORDS,
    )
    return path, [document, preview]


def _ports(db: Database, **parts: Any) -> Ports:
    return replace(bootstrap.ports_on(db), publisher=RecordingPublisher(), **parts)


def _rows(db: Database, ids: list[int]) -> list[dict[str, Any]]:
    with db.transaction() as tx:
        return tx.all("SELECT published_at, payload FROM outbox WHERE id = ANY(:ids) ORDER BY id", {"ids": ids})


def _commit(ports: Ports, events: list[Event]) -> list[int]:
    with ports.uow() as uow:
        uow.outbox.add(*events)
        committed = uow.commit()
    projector.deliver(ports, committed)
    return [row.outbox_id for row in committed]


def test_the_fast_path_delivers_the_words_and_its_mark_drops_them(
    db: Database, firestore: Any, writer: FirestoreWriter
) -> None:
    path, events = _events()
    ports = _ports(db, documents=writer)

    ids = _commit(ports, events)

    assert firestore.document(path).get().to_dict()["text"] == WORDS
    assert WORDS.encode() in ports.publisher.messages[0][1]  # type: ignore[attr-defined]
    document, preview = _rows(db, ids)
    assert document["published_at"] is not None and preview["published_at"] is not None
    assert document["payload"]["data"] == {"seq": 1, "sender_role": "client"}
    assert "body" not in preview["payload"]["data"] and preview["payload"]["data"]["title"] == "Pesan"


def test_the_sweep_delivers_pending_words_and_its_mark_drops_them(
    db: Database, firestore: Any, writer: FirestoreWriter
) -> None:
    path, events = _events()
    ids = _commit(_ports(db, documents=RefusingWriter()), events)
    pending = _rows(db, ids)
    assert all(row["published_at"] is None for row in pending) and pending[0]["payload"]["data"]["text"] == WORDS

    swept = projector.project(_ports(db, documents=writer), ids=ids)

    assert swept.published == 2
    assert firestore.document(path).get().to_dict()["text"] == WORDS
    assert all(WORDS not in str(row["payload"]) for row in _rows(db, ids))


def test_an_erasure_still_deletes_the_text_and_keeps_nothing_of_it(
    db: Database, firestore: Any, writer: FirestoreWriter
) -> None:
    path, events = _events()
    ports = _ports(db, documents=writer)
    _commit(ports, events[:1])

    (erasure,) = _commit(ports, [DocumentWrite.at(path, {"text": DELETE_FIELD, "erased": True})])

    assert firestore.document(path).get().to_dict() == {"seq": 1, "sender_role": "client", "erased": True}
    assert _rows(db, [erasure])[0]["payload"]["data"] == {"erased": True}


def test_a_deferred_row_another_write_carried_keeps_no_words(db: Database) -> None:
    _, events = _events()
    ports = _ports(db)
    with ports.uow() as uow:
        row_id = uow.outbox.add_deferred(events[0], delay_s=60)
        uow.commit()
    with ports.uow() as uow:
        assert uow.outbox.mark_published_if_unchanged(row_id, events[0])
        uow.commit()

    (row,) = _rows(db, [row_id])
    assert row["published_at"] is not None and "text" not in row["payload"]["data"]


def test_a_keyed_push_keeps_neither_its_body_nor_the_params_its_texts_are_filled_from(
    db: Database, writer: FirestoreWriter
) -> None:
    session_id, message_id = str(uuid.uuid4()), str(uuid.uuid4())
    preview = push(
        dedup_key=f"message:{message_id}",
        recipients=["uid-client"],
        data={"type": "message", "session_id": session_id, "message_id": message_id},
        text_key="push.message_preview",
        params={"preview": WORDS},
    )
    ports = _ports(db, documents=writer)

    ids = _commit(ports, [preview])

    assert WORDS.encode() in ports.publisher.messages[0][1]  # type: ignore[attr-defined]
    (row,) = _rows(db, ids)
    assert row["published_at"] is not None and WORDS not in str(row["payload"])
    assert row["payload"]["data"]["text_key"] == "push.message_preview", "what it was stays"
