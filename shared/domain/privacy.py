"""A client's data: what we hold about them, what their deletion leaves, and how long message texts are kept.

Deleting a client (an admin on request, or the client themself) anonymises the profile, deletes their Firebase user
and erases the texts of every message of their sessions; the sessions, transactions and the financial ledger stay
(they are the business's records, and they no longer name anyone). Retention erases the texts of sessions closed
longer ago than `retention_days`. An erased text is NULL in PostgreSQL (the message and its `seq` stay) and removed
from its Firestore document, which says `erased`; erasure also reaches every copy of it (the crisis flag's matched
phrase and note, outbox rows not yet published). Published outbox rows keep no words at all, and are purged after
`PUBLISHED_KEEP_DAYS`. docs/privacy.md lists every place personal data lives.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from shared.domain.documents import (
    MessageDocument,
    SessionDocument,
    message_path,
    payment_path,
    request_path,
    session_path,
)
from shared.domain.events import DELETE_FIELD, DocumentDelete, DocumentWrite, Event

DELETED_NAME = "Deleted"

# Published outbox rows (ids, paths and statuses; never words, see shared/adapters/postgres/outbox.py) stay this long
# for tracing a delivery, the same week a point-in-time restore of the database reaches back.
PUBLISHED_KEEP_DAYS = 7

# Why an admin reads a client's words (a transcript, an export): 1-500 characters, kept in the audit log.
REASON_MAX = 500

# A row of what we hold about a client, as exported (shared/schemas/privacy.py gives each its shape).
Record = dict[str, Any]


@dataclass(frozen=True)
class ClientOnRecord:
    """What deleting a client needs to know of them."""

    firebase_uid: str | None
    deleted: bool
    anonymous: bool
    alias_number: int


@dataclass(frozen=True)
class Requester:
    """Who asks for a client's data or its deletion: an admin (with the reason they gave, audited) or the client
    themself (their UU PDP rights of access and erasure)."""

    uid: str
    role: str  # "admin" or "client"
    reason: str | None = None


@dataclass(frozen=True)
class ErasedText:
    session_id: str
    message_id: str


@dataclass(frozen=True)
class ClientSession:
    """A session of a client being deleted, and the mitra who keeps its (erased) history."""

    session_id: str
    mitra_uid: str | None


def retention_over(closed_at: datetime, retention_days: int, now: datetime) -> bool:
    """A closed session's texts are kept `retention_days` (setting `retention_days`), then erased. Applied by
    `PrivacyRepository.sessions_past_retention`."""
    return closed_at < now - timedelta(days=retention_days)


def erased(texts: Sequence[ErasedText]) -> list[DocumentWrite]:
    """Each erased message's document loses its text and says so: the apps show the message as removed."""
    return [
        DocumentWrite.at(
            message_path(text.session_id, text.message_id), MessageDocument(text=DELETE_FIELD, erased=True)
        )
        for text in texts
    ]


def forgotten(
    sessions: Sequence[ClientSession], *, shown_as: str, request_ids: Sequence[str], transaction_ids: Sequence[str]
) -> list[Event]:
    """A deleted client's uid leaves every document: their sessions keep only their mitra (and show the client as
    `shown_as`), and their own request and payment documents go."""
    events: list[Event] = [
        DocumentWrite.at(
            session_path(session.session_id),
            SessionDocument(
                participant_uids=[session.mitra_uid] if session.mitra_uid else [],
                client_uid=DELETE_FIELD,
                client_name=shown_as,
            ),
        )
        for session in sessions
    ]
    events += [DocumentDelete.at(request_path(request_id)) for request_id in request_ids]
    events += [DocumentDelete.at(payment_path(transaction_id)) for transaction_id in transaction_ids]
    return events
