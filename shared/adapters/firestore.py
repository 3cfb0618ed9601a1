"""Firestore through google-cloud-firestore; the emulator is used when FIRESTORE_EMULATOR_HOST is set."""

from __future__ import annotations

import threading
from datetime import datetime
from typing import Any

from shared.errors import Unavailable
from shared.services.ports import DocOp

# Firestore's own limit on writes per batch.
BATCH_LIMIT = 500
# An outage must not hold a request for the client library's default minute of retrying: a batch that has not
# landed by then fails, and the outbox rows it came from are retried later by the projector.
_COMMIT_DEADLINE_S = 5.0


class FirestoreWriter:
    def __init__(self, project_id: str) -> None:
        self._project_id = project_id
        self._client: Any = None
        self._retry: Any = None
        self._lock = threading.Lock()

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
        """Raises Unavailable when Firestore cannot be reached in time (the caller may retry)."""
        from google.api_core import exceptions

        client = self.client
        for start in range(0, len(ops), BATCH_LIMIT):
            batch = client.batch()
            for op in ops[start : start + BATCH_LIMIT]:
                ref = client.document(op.path)
                if op.op == "delete":
                    batch.delete(ref)
                else:
                    batch.set(ref, decode(op.data), merge=op.op == "merge")
            try:
                batch.commit(retry=self._retry, timeout=_COMMIT_DEADLINE_S)
            except (exceptions.RetryError, exceptions.ServiceUnavailable, exceptions.DeadlineExceeded) as exc:
                raise Unavailable("Firestore is unreachable; retry the request") from exc


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
