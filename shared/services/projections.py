"""The Firestore documents the apps listen to, and nothing else: their paths and shapes live here."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from shared.adapters.db import Tx
from shared.services import outbox
from shared.services.outbox import ts


def request_path(request_id: str) -> str:
    return f"pairing_requests/{request_id}"


def offer_path(mitra_uid: str, request_id: str) -> str:
    return f"mitras/{mitra_uid}/offers/{request_id}"


def session_path(session_id: str) -> str:
    return f"sessions/{session_id}"


def payment_path(transaction_id: str) -> str:
    return f"payments/{transaction_id}"


def request_status(
    tx: Tx, request_id: str, *, client_uid: str, status: str, at: datetime, extra: dict[str, Any] | None = None
) -> None:
    outbox.write_document(
        tx,
        request_path(request_id),
        {"request_id": request_id, "client_uid": client_uid, "status": status, "updated_at": ts(at), **(extra or {})},
    )


def offers(tx: Tx, request_id: str, mitra_uids: list[str], offer: dict[str, Any]) -> None:
    outbox.write_documents(
        tx, [(offer_path(uid, request_id), {"request_id": request_id, **offer}) for uid in mitra_uids]
    )


def withdraw_offers(tx: Tx, request_id: str, mitra_uids: list[str]) -> None:
    outbox.delete_documents(tx, [offer_path(uid, request_id) for uid in mitra_uids])


def withdraw_offer_pairs(tx: Tx, pairs: list[tuple[str, str]]) -> None:
    """(mitra_uid, request_id) pairs, e.g. every open offer of mitras going offline."""
    outbox.delete_documents(tx, [offer_path(uid, request_id) for uid, request_id in pairs])


def session_message(tx: Tx, session_id: str, message_id: str, data: dict[str, Any]) -> None:
    outbox.write_document(tx, f"{session_path(session_id)}/messages/{message_id}", data, op="set")


def session(tx: Tx, session_id: str, data: dict[str, Any]) -> None:
    outbox.write_document(tx, session_path(session_id), {"session_id": session_id, **data})


def payment(tx: Tx, transaction_id: str, *, client_uid: str, at: datetime, data: dict[str, Any]) -> None:
    """The client's app waits here for Xendit's word after sending the client to the invoice page."""
    outbox.write_document(
        tx,
        payment_path(transaction_id),
        {"transaction_id": transaction_id, "client_uid": client_uid, "updated_at": ts(at), **data},
    )


def notify(
    tx: Tx, *, dedup_key: str, recipients: list[str], data: dict[str, str], title: str | None = None,
    body: str | None = None,
) -> None:  # fmt: skip
    """A push to every device of these Firebase users, sent once per (dedup_key, user) by `on_notify`."""
    if recipients:
        outbox.publish(
            tx, "notify", {"dedup_key": dedup_key, "recipients": recipients, "data": data, "title": title, "body": body}
        )
