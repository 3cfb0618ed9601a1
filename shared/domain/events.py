"""What a use case asks the outside world to do once its change has committed, as typed events.

Every side effect of a change is one of four kinds: write a Firestore document (the apps listen to it), delete one,
publish a Pub/Sub message (fan-out work), or create a Cloud Task (a timer). A use case records its events in the
outbox of its own transaction (`uow.outbox.add`); committing the unit of work hands them back with their outbox ids,
and the projector delivers them (right away, and again from the outbox if that fails). This module is the only place
that knows how an event is stored in an outbox row (`encode` / `decode`).

Document data is JSON: a timestamp is written `{"$ts": iso}` (`ts`), a field to remove `{"$delete": true}`
(`DELETE_FIELD`); the Firestore writer turns both into Firestore's own values.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from shared.domain.documents import Document, checked

DELETE_FIELD: dict[str, Any] = {"$delete": True}


def ts(moment: datetime) -> dict[str, str]:
    """A timestamp in a document's data."""
    return {"$ts": moment.isoformat()}


@dataclass(frozen=True)
class DocumentWrite:
    """The same data written to each of `paths` (one, or every mitra a request is offered to). A merge changes only
    the fields it names; without merge the document is replaced."""

    paths: tuple[str, ...]
    data: Mapping[str, Any]
    merge: bool = True

    def __post_init__(self) -> None:
        # The data is that of the document's model (shared/domain/documents.py), whoever built it.
        checked(self.paths, self.data)

    @classmethod
    def at(cls, path: str, data: Document | Mapping[str, Any], *, merge: bool = True) -> DocumentWrite:
        return cls((path,), data.data() if isinstance(data, Document) else data, merge)

    @classmethod
    def of(cls, paths: tuple[str, ...], data: Document, *, merge: bool = True) -> DocumentWrite:
        """The same write to each of `paths`."""
        return cls(paths, data.data(), merge)


@dataclass(frozen=True)
class DocumentDelete:
    paths: tuple[str, ...]

    @classmethod
    def at(cls, path: str) -> DocumentDelete:
        return cls((path,))


@dataclass(frozen=True)
class TopicMessage:
    """A Pub/Sub message; its consumers are idempotent, since delivery is at least once."""

    topic: str
    data: Mapping[str, Any]
    attributes: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class TaskRequest:
    """A Cloud Task calling `handler` with `payload` at `at` (now when None). Its name `task_id` is deterministic, so
    creating it twice creates it once."""

    queue: str
    task_id: str
    handler: str
    payload: Mapping[str, Any]
    at: datetime | None = None
    # The trace of the request that set the timer (shared/logging.py), so the handler's log lines join it.
    trace: str | None = None


Event = DocumentWrite | DocumentDelete | TopicMessage | TaskRequest
DocumentEvent = DocumentWrite | DocumentDelete

RowKind = Literal["firestore", "pubsub", "task"]


@dataclass(frozen=True)
class OutboxRow:
    """An event as the outbox table stores it."""

    kind: RowKind
    destination: str
    payload: dict[str, Any]


def encode(event: Event) -> OutboxRow:
    if isinstance(event, DocumentWrite | DocumentDelete):
        if isinstance(event, DocumentWrite):
            payload: dict[str, Any] = {"op": "merge" if event.merge else "set", "data": dict(event.data)}
        else:
            payload = {"op": "delete", "data": {}}
        if len(event.paths) != 1:
            payload["paths"] = list(event.paths)
        return OutboxRow("firestore", _destination(event.paths), payload)
    if isinstance(event, TopicMessage):
        return OutboxRow("pubsub", event.topic, {"data": dict(event.data), "attributes": dict(event.attributes)})
    task: dict[str, Any] = {
        "task_id": event.task_id,
        "handler": event.handler,
        "payload": dict(event.payload),
        "at": event.at.isoformat() if event.at else None,
    }
    if event.trace:
        task["trace"] = event.trace
    return OutboxRow("task", event.queue, task)


def decode(kind: str, destination: str, payload: Mapping[str, Any]) -> Event:
    """The event an outbox row stores. Raises ValueError for a row no event could have written."""
    if kind == "firestore":
        paths = tuple(payload.get("paths") or (destination,))
        if payload["op"] == "delete":
            return DocumentDelete(paths)
        if payload["op"] not in ("set", "merge"):
            raise ValueError(f"unknown document op {payload['op']!r}")
        return DocumentWrite(paths, payload["data"], merge=payload["op"] == "merge")
    if kind == "pubsub":
        attributes = payload.get("attributes") or {}
        if not isinstance(attributes, Mapping) or not all(
            isinstance(key, str) and isinstance(value, str) for key, value in attributes.items()
        ):
            raise ValueError("message attributes are text keys and text values")
        return TopicMessage(destination, payload["data"], attributes)
    if kind == "task":
        at = payload.get("at")
        return TaskRequest(
            destination,
            payload["task_id"],
            payload["handler"],
            payload["payload"],
            datetime.fromisoformat(at) if at else None,
            payload.get("trace") or None,
        )
    raise ValueError(f"unknown outbox kind {kind!r}")


def _destination(paths: tuple[str, ...]) -> str:
    """What a row says it writes: its path, or for many documents their common pattern (`mitras/*/offers/r1`)."""
    if not paths:
        raise ValueError("a document event names at least one path")
    if len(paths) == 1:
        return paths[0]
    split = [path.split("/") for path in paths]
    if len({len(parts) for parts in split}) != 1:
        return f"{paths[0]} (+{len(paths) - 1})"
    return "/".join(parts[0] if len(set(parts)) == 1 else "*" for parts in zip(*split, strict=True))


@dataclass(frozen=True)
class Committed:
    """An event of a committed transaction, under the id of the outbox row that holds it until it is delivered."""

    outbox_id: int
    event: Event


@dataclass(frozen=True)
class Claimed:
    """A pending outbox row taken for delivery: its event, or why none could be read from it."""

    outbox_id: int
    event: Event | None
    error: str | None = None
