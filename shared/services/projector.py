"""Moves committed outbox rows to Firestore and Pub/Sub, at least once, in commit order per call.

Rows are claimed with FOR UPDATE SKIP LOCKED, so the inline projection right after a commit, the retry task and
the periodic sweep can all run at once without writing the same row twice at the same time. A row that fails
is retried later with backoff; Firestore writes are idempotent (set/merge) and Pub/Sub consumers are idempotent.
"""

from __future__ import annotations

import json
import logging
import threading
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shared.adapters.db import Database, Tx
from shared.adapters.group_commit import GroupCommit
from shared.logging import event
from shared.services.ports import DocOp, DocumentWriter, Ports, Publisher

log = logging.getLogger(__name__)

RETRY_QUEUE = "outbox-retry"
RETRY_HANDLER = "task_project_outbox"
_MAX_BACKOFF_S = 300


@dataclass(frozen=True)
class Projection:
    published: int
    failed: int
    remaining: int


def project(
    db: Database,
    documents: DocumentWriter,
    publisher: Publisher,
    *,
    ids: Sequence[int] | None = None,
    limit: int = 500,
) -> Projection:
    """Publish pending rows (only `ids`, if given). `remaining` counts pending rows not handled by this call."""
    with db.transaction() as tx:
        rows = _claim(tx, ids, limit)
        failed_ids, error = _deliver(rows, documents, publisher)
        published_ids = [row["id"] for row in rows if row["id"] not in failed_ids]
        if published_ids:
            tx.execute("UPDATE outbox SET published_at = now() WHERE id = ANY(:ids)", {"ids": published_ids})
        if failed_ids:
            tx.execute(
                """UPDATE outbox SET attempts = attempts + 1, last_error = :error,
                       next_attempt_at = now() + make_interval(secs => LEAST(:cap, power(2, attempts)))
                   WHERE id = ANY(:ids)""",
                {"ids": sorted(failed_ids), "error": error, "cap": _MAX_BACKOFF_S},
            )
        remaining = 0 if ids is not None else int(tx.scalar("SELECT count(*) FROM outbox WHERE published_at IS NULL"))
    if failed_ids:
        event(log, "outbox rows failed", logging.WARNING, failed=len(failed_ids), error=error)
    return Projection(published=len(published_ids), failed=len(failed_ids), remaining=remaining - len(failed_ids))


def _claim(tx: Tx, ids: Sequence[int] | None, limit: int) -> list[dict[str, Any]]:
    if ids is not None:
        return tx.all(
            """SELECT id, kind, destination, payload FROM outbox
               WHERE id = ANY(:ids) AND published_at IS NULL
               ORDER BY id FOR UPDATE SKIP LOCKED""",
            {"ids": list(ids)},
        )
    return tx.all(
        """SELECT id, kind, destination, payload FROM outbox
           WHERE published_at IS NULL AND next_attempt_at <= now()
           ORDER BY id LIMIT :limit FOR UPDATE SKIP LOCKED""",
        {"limit": limit},
    )


def _deliver(
    rows: list[dict[str, Any]], documents: DocumentWriter, publisher: Publisher
) -> tuple[set[int], str | None]:
    failed: set[int] = set()
    error: str | None = None
    doc_rows = [row for row in rows if row["kind"] == "firestore"]
    if doc_rows:
        try:
            documents.apply([op for row in doc_rows for op in _doc_ops(row)])
        except Exception as exc:
            failed.update(row["id"] for row in doc_rows)
            error = f"firestore: {type(exc).__name__}"
    # Each topic's rows in one publish (the publisher sends them in one RPC), each topic's outcome its own; a row
    # whose message cannot even be encoded fails alone.
    by_topic: dict[str, list[tuple[int, tuple[str, bytes, dict[str, str]]]]] = {}
    for row in rows:
        if row["kind"] != "pubsub":
            continue
        try:
            payload = _payload(row)
            message = (row["destination"], json.dumps(payload["data"]).encode(), _attributes(payload))
        except Exception as exc:
            failed.add(row["id"])
            error = f"pubsub: {type(exc).__name__}"
            continue
        by_topic.setdefault(row["destination"], []).append((row["id"], message))
    for topic_rows in by_topic.values():
        try:
            publisher.publish_all([message for _, message in topic_rows])
        except Exception as exc:
            failed.update(row_id for row_id, _ in topic_rows)
            error = f"pubsub: {type(exc).__name__}"
    return failed, error


