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
import time
from collections.abc import Callable, Sequence
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
# How often a sweep that stays tries failing rows again.
SWEEP_RETRY_S = 2.0


@dataclass(frozen=True)
class Projection:
    published: int
    failed: int
    remaining: int


def deliver(ports: Ports, committed: Sequence[Committed]) -> None:
    """The fast path: documents first (a listener waiting for one waits for nothing else), then messages, then
    tasks, then the rows marked published in one statement shared with concurrent requests.

    When one kind fails (Cloud Tasks down, say), what already landed is marked published and only the rest is
    retried: sent again later, a document that landed could overwrite a newer write of the same document (a
    payment's `pending` after its `paid`)."""
    if not committed:
        return
    landed: list[int] = []
    try:
        documents = [(row.outbox_id, e) for row in committed if isinstance(e := row.event, DocumentEvent)]
        if documents:
            ports.documents.apply([e for _, e in documents], [i for i, _ in documents])
            landed += [i for i, _ in documents]
        messages = [(row.outbox_id, _message(e)) for row in committed if isinstance(e := row.event, TopicMessage)]
        if messages:
            ports.publisher.publish_all([message for _, message in messages])
            landed += [i for i, _ in messages]
        for row in committed:
            if isinstance(task := row.event, TaskRequest):
                _create(ports, task)
                landed.append(row.outbox_id)
        ports.marks.mark([row.outbox_id for row in committed])
    except Exception:  # committed rows are never lost: the retry path owns them now
        log.warning("fast-path delivery failed", exc_info=True)
        _retry_what_did_not_land(ports, committed, landed)


def _retry_what_did_not_land(ports: Ports, committed: Sequence[Committed], landed: list[int]) -> None:
    left = [row.outbox_id for row in committed if row.outbox_id not in landed]
    if landed:
        try:
            ports.marks.mark(landed)
        except Exception:  # not marked: the retry delivers them again, as it always could
            left = [row.outbox_id for row in committed]
    if left:
        schedule_retry(ports, left)


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


@dataclass(frozen=True)
class Swept:
    published: int
    # Rows that were still failing when the sweep left (a destination still down).
    failing: int
    rounds: int


def sweep(
    ports: Ports,
    *,
    budget_s: float,
    stay_s: float,
    pause: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> Swept:
    """The scheduled sweep: every due row, in batches, for at most `budget_s`. While rows keep failing (Cloud Tasks,
    Pub/Sub or Firestore down), it stays up to `stay_s`, trying the due ones again every SWEEP_RETRY_S: a timer's
    row is due again within seconds (TIMER_MAX_BACKOFF_S in the outbox), so the timers an outage held back are
    created within seconds of its end instead of at the next scheduled sweep, a minute later. Rows backing off
    longer (a document or message failing for minutes) are not due, and the sweep leaves."""
    started = clock()
    published = rounds = 0
    while True:
        result = project(ports)
        rounds += 1
        published += result.published
        elapsed = clock() - started
        if result.failed:
            if elapsed + SWEEP_RETRY_S > stay_s:
                return Swept(published, result.failed, rounds)
            pause(SWEEP_RETRY_S)
        elif result.published == 0 or result.remaining <= 0 or elapsed >= budget_s:
            return Swept(published, 0, rounds)


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
        queue=task.queue,
        task_id=task.task_id,
        handler=task.handler,
        payload=dict(task.payload),
        at=task.at,
        trace=task.trace,
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
