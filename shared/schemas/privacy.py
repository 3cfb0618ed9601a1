"""A client's data on request: export as JSON, and deletion (by an admin, or by the client themself)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import AfterValidator, Field

from shared.domain.privacy import REASON_MAX
from shared.schemas import Model, Reply


def _said_something(reason: str) -> str:
    if not reason.strip():
        raise ValueError("a reason is more than blanks")
    return reason


# Why an admin reads a client's words: kept in the audit log with the read.
Reason = Annotated[str, Field(min_length=1, max_length=REASON_MAX), AfterValidator(_said_something)]


class ClientDataQuery(Model):
    """An export of everything held about one client, messages included, so the admin says why (audited)."""

    client_id: UUID
    reason: Reason


class OwnDataQuery(Model):
    """The signed-in client's own data: nothing to name."""


class DeleteOwnAccount(Model):
    """The signed-in client's deletion of their own account; `confirm` guards against an accidental call."""

    confirm: Literal[True]


class DeleteClientData(Model):
    """Anonymise the profile, unlink and sign out the Firebase user, erase the texts of the client's sessions.
    Sessions, transactions and the ledger stay. Refused (409 `client_busy`) during an open session or search."""

    action: Literal["delete"]
    client_id: UUID


class ExportedProfile(Reply):
    client_id: str
    display_name: str
    alias: str
    anonymous: bool
    phone: str | None
    email: str | None
    # The language the backend writes to them in, and whether their pushes show a message's words.
    locale: str
    push_previews: bool
    created_at: datetime
    suspended_at: datetime | None
    deleted_at: datetime | None


class ExportedSession(Reply):
    session_id: str
    kind: str
    status: str
    mitra_name: str
    started_at: datetime
    ends_at: datetime
    closed_at: datetime | None


class ExportedMessage(Reply):
    message_id: str
    session_id: str
    seq: int
    kind: str
    sender_role: str
    # Null once erased (deletion or retention).
    text: str | None
    created_at: datetime


class ExportedTransaction(Reply):
    transaction_id: str
    purpose: str
    tier_id: str
    duration_s: int
    amount: int
    currency: str
    status: str
    payment_method: str | None
    payment_channel: str | None
    created_at: datetime
    paid_at: datetime | None
    expired_at: datetime | None


class ExportedFeedback(Reply):
    session_id: str
    rating: int
    # Null when none was given, or once erased.
    comment: str | None
    created_at: datetime
    updated_at: datetime


class ExportedReport(Reply):
    """A report the client filed (never one filed about them; never the deciding admin's note)."""

    report_id: str
    session_id: str
    category: str
    # Null once erased.
    text: str | None
    status: str
    created_at: datetime
    decided_at: datetime | None


class ExportedBlock(Reply):
    """A block the client made (never a mitra's block of them)."""

    block_id: str
    session_id: str
    mitra_name: str
    created_at: datetime


class ExportedCreditBack(Reply):
    """The unused time of a session an admin ended early, credited back to the client's balance."""

    session_id: str
    unused_s: int
    amount: int
    currency: str
    created_at: datetime


class ExportedCreditBackUse(Reply):
    """What a checkout took from the credited-back balance (`use`), or gave back to it (`return`)."""

    transaction_id: str
    kind: str
    amount: int
    currency: str
    created_at: datetime


class ClientData(Reply):
    """Everything held about one client. After a deletion, what remains of it."""

    exported_at: datetime
    profile: ExportedProfile
    sessions: list[ExportedSession]
    messages: list[ExportedMessage]
    transactions: list[ExportedTransaction]
    feedback: list[ExportedFeedback]
    reports: list[ExportedReport]
    blocks: list[ExportedBlock]
    credit_backs: list[ExportedCreditBack]
    credit_back_uses: list[ExportedCreditBackUse]
