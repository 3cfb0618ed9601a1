"""The outbox projector against real PostgreSQL, the Firestore and Pub/Sub emulators, Cloud Tasks and the gateway.

Failures are injected with a DocumentWriter that refuses to write: a fault in the part we do not own, not a
stand-in for Firestore. Everything that does get written goes to the real emulators.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from emulators.stack import PROJECT, TASKS_SERVICE_ACCOUNT, LocalStack
from shared import bootstrap
from shared.adapters.cloud_tasks import CloudTasksScheduler
from shared.adapters.firestore import FirestoreWriter
from shared.adapters.postgres.database import Database
from shared.adapters.postgres.outbox import PublishedMarks
from shared.adapters.pubsub import PubSubPublisher
from shared.domain.events import (
    DELETE_FIELD,
    Committed,
    DocumentDelete,
    DocumentEvent,
    DocumentWrite,
    Event,
    TopicMessage,
    ts,
)
from shared.domain.projection import VERSIONS_FIELD
from shared.services import projector
from shared.services.ports import DocumentWriter, Ports, Publisher
from tests.integration.pubsub_pull import pull

pytestmark = pytest.mark.needs_gcloud


class RefusingWriter:
    """A DocumentWriter whose every batch fails, as Firestore does when it is unreachable."""

    def __init__(self) -> None:
        self.calls = 0

    def apply(self, events: Sequence[DocumentEvent], versions: Sequence[int | None] | None = None) -> None:
        self.calls += 1
        raise ConnectionError("firestore is unreachable")


class CountingWriter:
    """The real writer, counting how often each document path is written."""

    def __init__(self, inner: FirestoreWriter) -> None:
        self._inner = inner
        self._lock = threading.Lock()
        self.writes: Counter[str] = Counter()

    def apply(self, events: Sequence[DocumentEvent], versions: Sequence[int | None] | None = None) -> None:
        self._inner.apply(events, versions)
        with self._lock:
            self.writes.update(path for event in events for path in event.paths)


class CountingPublisher:
    def __init__(self, inner: PubSubPublisher) -> None:
        self._inner = inner
        self._lock = threading.Lock()
        self.published: Counter[bytes] = Counter()

    def publish(self, topic: str, data: bytes, attributes: dict[str, str]) -> str:
        message_id = self._inner.publish(topic, data, attributes)
        with self._lock:
            self.published[data] += 1
        return message_id

    def publish_all(self, messages: Sequence[tuple[str, bytes, dict[str, str]]]) -> list[str]:
        return [self.publish(topic, data, attributes) for topic, data, attributes in messages]


@pytest.fixture(scope="module")
def writer(stack: LocalStack) -> FirestoreWriter:
    return FirestoreWriter(PROJECT)


@pytest.fixture(scope="module")
def publisher(stack: LocalStack) -> PubSubPublisher:
    return PubSubPublisher(PROJECT)


@pytest.fixture(scope="module")
def firestore_client(stack: LocalStack) -> Any:
    from google.cloud import firestore

    return firestore.Client(project=PROJECT)


@pytest.fixture
def topic(stack: LocalStack) -> Iterator[tuple[str, str]]:
    """A fresh topic with a pull subscription on it: (topic id, subscription path)."""
    from google.cloud import pubsub_v1  # type: ignore[attr-defined]

    publisher_client = pubsub_v1.PublisherClient()
    subscriber = pubsub_v1.SubscriberClient()
    name = f"projector-{uuid.uuid4().hex[:12]}"
    topic_path = publisher_client.topic_path(PROJECT, name)
    subscription = subscriber.subscription_path(PROJECT, name)
    publisher_client.create_topic(name=topic_path)
    subscriber.create_subscription(name=subscription, topic=topic_path)
    yield name, subscription
    subscriber.delete_subscription(subscription=subscription)
    publisher_client.delete_topic(topic=topic_path)
    subscriber.close()


def _ports(db: Database, documents: DocumentWriter, publisher: Publisher) -> Ports:
    return replace(bootstrap.ports_on(db), documents=documents, publisher=publisher)


def _record(db: Database, *events: Event) -> list[int]:
    """Commits `events` in a unit of work of their own; their outbox ids."""
    with bootstrap.ports_on(db).uow() as uow:
        uow.outbox.add(*events)
        return [row.outbox_id for row in uow.commit()]


def _doc_path(kind: str = "projector_checks") -> str:
    return f"{kind}/{uuid.uuid4().hex}"


def _rows(db: Database, ids: list[int]) -> list[dict[str, Any]]:
    with db.transaction() as tx:
        return tx.all(
            """SELECT id, published_at, attempts, last_error,
                      EXTRACT(EPOCH FROM next_attempt_at - now()) AS due_in_s
               FROM outbox WHERE id = ANY(:ids) ORDER BY id""",
            {"ids": ids},
        )


def _pending(db: Database) -> int:
    with db.transaction() as tx:
        return int(tx.scalar("SELECT count(*) FROM outbox WHERE published_at IS NULL"))


def _eventually(check: Callable[[], bool], timeout: float = 15) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return False


def test_committed_rows_reach_firestore_and_pubsub_and_are_marked(
    db: Database,
    writer: FirestoreWriter,
    publisher: PubSubPublisher,
    firestore_client: Any,
    topic: tuple[str, str],
) -> None:
    topic_name, subscription = topic
    # A versioned collection no document model describes (any fields), so the writer keeps per-field versions.
    session, stale = _doc_path("revocations"), _doc_path()
    firestore_client.document(stale).set({"left": "over"})
    started = datetime(2025, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    ends = started + timedelta(minutes=30)
    ids = _record(
        db,
        DocumentWrite.at(session, {"status": "active", "started_at": ts(started), "note": "x"}),
        DocumentWrite.at(session, {"note": DELETE_FIELD, "timer": {"ends_at": ts(ends)}}),
        DocumentDelete.at(stale),
        TopicMessage(topic_name, {"session": session}, {"kind": "session_started"}),
    )

    result = projector.project(_ports(db, writer, publisher))

    assert result == projector.Projection(published=4, failed=0, remaining=0)
    document = firestore_client.document(session).get().to_dict()
    versions = document.pop(VERSIONS_FIELD)
    assert document == {"status": "active", "started_at": started, "timer": {"ends_at": ends}}
    assert versions == {"status": ids[0], "started_at": ids[0], "note": -ids[1], "timer.ends_at": ids[1]}
    assert isinstance(document["started_at"], datetime)
    assert not firestore_client.document(stale).get().exists
    messages = pull(subscription, expected=1)
    assert [(json.loads(m.data), dict(m.attributes)) for m in messages] == [
        ({"session": session}, {"kind": "session_started"})
    ]
    assert all(row["published_at"] is not None and row["attempts"] == 0 for row in _rows(db, ids))


def test_a_second_projection_publishes_nothing(
    db: Database, writer: FirestoreWriter, publisher: PubSubPublisher, topic: tuple[str, str]
) -> None:
    topic_name, subscription = topic
    ids = _record(db, DocumentWrite.at(_doc_path(), {"n": 1}), TopicMessage(topic_name, {"n": 1}))
    ports = _ports(db, writer, publisher)
    assert projector.project(ports).published == 2

    assert projector.project(ports) == projector.Projection(published=0, failed=0, remaining=0)
    assert projector.project(ports, ids=ids).published == 0
    assert len(pull(subscription, expected=2, timeout=3)) == 1


def test_a_rolled_back_transaction_leaves_nothing_to_publish(
    db: Database, writer: FirestoreWriter, publisher: PubSubPublisher, firestore_client: Any, topic: tuple[str, str]
) -> None:
    topic_name, subscription = topic
    path = _doc_path()
    ids: list[int] = []

    ports = _ports(db, writer, publisher)
    with pytest.raises(RuntimeError, match="changed my mind"), ports.uow() as uow:
        uow.outbox.add(DocumentWrite.at(path, {"n": 1}), TopicMessage(topic_name, {"n": 1}))
        ids.extend(row.outbox_id for row in uow.outbox.flush())  # type: ignore[attr-defined]
        raise RuntimeError("changed my mind")

    assert len(ids) == 2
    assert projector.project(ports, ids=ids).published == 0
    assert projector.project(ports) == projector.Projection(published=0, failed=0, remaining=0)
    assert not firestore_client.document(path).get().exists
    assert pull(subscription, expected=1, timeout=2) == []


def test_a_failing_writer_leaves_the_rows_for_a_later_attempt_with_backoff(
    db: Database, publisher: PubSubPublisher, topic: tuple[str, str]
) -> None:
    topic_name, subscription = topic
    refusing = RefusingWriter()
    *doc_ids, message_id = _record(
        db, *(DocumentWrite.at(_doc_path(), {"n": n}) for n in range(3)), TopicMessage(topic_name, {"n": 1})
    )
    ports = _ports(db, refusing, publisher)

    result = projector.project(ports)

    assert result == projector.Projection(published=1, failed=3, remaining=0)
    assert refusing.calls == 1
    rows = _rows(db, doc_ids)
    assert [(row["attempts"], row["last_error"], row["published_at"]) for row in rows] == [
        (1, "firestore: ConnectionError", None)
    ] * 3
    assert all(0 < row["due_in_s"] <= 1 for row in rows), rows
    assert _rows(db, [message_id])[0]["published_at"] is not None
    assert len(pull(subscription, expected=1)) == 1

    assert projector.project(ports) == projector.Projection(published=0, failed=0, remaining=3)
    assert refusing.calls == 1, "rows not yet due were claimed again"

    projector.project(ports, ids=doc_ids)
    rows = _rows(db, doc_ids)
    assert [row["attempts"] for row in rows] == [2] * 3
    assert all(1 < row["due_in_s"] <= 2 for row in rows), "the backoff did not double"


def test_a_missing_topic_fails_only_its_row(db: Database, writer: FirestoreWriter, publisher: PubSubPublisher) -> None:
    doc_id, lost_id = _record(
        db, DocumentWrite.at(_doc_path(), {"n": 1}), TopicMessage(f"no-such-topic-{uuid.uuid4().hex[:8]}", {"n": 1})
    )

    result = projector.project(_ports(db, writer, publisher), ids=[doc_id, lost_id])

    assert (result.published, result.failed) == (1, 1)
    doc_row, lost_row = _rows(db, [doc_id, lost_id])
    assert doc_row["published_at"] is not None
    assert (lost_row["published_at"], lost_row["attempts"], lost_row["last_error"]) == (None, 1, "pubsub: NotFound")


def test_a_failed_inline_projection_is_retried_by_a_cloud_task_through_the_gateway(
    stack: LocalStack, publisher: PubSubPublisher, firestore_client: Any
) -> None:
    """The gateway's functions use the stack's main database, so this test writes there too."""
    halo = Database(lambda: stack.postgres.connect("halo"), max_idle=1)
    tasks = CloudTasksScheduler(
        project=PROJECT,
        location="asia-southeast2",
        target_base_url=stack.functions_url,
        service_account_email=TASKS_SERVICE_ACCOUNT,
        emulator_host=f"127.0.0.1:{stack.ports.tasks}",
    )
    refusing = RefusingWriter()
    ports = replace(_ports(halo, refusing, publisher), tasks=tasks)
    paths = [_doc_path(), _doc_path()]
    try:
        with halo.transaction() as tx:
            # The retry task is named by its rows' ids (`outbox-{first}-{last}`), and the Cloud Tasks emulator is
            # shared with the tests on databases of their own, whose ids start at 1 too: a name already used is
            # taken as this task already made, and nothing runs. Ids past theirs keep this task's name its own.
            tx.scalar(
                """SELECT setval(pg_get_serial_sequence('outbox', 'id'), GREATEST(last_value, 1000000))
                   FROM outbox_id_seq"""
            )
        written = [DocumentWrite.at(path, {"hello": "retry"}) for path in paths]
        ids = _record(halo, *written)
        with halo.transaction() as tx:
            # As if these rows had failed often before: not due for an hour, and the next failure backs off to the
            # 5-minute cap. The periodic sweep leaves them alone, so what publishes them can only be the retry task.
            tx.execute(
                "UPDATE outbox SET attempts = 9, next_attempt_at = now() + interval '1 hour' WHERE id = ANY(:ids)",
                {"ids": ids},
            )

        projector.deliver(ports, [Committed(i, e) for i, e in zip(ids, written, strict=True)])

        assert refusing.calls == 1
        assert _eventually(lambda: all(firestore_client.document(path).get().exists for path in paths)), (
            "the retry task never published the documents"
        )
        assert all(firestore_client.document(path).get().to_dict() == {"hello": "retry"} for path in paths)
        assert _eventually(lambda: all(row["published_at"] is not None for row in _rows(halo, ids)))
        # The fast path delivers from memory and claims nothing: the retry task's delivery is not counted as a failure.
        assert [row["attempts"] for row in _rows(halo, ids)] == [9, 9]
        task_id = f"outbox-{min(ids)}-{max(ids)}"

        def outcomes() -> list[str]:
            return [
                json.loads(line)["outcome"]
                for line in (stack.log_dir / "gateway.log").read_text().splitlines()
                if task_id in line and '"outcome"' in line
            ]

        assert _eventually(lambda: bool(outcomes()))
        assert outcomes() == ["published"]
    finally:
        halo.close()


def test_concurrent_projections_publish_each_row_exactly_once(
    db: Database, writer: FirestoreWriter, publisher: PubSubPublisher, firestore_client: Any, topic: tuple[str, str]
) -> None:
    topic_name, subscription = topic
    paths = [_doc_path("race") for _ in range(200)]
    messages = 20
    _record(
        db,
        *(DocumentWrite.at(path, {"path": path}, merge=False) for path in paths),
        *(TopicMessage(topic_name, {"n": n}) for n in range(messages)),
    )
    documents, published = CountingWriter(writer), CountingPublisher(publisher)
    ports = _ports(db, documents, published)
    workers = 6
    start = threading.Barrier(workers)
    totals: list[int] = []
    errors: list[BaseException] = []

    def drain() -> None:
        start.wait()
        try:
            while True:
                result = projector.project(ports, limit=15)
                totals.append(result.published)
                if result.published == 0 and result.remaining == 0:
                    return
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=drain) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=90)

    assert errors == []
    assert sum(totals) == len(paths) + messages
    assert set(documents.writes) == set(paths)
    assert max(documents.writes.values()) == 1
    assert sorted(json.loads(data)["n"] for data in published.published) == list(range(messages))
    assert max(published.published.values()) == 1
    with db.transaction() as tx:
        assert tx.scalar("SELECT count(*) FROM outbox WHERE published_at IS NOT NULL") == len(paths) + messages
    assert _pending(db) == 0
    snapshots = firestore_client.get_all([firestore_client.document(path) for path in paths])
    assert sorted(snapshot.to_dict()["path"] for snapshot in snapshots) == sorted(paths)
    assert len(pull(subscription, expected=messages)) == messages


class HeldFirstStatement:
    """The real database, except that its first `read_one` is held until `release` is set; records each call's ids.
    With `fail`, every statement raises instead, as a lost connection does."""

    def __init__(self, inner: Database, *, fail: bool = False) -> None:
        self._inner = inner
        self._fail = fail
        self.entered = threading.Event()
        self.release = threading.Event()
        self.calls: list[list[int]] = []

    def read_one(self, sql: str, params: dict[str, Any]) -> Any:
        self.calls.append(sorted(params["ids"]))
        if len(self.calls) == 1:
            self.entered.set()
            assert self.release.wait(10)
        if self._fail:
            raise ConnectionError("the database connection was lost")
        return self._inner.read_one(sql, params)


def _committed_rows(db: Database, count: int) -> list[int]:
    return _record(db, *(TopicMessage("notify", {"n": n}) for n in range(count)))


@pytest.mark.parametrize("fail", [False, True])
def test_concurrent_fast_paths_mark_their_rows_in_one_statement(db: Database, fail: bool) -> None:
    ids = _committed_rows(db, 11)
    held = HeldFirstStatement(db, fail=fail)
    marks = PublishedMarks(held)  # type: ignore[arg-type]
    errors: dict[int, Exception | None] = {}

    def mark(row_id: int) -> None:
        try:
            marks.mark([row_id])
            errors[row_id] = None
        except Exception as exc:
            errors[row_id] = exc

    leader = threading.Thread(target=mark, args=(ids[0],))
    leader.start()
    assert held.entered.wait(10)
    followers = [threading.Thread(target=mark, args=(row_id,)) for row_id in ids[1:]]
    for thread in followers:
        thread.start()
    deadline = time.monotonic() + 10
    while marks._group.waiting() < 10 and time.monotonic() < deadline:
        time.sleep(0.005)
    held.release.set()
    for thread in [leader, *followers]:
        thread.join(10)
    assert held.calls == [[ids[0]], sorted(ids[1:])], "the ten that waited were marked together"
    published = [row["published_at"] is not None for row in _rows(db, ids)]
    if fail:
        assert all(isinstance(errors[row_id], ConnectionError) for row_id in ids), "each caller learns of it"
        assert published == [False] * 11, "nothing marked: the retry path still owns every row"
    else:
        assert errors == dict.fromkeys(ids) and published == [True] * 11
