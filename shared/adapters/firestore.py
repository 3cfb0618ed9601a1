"""Firestore through google-cloud-firestore; the emulator is used when FIRESTORE_EMULATOR_HOST is set."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from shared.adapters.group_commit import GroupCommit
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
        self._group = GroupCommit(self._commit_group, take=_next_group)

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
        self._group.submit(ops)

    def _commit_group(self, writes: list[list[DocOp]]) -> None:
        self._commit([op for ops in writes for op in ops])

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


def _next_group(waiting: Sequence[list[DocOp]]) -> int:
    """In arrival order; a write to a document already in the group waits for the next commit, so writes to one
    document land in the order they came."""
    paths: set[str] = set()
    for count, ops in enumerate(waiting[: BATCH_LIMIT // GROUP_MAX_OPS]):
        touched = {op.path for op in ops}
        if touched & paths:
            return count
        paths |= touched
    return min(len(waiting), BATCH_LIMIT // GROUP_MAX_OPS)


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
