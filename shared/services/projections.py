"""The Firestore documents the apps listen to, and nothing else: their paths and shapes live here.

Each is written to the outbox of a transaction, or gathered in an `outbox.Batch` by a use case that inserts its rows
together and publishes them itself.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from shared.adapters.postgres.database import Tx
from shared.domain.documents import (
    NOTIFY_TOPIC,
    message_path,
    offer_path,
    payment_path,
    request_path,
    session_path,
)
from shared.domain.events import Committed, DocumentDelete, DocumentWrite
from shared.domain.notify import push
from shared.services import outbox
from shared.services.outbox import Batch, ts

__all__ = [
    "NOTIFY_TOPIC",
    "message_path",
    "offer_path",
    "payment_path",
    "push",
    "request_path",
    "session_path",
]


def request_status(
    tx: Tx | Batch, request_id: str, *, client_uid: str, status: str, at: datetime, extra: dict[str, Any] | None = None
) -> None:
    outbox.write_document(
        tx,
        request_path(request_id),
        {"request_id": request_id, "client_uid": client_uid, "status": status, "updated_at": ts(at), **(extra or {})},
    )


def offer_document(request_id: str, offer: dict[str, Any]) -> dict[str, Any]:
    return {"request_id": request_id, **offer}


# Stands for each mitra's uid in the path of `OfferDocuments`, for the statement to fill in.
_UID = "{uid}"


@dataclass(frozen=True)
class OfferDocuments:
    """One write to the offer document of each mitra a statement finds, recorded in the outbox by that statement
    itself as one row listing every path (for a thousand mitras: one document and a path pattern sent, one row
    stored and marked published).

    The statement includes the CTE `cte(source)`, where its CTE `source` yields `firebase_uid`, binds `params()`,
    and selects `RECORDED`; `committed` turns that column into what to publish, `count` into how many offers."""

    request_id: str
    op: Literal["merge", "delete"]
    data: dict[str, Any]

    @staticmethod
    def cte(source: str) -> str:
        return f"""offer_documents AS (
            INSERT INTO outbox (kind, destination, payload)
            SELECT 'firestore', :offers_path, CAST(:offer_payload AS jsonb)
                       || jsonb_build_object('paths', jsonb_agg(replace(:offer_path, :uid, firebase_uid)))
            FROM {source} HAVING count(*) > 0
            RETURNING id, payload -> 'paths' AS paths
        )"""

    # [outbox id, [path, ...]], or NULL when the statement found no one.
    RECORDED = "(SELECT json_build_array(id, paths) FROM offer_documents)"

    def params(self) -> dict[str, str]:
        return {"offer_path": offer_path(_UID, self.request_id), "uid": _UID,
                "offers_path": offer_path("*", self.request_id),
                "offer_payload": json.dumps(outbox.document_payload(self.data, op=self.op))}  # fmt: skip

    def committed(self, recorded: list[Any] | None) -> list[Committed]:
        if not recorded:
            return []
        outbox_id, paths = recorded
        if self.op == "delete":
            return [Committed(outbox_id, DocumentDelete(tuple(paths)))]
        return [Committed(outbox_id, DocumentWrite(tuple(paths), self.data))]

    @staticmethod
    def count(recorded: list[Any] | None) -> int:
        return len(recorded[1]) if recorded else 0


def offers(tx: Tx, request_id: str, mitra_uids: list[str], offer: dict[str, Any]) -> None:
    document = offer_document(request_id, offer)
    outbox.write_documents(tx, [(offer_path(uid, request_id), document) for uid in mitra_uids])


def withdraw_offers(tx: Tx | Batch, request_id: str, mitra_uids: list[str]) -> None:
    outbox.delete_documents(tx, [offer_path(uid, request_id) for uid in mitra_uids])


def withdraw_offer_pairs(tx: Tx, pairs: list[tuple[str, str]]) -> None:
    """(mitra_uid, request_id) pairs, e.g. every open offer of mitras going offline."""
    outbox.delete_documents(tx, [offer_path(uid, request_id) for uid, request_id in pairs])


def session_message(tx: Tx, session_id: str, message_id: str, data: dict[str, Any]) -> None:
    outbox.write_document(tx, message_path(session_id, message_id), data, op="set")


def session(tx: Tx | Batch, session_id: str, data: dict[str, Any]) -> None:
    outbox.write_document(tx, session_path(session_id), {"session_id": session_id, **data})


def payment(tx: Tx, transaction_id: str, *, client_uid: str, at: datetime, data: dict[str, Any]) -> None:
    """The client's app waits here for Xendit's word after sending the client to the invoice page."""
    outbox.write_document(
        tx,
        payment_path(transaction_id),
        {"transaction_id": transaction_id, "client_uid": client_uid, "updated_at": ts(at), **data},
    )


def notify(
    tx: Tx | Batch, *, dedup_key: str, recipients: list[str], data: dict[str, str], title: str | None = None,
    body: str | None = None,
) -> None:  # fmt: skip
    """A push to every device of these Firebase users, sent once per (dedup_key, user) by `on_notify`."""
    if recipients:
        message = push(dedup_key=dedup_key, recipients=recipients, data=data, title=title, body=body)
        outbox.publish(tx, message.topic, dict(message.data))
