"""Delivers committed events (shared/domain/events.py) to Firestore, Pub/Sub and Cloud Tasks, at least once.

There is one shape to deliver, `Committed` (an event and its outbox row), and two ways in:
- `deliver`, the fast path, right after a use case commits: the events from memory, then their rows marked
  published. If anything fails, a retry task (and behind it the periodic sweep) delivers the rows instead; the
  caller's request has succeeded either way.
- `project`, the recovery path (the retry task, the sweep): pending rows claimed from the outbox, decoded into the
  same events, delivered the same way, each kind's outcome its own.

Documents are idempotent writes, Pub/Sub consumers are idempotent, and a task's name is deterministic, so an event
delivered twice (a fast path that failed after a write landed) does its work once. A document write carries its
row's id as its version, so one delivered late (a retry after newer rows landed) never puts a document back
(shared/domain/projection.py).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from shared.domain.events import (
    Committed,
    DocumentDelete,
    DocumentEvent,
    DocumentWrite,
    Event,
    TaskRequest,
    TopicMessage,
)
from shared.logging import event as log_event
from shared.services.ports import Ports

log = logging.getLogger(__name__)

RETRY_QUEUE = "outbox-retry"
RETRY_HANDLER = "task_project_outbox"


@dataclass(frozen=True)
class Projection:
    published: int
    failed: int
    remaining: int


def deliver(ports: Ports, committed: Sequence[Committed]) -> None:
    """The fast path: documents first (a listener waiting for one waits for nothing else), then messages, then
    tasks, then the rows marked published in one statement shared with concurrent requests."""
    if not committed:
        return
    try:
        events = [row.event for row in committed]
        documents = [(row.outbox_id, e) for row in committed if isinstance(e := row.event, DocumentEvent)]
        if documents:
            ports.documents.apply([e for _, e in documents], [i for i, _ in documents])
        messages = [_message(e) for e in events if isinstance(e, TopicMessage)]
        if messages:
            ports.publisher.publish_all(messages)
        for task in (e for e in events if isinstance(e, TaskRequest)):
            _create(ports, task)
        ports.marks.mark([row.outbox_id for row in committed])
    except Exception:  # committed rows are never lost: the retry path owns them now
        log.warning("fast-path delivery failed", exc_info=True)
        schedule_retry(ports, [row.outbox_id for row in committed])


def project(ports: Ports, *, ids: Sequence[int] | None = None, limit: int = 500) -> Projection:
    """Deliver pending rows (only `ids`, if given). `remaining` counts pending rows this call did not handle."""
    with ports.uow() as uow:
        claimed = uow.outbox.claim(ids, limit)
        failed: dict[int, str] = {row.outbox_id: row.error for row in claimed if row.error is not None}
        rows = [(row.outbox_id, row.event) for row in claimed if row.event is not None]
        failed.update(_deliver_each_kind(ports, rows))
        published = [outbox_id for outbox_id, _ in rows if outbox_id not in failed]
        uow.outbox.mark_published(published)
        error = next(iter(failed.values()), None)
        uow.outbox.mark_failed(sorted(failed), error)
        remaining = 0 if ids is not None else uow.outbox.pending_count()
        uow.commit()
    if failed:
        log_event(log, "outbox rows failed", logging.WARNING, failed=len(failed), error=error)
    return Projection(published=len(published), failed=len(failed), remaining=remaining - len(failed))


def _deliver_each_kind(ports: Ports, rows: list[tuple[int, Event]]) -> dict[int, str]:
    """The rows that failed, and why. Documents go in one batch (they fail together); each topic's messages in one
    publish; each task alone."""
    failed: dict[int, str] = {}
    documents = [(i, e) for i, e in rows if isinstance(e, DocumentWrite | DocumentDelete)]
    if documents:
        try:
            ports.documents.apply([e for _, e in documents], [i for i, _ in documents])
        except Exception as exc:
            failed.update((i, f"firestore: {type(exc).__name__}") for i, _ in documents)
    by_topic: dict[str, list[tuple[int, tuple[str, bytes, dict[str, str]]]]] = {}
    for i, e in rows:
        if isinstance(e, TopicMessage):
            try:
                by_topic.setdefault(e.topic, []).append((i, _message(e)))
            except Exception as exc:  # a message that cannot even be encoded fails alone
                failed[i] = f"pubsub: {type(exc).__name__}"
    for topic_rows in by_topic.values():
        try:
            ports.publisher.publish_all([message for _, message in topic_rows])
        except Exception as exc:
            failed.update((i, f"pubsub: {type(exc).__name__}") for i, _ in topic_rows)
    for i, e in rows:
        if isinstance(e, TaskRequest):
            try:
                _create(ports, e)
            except Exception as exc:
                failed[i] = f"tasks: {type(exc).__name__}"
    return failed


def _message(message: TopicMessage) -> tuple[str, bytes, dict[str, str]]:
    return message.topic, json.dumps(message.data).encode(), dict(message.attributes)


def _create(ports: Ports, task: TaskRequest) -> None:
    """A task that exists already (an earlier delivery of this event) is as good as created."""
    ports.tasks.schedule(
        queue=task.queue, task_id=task.task_id, handler=task.handler, payload=dict(task.payload), at=task.at
    )


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
