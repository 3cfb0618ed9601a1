"""The outbox table: events recorded in a use case's transaction, claimed and marked by the projector.

Rows are written only through `shared.domain.events.encode`, so the table holds one shape per kind of event. A row
is claimed with FOR UPDATE SKIP LOCKED, so the fast path right after a commit, the retry task and the periodic sweep
can all run at once without delivering the same row at the same time.
"""

from __future__ import annotations

import json
import threading
import weakref
from collections.abc import Sequence
from dataclasses import replace
from typing import Any, TypeVar, cast

from shared.adapters.group_commit import GroupCommit
from shared.adapters.postgres.database import Database, Row
from shared.adapters.postgres.sql import Sql
from shared.domain.events import Claimed, Committed, Event, TaskRequest, TopicMessage, decode, encode
from shared.logging import TRACE_ATTRIBUTE, trace_id

AnyEvent = TypeVar("AnyEvent", bound=Event)

# Backoff between attempts of a failing row: 1 s, doubling, at most this.
MAX_BACKOFF_S = 300
# A timer's row (a Cloud Task to create) is tried again at least this often: a session's end must not wait minutes
# after Cloud Tasks is back. A sweep that stays (shared/services/projector.py `sweep`) is what tries it.
TIMER_MAX_BACKOFF_S = 2

# What a row keeps once it has done its work: the event without the words it carried to people, a document's `text`
# (a chat message, a goodbye note) and a push's `body` (a message preview, a name on a lock screen), with the
# `params` its texts are filled from and a system message's `text_by_locale` (shared/domain/texts). Every statement
# that marks a row published applies it, so no text outlives its delivery in the outbox (docs/privacy.md); the
# deletion and retention of texts apply it to the rows still pending (shared/adapters/postgres/privacy.py).
WITHOUT_WORDS = "payload #- '{data,text}' #- '{data,body}' #- '{data,params}' #- '{data,text_by_locale}'"


class PostgresOutbox:
    """The outbox of one unit of work. `add` gathers events; the unit of work inserts them together (one statement)
    when it commits. A repository whose statement records its own rows (a hot path doing everything in one round
    trip) hands them over with `recorded`."""

    def __init__(self, sql: Sql) -> None:
        self._sql = sql
        self._pending: list[Event] = []
        self._recorded: list[Committed] = []

    def add(self, *events: Event) -> None:
        self._pending.extend(traced(event) for event in events)

    def recorded(self, committed: Sequence[Committed]) -> None:
        self._recorded.extend(committed)

    def has_added(self) -> bool:
        return bool(self._pending)

    def flush(self) -> list[Committed]:
        """Insert what was added; everything this unit of work recorded, in the order it was recorded."""
        events, self._pending = self._pending, []
        ids = insert(self._sql, events)
        committed = self._recorded + [Committed(i, e) for i, e in zip(ids, events, strict=True)]
        self._recorded = []
        return committed

    # -- the projector's side ------------------------------------------------------------------------------------

    def claim(self, ids: Sequence[int] | None, limit: int) -> list[Claimed]:
        """Pending rows: these (if `ids`), or those due, oldest first; locked until this unit of work ends."""
        if ids is not None:
            rows = self._sql.all(
                """SELECT id, kind, destination, payload FROM outbox
                   WHERE id = ANY(:ids) AND published_at IS NULL
                   ORDER BY id FOR UPDATE SKIP LOCKED""",
                {"ids": list(ids)},
            )
        else:
            rows = self._sql.all(
                """SELECT id, kind, destination, payload FROM outbox
                   WHERE published_at IS NULL AND next_attempt_at <= now()
                   ORDER BY id LIMIT :limit FOR UPDATE SKIP LOCKED""",
                {"limit": limit},
            )
        return [_claimed(row) for row in rows]

    def mark_published(self, ids: Sequence[int]) -> None:
        if ids:
            self._sql.execute(
                f"UPDATE outbox SET published_at = now(), payload = {WITHOUT_WORDS} WHERE id = ANY(:ids)",
                {"ids": list(ids)},
            )

    def mark_failed(self, ids: Sequence[int], error: str | None) -> None:
        if ids:
            self._sql.execute(
                """UPDATE outbox SET attempts = attempts + 1, last_error = :error,
                       next_attempt_at = now() + make_interval(secs => LEAST(
                           CASE WHEN kind = 'task' THEN CAST(:timer_cap AS float8) ELSE CAST(:cap AS float8) END,
                           power(2, attempts)))
                   WHERE id = ANY(:ids)""",
                {"ids": sorted(ids), "error": error, "cap": MAX_BACKOFF_S, "timer_cap": TIMER_MAX_BACKOFF_S},
            )

    def pending_count(self) -> int:
        return int(self._sql.scalar("SELECT count(*) FROM outbox WHERE published_at IS NULL"))

    # -- a row that waits for company (chat receipts) ----------------------------------------------------------------

    def add_deferred(self, event: Event, *, delay_s: float) -> int:
        """A row inserted now but due only after `delay_s`: until then another write may carry what it says
        (`mark_published_if_unchanged`) or it may be brought up to date (`replace_if_pending`)."""
        row = encode(event)
        return int(
            self._sql.scalar(
                """INSERT INTO outbox (kind, destination, payload, next_attempt_at)
                   VALUES (:kind, :destination, CAST(:payload AS jsonb), now() + make_interval(secs => :delay))
                   RETURNING id""",
                {
                    "kind": row.kind,
                    "destination": row.destination,
                    "payload": json.dumps(row.payload),
                    "delay": delay_s,
                },
            )
        )

    def replace_if_pending(self, outbox_id: int, event: Event) -> bool:
        """The row now says `event`, unless it has been published already."""
        return bool(
            self._sql.scalar(
                """UPDATE outbox SET payload = CAST(:payload AS jsonb)
                   WHERE id = :id AND published_at IS NULL RETURNING id""",
                {"payload": json.dumps(encode(event).payload), "id": outbox_id},
            )
        )

    def mark_published_if_unchanged(self, outbox_id: int, event: Event) -> bool:
        """Another write carried `event`: its row is done, unless it has been replaced since."""
        return bool(
            self._sql.scalar(
                f"""UPDATE outbox SET published_at = now(), payload = {WITHOUT_WORDS}
                    WHERE id = :id AND published_at IS NULL AND payload = CAST(:payload AS jsonb) RETURNING id""",
                {"id": outbox_id, "payload": json.dumps(encode(event).payload)},
            )
        )


