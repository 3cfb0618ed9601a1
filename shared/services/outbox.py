"""Recording side effects in the same transaction as the change that causes them.

Each row's id is also collected on the transaction (`tx.outbox_ids`), so the use case can publish exactly what it
committed right after the commit (`projector.project_after_commit`). A hot use case instead gathers its rows in a
`Batch`, inserts them in one statement and publishes them from memory (`projector.publish_committed`).
"""

from __future__ import annotations

import json
from typing import Any, Literal

from shared.adapters.postgres.database import Tx
from shared.domain.events import DELETE_FIELD, Committed, decode, ts

__all__ = ["DELETE_FIELD", "Batch", "ts"]


class Batch:
    """Outbox rows gathered while a use case decides, then inserted together before it commits."""

    def __init__(self) -> None:
        self._rows: list[tuple[str, str, dict[str, Any]]] = []

    def add(self, kind: str, destination: str, payload: dict[str, Any]) -> None:
        self._rows.append((kind, destination, payload))

    def insert(self, tx: Tx) -> list[Committed]:
        """One statement for every row; each comes back with what it says, to publish without reading it back."""
        ids = _insert_rows(tx, self._rows)
        return [_committed(outbox_id, *row) for outbox_id, row in zip(ids, self._rows, strict=True)]


def document_payload(data: dict[str, Any], *, op: Literal["set", "merge", "delete"] = "merge") -> dict[str, Any]:
    """What a Firestore row of the outbox says."""
    return {"op": op, "data": data}


def message_payload(data: dict[str, Any], attributes: dict[str, str] | None = None) -> dict[str, Any]:
    """What a Pub/Sub row of the outbox says."""
    return {"data": data, "attributes": attributes or {}}


def write_document(
    tx: Tx | Batch, path: str, data: dict[str, Any], *, op: Literal["set", "merge"] = "merge"
) -> int | None:
    """The row's id (None when gathered in a Batch)."""
    return _insert(tx, "firestore", path, document_payload(data, op=op))


def write_documents(
    tx: Tx | Batch, docs: list[tuple[str, dict[str, Any]]], *, op: Literal["set", "merge"] = "merge"
) -> None:
    """Many documents in one statement (a blast to a thousand mitras is one round trip, not a thousand)."""
    _insert_many(tx, "firestore", [(path, document_payload(data, op=op)) for path, data in docs])


def delete_documents(tx: Tx | Batch, paths: list[str]) -> None:
    _insert_many(tx, "firestore", [(path, document_payload({}, op="delete")) for path in paths])


def delete_document(tx: Tx | Batch, path: str) -> int | None:
    return _insert(tx, "firestore", path, document_payload({}, op="delete"))


def publish(tx: Tx | Batch, topic: str, data: dict[str, Any], attributes: dict[str, str] | None = None) -> int | None:
    return _insert(tx, "pubsub", topic, message_payload(data, attributes))


def _insert_many(tx: Tx | Batch, kind: str, rows: list[tuple[str, dict[str, Any]]]) -> None:
    if isinstance(tx, Batch):
        for destination, payload in rows:
            tx.add(kind, destination, payload)
    elif rows:
        tx.outbox_ids.extend(_insert_rows(tx, [(kind, destination, payload) for destination, payload in rows]))


def _insert(tx: Tx | Batch, kind: str, destination: str, payload: dict[str, Any]) -> int | None:
    if isinstance(tx, Batch):
        tx.add(kind, destination, payload)
        return None
    outbox_id = int(
        tx.scalar(
            "INSERT INTO outbox (kind, destination, payload) VALUES (:kind, :destination, CAST(:payload AS jsonb))"
            " RETURNING id",
            {"kind": kind, "destination": destination, "payload": json.dumps(payload)},
        )
    )
    tx.outbox_ids.append(outbox_id)
    return outbox_id


def _insert_rows(tx: Tx, rows: list[tuple[str, str, dict[str, Any]]]) -> list[int]:
    """The rows' ids, in the rows' order. They travel as one JSON document: pg8000 spells a Python list out as an
    array literal element by element, which costs more than the insert itself."""
    if not rows:
        return []
    inserted = tx.all(
        """INSERT INTO outbox (kind, destination, payload)
           SELECT row ->> 0, row ->> 1, row -> 2
           FROM jsonb_array_elements(CAST(:rows AS jsonb)) WITH ORDINALITY AS rows (row, n)
           ORDER BY n
           RETURNING id""",
        {"rows": json.dumps(rows)},
    )
    # The ids are drawn from the sequence in the order the rows are inserted, which ORDER BY fixes.
    return sorted(row["id"] for row in inserted)


def _committed(outbox_id: int, kind: str, destination: str, payload: dict[str, Any]) -> Committed:
    return Committed(outbox_id, decode(kind, destination, payload))