def _attributes(payload: dict[str, Any]) -> dict[str, str]:
    attributes = payload.get("attributes") or {}
    if not isinstance(attributes, dict) or not all(
        isinstance(key, str) and isinstance(value, str) for key, value in attributes.items()
    ):
        raise TypeError("message attributes are text keys and text values")
    return attributes


def _payload(row: dict[str, Any]) -> dict[str, Any]:
    """pg8000 hands jsonb back already decoded."""
    return dict(row["payload"])


def _doc_ops(row: dict[str, Any]) -> list[DocOp]:
    """A row writes its destination, or, when its payload lists `paths`, the same document to each of them."""
    payload = _payload(row)
    paths = payload.get("paths") or [row["destination"]]
    return [DocOp(path=path, op=payload["op"], data=payload["data"]) for path in paths]


def project_after_commit(ports: Ports, ids: Sequence[int]) -> None:
    """The fast path: publish what a use case just committed. If that fails, a retry task (and, behind it,
    the periodic sweep) publishes it later; the caller's request has succeeded either way."""
    if not ids:
        return
    try:
        result = project(ports.db, ports.documents, ports.publisher, ids=ids)
        if result.failed == 0:
            return
    except Exception:
        log.warning("inline projection failed", exc_info=True)
    schedule_retry(ports, ids)


def schedule_retry(ports: Ports, ids: Sequence[int], *, at: datetime | None = None) -> None:
    """A task that projects these rows (now, or at `at`); if it cannot be created, the sweep catches up."""
    first, last = min(ids), max(ids)
    try:
        ports.tasks.schedule(
            queue=RETRY_QUEUE,
            task_id=f"outbox-{first}-{last}",
            handler=RETRY_HANDLER,
            payload={"ids": sorted(ids)},
            at=at,
        )
    except Exception:
        log.warning("could not schedule outbox retry; the sweep will catch up", exc_info=True)


@dataclass(frozen=True)
class Committed:
    """An outbox row a use case just committed, with what it says, so it can be published without reading it back."""

    outbox_id: int
    doc: DocOp | None = None
    topic: str | None = None
    message: dict[str, Any] | None = None
    docs: Sequence[DocOp] = ()  # a row writing one document to many paths


def publish_committed(ports: Ports, rows: Sequence[Committed]) -> None:
    """The hot path (chat, pairing): write the documents, then publish the messages, then mark the rows published
    (one autocommit statement, shared with concurrent requests). A listener waiting for a document waits for
    nothing else. On any failure the retry task (and, behind it, the sweep) publishes from the outbox; consumers are
    idempotent, so a message that did go out before the failure is harmless twice."""
    try:
        docs = [doc for row in rows for doc in ([row.doc] if row.doc is not None else row.docs)]
        messages: list[tuple[str, bytes, dict[str, str]]] = [
            (row.topic, json.dumps(row.message).encode(), {}) for row in rows if row.topic is not None
        ]
        if docs:
            ports.documents.apply(docs)
        if messages:
            ports.publisher.publish_all(messages)
        _marks(ports.db).submit([row.outbox_id for row in rows])
    except Exception:  # committed rows are never lost: the retry path owns them now
        log.warning("fast-path publish failed", exc_info=True)
        schedule_retry(ports, [row.outbox_id for row in rows])


def _published_marks(db: Database) -> GroupCommit[list[int]]:
    """Marks the fast path's rows published for concurrent requests in one statement (group commit, as the
    Firestore writer does): one UPDATE in flight per database, and the rows of requests that arrive meanwhile go
    together in the next. Alone, a request's rows are marked at once."""

    database = weakref.ref(db)  # held weakly: _MARKS is keyed by the database itself

    def mark(groups: list[list[int]]) -> None:
        db = database()
        assert db is not None, "a database in use is alive"
        db.read_one(
            "UPDATE outbox SET published_at = now() WHERE id = ANY(:ids) AND published_at IS NULL",
            {"ids": [row_id for ids in groups for row_id in ids]},
        )

    return GroupCommit(mark)


_MARKS: weakref.WeakKeyDictionary[Database, GroupCommit[list[int]]] = weakref.WeakKeyDictionary()
_MARKS_LOCK = threading.Lock()


def _marks(db: Database) -> GroupCommit[list[int]]:
    with _MARKS_LOCK:
        marks = _MARKS.get(db)
        if marks is None:
            marks = _MARKS[db] = _published_marks(db)
        return marks