def traced(event: AnyEvent) -> AnyEvent:
    """The event carrying the trace of the request that records it, so the function it wakes (a Pub/Sub consumer,
    a task handler) logs under the same trace: a message attribute, a task's header (shared/logging.py)."""
    trace = trace_id()
    if trace is None:
        return event
    if isinstance(event, TopicMessage) and TRACE_ATTRIBUTE not in event.attributes:
        return cast(AnyEvent, replace(event, attributes={**event.attributes, TRACE_ATTRIBUTE: trace}))
    if isinstance(event, TaskRequest) and event.trace is None:
        return cast(AnyEvent, replace(event, trace=trace))
    return event


def insert(sql: Sql, events: Sequence[Event]) -> list[int]:
    """Rows for `events`, in one statement; their ids in the events' order. The rows travel as one JSON document:
    pg8000 spells a Python list out as an array literal element by element, which costs more than the insert."""
    if not events:
        return []
    rows = [encode(event) for event in events]
    inserted = sql.all(
        """INSERT INTO outbox (kind, destination, payload)
           SELECT row ->> 0, row ->> 1, row -> 2
           FROM jsonb_array_elements(CAST(:rows AS jsonb)) WITH ORDINALITY AS rows (row, n)
           ORDER BY n
           RETURNING id""",
        {"rows": json.dumps([[row.kind, row.destination, row.payload] for row in rows])},
    )
    # The ids are drawn from the sequence in the order the rows are inserted, which ORDER BY fixes.
    return sorted(row["id"] for row in inserted)


def _claimed(row: Row) -> Claimed:
    try:
        return Claimed(row["id"], decode(row["kind"], row["destination"], _payload(row)))
    except (KeyError, TypeError, ValueError) as exc:
        return Claimed(row["id"], None, f"{row['kind']}: {type(exc).__name__}")


def _payload(row: Row) -> dict[str, Any]:
    """pg8000 hands jsonb back already decoded."""
    payload = row["payload"]
    if not isinstance(payload, dict):
        raise TypeError("an outbox payload is a JSON object")
    return payload


class PublishedMarks:
    """Marks the fast path's rows published, for concurrent requests in one statement (group commit, as the Firestore
    writer does): one UPDATE in flight per database, and the rows of requests that arrive meanwhile go together in
    the next. Alone, a request's rows are marked at once."""

    def __init__(self, database: Database) -> None:
        self._database = weakref.ref(database)
        self._group: GroupCommit[list[int]] = GroupCommit(self._mark)

    def mark(self, ids: Sequence[int]) -> None:
        if ids:
            self._group.submit(list(ids))

    def _mark(self, groups: list[list[int]]) -> None:
        database = self._database()
        assert database is not None, "a database in use is alive"
        database.read_one(
            f"""UPDATE outbox SET published_at = now(), payload = {WITHOUT_WORDS}
                WHERE id = ANY(:ids) AND published_at IS NULL""",
            {"ids": [row_id for ids in groups for row_id in ids]},
        )


_MARKS: weakref.WeakKeyDictionary[Database, PublishedMarks] = weakref.WeakKeyDictionary()
_MARKS_LOCK = threading.Lock()


def published_marks(database: Database) -> PublishedMarks:
    """One per database, shared by every request of the instance (a group needs company to form)."""
    with _MARKS_LOCK:
        marks = _MARKS.get(database)
        if marks is None:
            marks = _MARKS[database] = PublishedMarks(database)
        return marks
