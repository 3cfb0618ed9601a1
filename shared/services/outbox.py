"""Recording side effects in the same transaction as the change that causes them."""

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


def delete_document(tx: Tx, path: str) -> int:
    return _insert(tx, "firestore", path, {"op": "delete", "data": {}})


def publish(tx: Tx, topic: str, data: dict[str, Any], attributes: dict[str, str] | None = None) -> int:
    return _insert(tx, "pubsub", topic, {"data": data, "attributes": attributes or {}})


def _insert(tx: Tx, kind: str, destination: str, payload: dict[str, Any]) -> int:
    return int(
        tx.scalar(
            "INSERT INTO outbox (kind, destination, payload) VALUES (:kind, :destination, CAST(:payload AS jsonb))"
            " RETURNING id",
            {"kind": kind, "destination": destination, "payload": json.dumps(payload)},
        )
    )
