"""Recording side effects in the same transaction as the change that causes them.

Each row's id is also collected on the transaction (`tx.outbox_ids`), so the use case can publish exactly what it
committed right after the commit (`projector.project_after_commit`).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Literal

from shared.adapters.db import Tx


def ts(moment: datetime) -> dict[str, str]:
    """A timestamp for Firestore, carried through the outbox's JSON."""
    return {"$ts": moment.isoformat()}


DELETE_FIELD = {"$delete": True}


def write_document(tx: Tx, path: str, data: dict[str, Any], *, op: Literal["set", "merge"] = "merge") -> int:
    return _insert(tx, "firestore", path, {"op": op, "data": data})


def write_documents(tx: Tx, docs: list[tuple[str, dict[str, Any]]], *, op: Literal["set", "merge"] = "merge") -> None:
    """Many documents in one statement (a blast to a thousand mitras is one round trip, not a thousand)."""
    if docs:
        _insert_many(tx, "firestore", [(path, {"op": op, "data": data}) for path, data in docs])


def delete_documents(tx: Tx, paths: list[str]) -> None:
    if paths:
        _insert_many(tx, "firestore", [(path, {"op": "delete", "data": {}}) for path in paths])


def delete_document(tx: Tx, path: str) -> int:
    return _insert(tx, "firestore", path, {"op": "delete", "data": {}})


def publish(tx: Tx, topic: str, data: dict[str, Any], attributes: dict[str, str] | None = None) -> int:
    return _insert(tx, "pubsub", topic, {"data": data, "attributes": attributes or {}})


def _insert_many(tx: Tx, kind: str, rows: list[tuple[str, dict[str, Any]]]) -> None:
    inserted = tx.all(
        """INSERT INTO outbox (kind, destination, payload)
           SELECT :kind, destination, CAST(payload AS jsonb)
           FROM unnest(CAST(:destinations AS text[]), CAST(:payloads AS text[])) AS rows (destination, payload)
           RETURNING id""",
        {"kind": kind, "destinations": [path for path, _ in rows], "payloads": [json.dumps(p) for _, p in rows]},
    )
    tx.outbox_ids.extend(row["id"] for row in inserted)


def _insert(tx: Tx, kind: str, destination: str, payload: dict[str, Any]) -> int:
    outbox_id = int(
        tx.scalar(
            "INSERT INTO outbox (kind, destination, payload) VALUES (:kind, :destination, CAST(:payload AS jsonb))"
            " RETURNING id",
            {"kind": kind, "destination": destination, "payload": json.dumps(payload)},
        )
    )
    tx.outbox_ids.append(outbox_id)
    return outbox_id
