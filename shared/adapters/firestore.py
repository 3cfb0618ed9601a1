"""Firestore through google-cloud-firestore; the emulator is used when FIRESTORE_EMULATOR_HOST is set."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shared.errors import Unavailable
from shared.services.ports import DocOp

# Firestore's own limit on writes per batch.
BATCH_LIMIT = 500
# Writes of up to this many documents (a message, a session update) may share a commit with other requests'.
GROUP_MAX_OPS = 10
# An outage must not hold a request for the client library's default minute of retrying: a batch that has not
# landed by then fails, and the outbox rows it came from are retried later by the projector.
_COMMIT_DEADLINE_S = 5.0


class FirestoreWriter:
    """Writes DocOps in batches. Small writes from concurrent requests share commits (group commit): one commit is
    in flight at a time, and the writes that arrive meanwhile go together in the next. Alone, a write is committed
    at once; under load, the instance sends one commit for many requests instead of one each."""

    def __init__(self, project_id: str) -> None:
        self._project_id = project_id
        self._client: Any = None
        self._retry: Any = None
        self._lock = threading.Lock()
        self._queue: list[_Pending] = []
        self._queue_lock = threading.Lock()
        self._committing = threading.Lock()

    @property
    def client(self) -> Any:
        with self._lock:
            if self._client is None:
                from google.api_core import exceptions, retry
                from google.cloud import firestore

                self._client = firestore.Client(project=self._project_id)
                transient = retry.if_exception_type(exceptions.ResourceExhausted, exceptions.ServiceUnavailable)
                self._retry = retry.Retry(initial=0.1, maximum=1.0, predicate=transient, timeout=_COMMIT_DEADLINE_S)
            return self._client

    def apply(self, ops: list[DocOp]) -> None:
        """Raises Unavailable when Firestore cannot be reached in time (the caller may retry). Either all of `ops`
        landed or, for a write of up to GROUP_MAX_OPS, none of them did."""
        if len(ops) > GROUP_MAX_OPS:  # a blast or a projector's batch: its own commits, in BATCH_LIMIT slices
            for start in range(0, len(ops), BATCH_LIMIT):
                self._commit(ops[start : start + BATCH_LIMIT])
            return
        mine = _Pending(ops)
        with self._queue_lock:
            self._queue.append(mine)
        with self._committing:
            while not mine.done:  # nobody took it along: commit it, with whatever waits before and behind it
                self._commit_group()
        if mine.error is not None:
            raise mine.error

    def _commit_group(self) -> None:
        group: list[_Pending] = []
        paths: set[str] = set()
        with self._queue_lock:
            # In arrival order; a write to a document already in the group waits for the next commit, so writes to
            # one document land in the order they came.
            while self._queue and len(group) < BATCH_LIMIT // GROUP_MAX_OPS:
                pending = self._queue[0]
                touched = {op.path for op in pending.ops}
                if group and touched & paths:
                    break
                group.append(self._queue.pop(0))
                paths |= touched
        try:
            self._commit([op for pending in group for op in pending.ops])
        except Exception as exc:  # unreachable, or an invalid document: every write of this commit failed with it
            for pending in group:
                pending.error = exc
        finally:
            for pending in group:
                pending.done = True

    def _commit(self, ops: list[DocOp]) -> None:
        from google.api_core import exceptions

        client = self.client
        batch = client.batch()
        decoded: dict[int, Any] = {}  # one document written to many paths (a blast's offers) is decoded once
        for op in ops:
            ref = client.document(op.path)
            if op.op == "delete":
                batch.delete(ref)
                continue
            if id(op.data) not in decoded:
                decoded[id(op.data)] = decode(op.data)
            batch.set(ref, decoded[id(op.data)], merge=op.op == "merge")
        try:
            batch.commit(retry=self._retry, timeout=_COMMIT_DEADLINE_S)
        except (exceptions.RetryError, exceptions.ServiceUnavailable, exceptions.DeadlineExceeded) as exc:
            raise Unavailable("Firestore is unreachable; retry the request") from exc


@dataclass
class _Pending:
    ops: list[DocOp]
    done: bool = False
    error: Exception | None = None


def decode(value: Any) -> Any:
    """Turn the outbox's JSON markers into Firestore values."""
    if isinstance(value, dict):
        if set(value) == {"$ts"}:
            return datetime.fromisoformat(value["$ts"])
        if set(value) == {"$delete"}:
            from google.cloud import firestore

            return firestore.DELETE_FIELD
        return {key: decode(item) for key, item in value.items()}
    if isinstance(value, list):
        return [decode(item) for item in value]
    return value
