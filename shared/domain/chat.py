"""Rules of the conversation itself: who may send, what a message may contain, how it reaches the apps, how
receipts and typing behave.

The rules that PostgreSQL must enforce atomically with the write are enforced there by the chat repository
(shared/adapters/postgres/chat.py); each such statement names the rule below that it implements, and each rule here
names the statement that enforces it.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Literal

from shared.domain import texts
from shared.domain.accounts import client_sees_session
from shared.domain.documents import (
    MESSAGE_TOPIC,
    MessageDocument,
    Receipts,
    SessionDocument,
    SideReceipts,
    Typing,
    TypingLease,
    message_path,
    session_path,
)
from shared.domain.events import Committed, DocumentWrite, TopicMessage, ts
from shared.domain.notify import push
from shared.domain.roles import Role

MAX_TEXT = 4000
# Typing is a lease written to the session document: apps show "typing…" until `typing_until` (TTL after the lease
# was written) and hide it when a message from that side arrives after `since`. Typing again renews the lease only
# once it is older than TYPING_RENEW_AFTER, so a chatty keyboard costs one write per participant every few seconds.
TYPING_TTL = timedelta(seconds=8)
TYPING_RENEW_AFTER = timedelta(seconds=6)
# Receipts wait this long for the reader's next session-document write (typing) to carry them; then they go alone.
RECEIPTS_COALESCE = timedelta(seconds=2)
HISTORY_PAGE_MAX = 100
# What a push shows on the lock screen when it does not show the message.
PUSH_PREVIEW_MAX = 80

Side = Literal["client", "mitra"]
MessageKind = Literal["text", "system", "goodbye"]


class InvalidText(ValueError):
    pass


class Receipt(StrEnum):
    DELIVERED = "delivered"
    READ = "read"


class SendRefusal(StrEnum):
    """Why a message was not stored."""

    SESSION_NOT_ACTIVE = "session_not_active"
    RATE_LIMITED = "rate_limited"
    # Its `client_message_id` stored a message already: the send is a retry.
    ALREADY_STORED = "already_stored"


def clean_text(raw: str) -> str:
    """1-4,000 characters after trimming; newlines and tabs are the only control characters allowed."""
    text = raw.strip()
    if not text:
        raise InvalidText("must not be empty")
    if len(text) > MAX_TEXT:
        raise InvalidText(f"must be at most {MAX_TEXT} characters")
    for char in text:
        if char not in "\n\t" and unicodedata.category(char) in {"Cc", "Cs"}:
            raise InvalidText("must not contain control characters")
    return text


def side_of(role: Role) -> Side:
    """Which side of a session a participant is on."""
    if role is Role.CLIENT:
        return "client"
    if role is Role.MITRA:
        return "mitra"
    raise ValueError("only a session's participants have a side")


@dataclass(frozen=True)
class Participant:
    """Someone who takes part in sessions, as the caller of a chat function."""

    role: Role
    account_id: str
    uid: str

    @property
    def side(self) -> Side:
        return side_of(self.role)


# -- sending -----------------------------------------------------------------------------------------------------------


def may_send(
    *, session_active: bool, ends_at: datetime, now: datetime, sent_last_minute: int, per_minute: int
) -> SendRefusal | None:
    """A participant sends while the session is active and before its end, at most `per_minute` messages a minute
    (setting `messages_per_minute`). Enforced with the insert, under the session's row lock, by
    `ChatRepository.append_if_sender_may_send`; None when the message may be stored."""
    if not session_active or now >= ends_at:
        return SendRefusal.SESSION_NOT_ACTIVE
    if sent_last_minute >= per_minute:
        return SendRefusal.RATE_LIMITED
    return None


@dataclass(frozen=True)
class NewMessage:
    """A message about to be stored. `seq` (its place in the session) and `created_at` are PostgreSQL's to give."""

    message_id: str
    session_id: str
    kind: MessageKind
    sender_role: str  # "client", "mitra", or "system"
    sender_uid: str | None
    text: str
    client_message_id: str | None = None
    # A system message's text key and fillers (shared/domain/texts): its document carries it in every language.
    text_key: str | None = None
    params: dict[str, str] | None = None


@dataclass(frozen=True)
class Sent:
    """A stored message: its id, its place in the session, and when PostgreSQL stored it."""

    message_id: str
    seq: int
    created_at: datetime


@dataclass(frozen=True)
class Appended:
    """A message stored by `append_if_sender_may_send`, with the events that statement recorded."""

    seq: int
    created_at: datetime
    committed: list[Committed]


@dataclass(frozen=True)
class Refused:
    reason: SendRefusal
    retry_after_s: int | None = None


def message_document(message: NewMessage) -> DocumentWrite:
    """The message's document in `sessions/{id}/messages`, before PostgreSQL gives it its place (`stamped`)."""
    data: dict[str, object] = {
        "message_id": message.message_id,
        "session_id": message.session_id,
        "kind": message.kind,
        "sender_role": message.sender_role,
        "sender_uid": message.sender_uid,
        "text": message.text,
        "status": "sent",
    }
    if message.client_message_id is not None:
        data["client_message_id"] = message.client_message_id
    if message.text_key is not None:
        data["text_key"] = message.text_key
        data["params"] = dict(message.params or {})
        data["text_by_locale"] = texts.by_locale(message.text_key, message.params)
    return DocumentWrite.at(
        message_path(message.session_id, message.message_id), MessageDocument.model_validate(data), merge=False
    )


def stamped(document: DocumentWrite, *, seq: int, created_at: datetime) -> DocumentWrite:
    """The document with the fields PostgreSQL assigned. `append_if_sender_may_send` stamps the same two fields
    into the outbox row it records in the same statement."""
    return DocumentWrite(document.paths, {**document.data, "seq": seq, "created_at": ts(created_at)}, document.merge)


def message_posted(message: NewMessage) -> TopicMessage:
    """The `chat-messages` event: the recipient's push, and for a client's message the crisis-signal check. It
    names the message and carries none of its words: `on_chat_message` reads what it needs when it runs."""
    return TopicMessage(
        MESSAGE_TOPIC,
        {"message_id": message.message_id, "session_id": message.session_id, "sender_role": message.sender_role},
    )


@dataclass(frozen=True)
class Recipient:
    """Who a stored message goes to, and what its push may show."""

    uid: str
    text: str | None
    # The recipient's side of the session ('client' or 'mitra').
    side: str
    # The session's client chose to see the beginning of messages in their pushes (client_profile push_previews).
    client_push_previews: bool


def push_shows_words(recipient: Recipient) -> bool:
    """A lock screen is public: a push shows a message's beginning only on the client's own devices and only when
    the client opted in (`push_previews`, off by default). A mitra's pushes never show a client's words."""
    return recipient.side == "client" and recipient.client_push_previews


def message_push(
    *, message_id: str, session_id: str, recipient_uid: str, text: str | None, show_text: bool
) -> TopicMessage:
    """The recipient's push: the message's beginning only where `push_shows_words` allows it, else just that one
    came."""
    shown = text[:PUSH_PREVIEW_MAX] if show_text and text else None
    return push(
        dedup_key=f"message:{message_id}",
        recipients=[recipient_uid],
        data={"type": "message", "session_id": session_id, "message_id": message_id},
        text_key="push.message" if shown is None else "push.message_preview",
        params={} if shown is None else {"preview": shown},
    )


# -- receipts and typing -----------------------------------------------------------------------------------------------


def watermarks(receipt: Receipt, seq: int, delivered: int, read: int) -> tuple[int, int]:
    """Receipts only move forward; reading a message implies it was delivered."""
    new_delivered = max(delivered, seq)
    new_read = max(read, seq) if receipt is Receipt.READ else read
    return new_delivered, new_read


@dataclass(frozen=True)
class Watermarks:
    """One side's receipts: delivered and read up to these `seq`s."""

    delivered: int
    read: int
    # The outbox row that will publish these watermarks unless another write carries them sooner.
    pending_outbox_id: int | None


@dataclass(frozen=True)
class TypingWritten:
    """A typing lease just written (or cleared) at `at`, and this side's watermarks to carry along."""

    at: datetime
    delivered: int
    read: int
    # This side's receipts still waiting for their own write: the typing write carries them.
    pending_receipts_outbox_id: int | None


def receipts_document(session_id: str, side: Side, *, delivered: int, read: int) -> DocumentWrite:
    """One side's watermarks on the session document; an app derives each message's ticks from them."""
    return DocumentWrite.at(
        session_path(session_id),
        SessionDocument(receipts=Receipts.model_validate({side: SideReceipts(delivered_seq=delivered, read_seq=read)})),
    )


def typing_renewable(lease_written_at: datetime | None, now: datetime) -> bool:
    """`typing: true` writes a lease only when there is none or it is old enough to renew. Enforced by
    `ChatRepository.typing`'s guarded UPDATE."""
    return lease_written_at is None or lease_written_at <= now - TYPING_RENEW_AFTER


def typing_clearable(lease_written_at: datetime | None, now: datetime, *, sent_since_lease: bool) -> bool:
    """`typing: false` clears a live lease, unless a message from this side has come since it was written (the apps
    hid the flag when that message arrived). Enforced by `ChatRepository.typing`'s guarded UPDATE."""
    live = lease_written_at is not None and lease_written_at > now - TYPING_TTL
    return live and not sent_since_lease


def typing_document(session_id: str, side: Side, lease_written_at: datetime | None) -> DocumentWrite:
    """The side's typing lease on the session document (`typing_until` null: not typing)."""
    lease = (
        TypingLease(since=ts(lease_written_at), typing_until=ts(lease_written_at + TYPING_TTL))
        if lease_written_at is not None
        else TypingLease(typing_until=None)
    )
    return DocumentWrite.at(session_path(session_id), SessionDocument(typing=Typing.model_validate({side: lease})))


def may_read(
    *,
    role: Role | None,
    account_id: str | None,
    client_id: str,
    mitra_id: str,
    started_at: datetime,
    client_history_from: datetime | None,
) -> bool:
    """Participants read their own sessions (a rerouted mitra no longer is one); a client's login only those it may
    since a takeover (`shared.domain.accounts.client_sees_session`). Admins are not participants: they read a
    session's words only through the control center's `admin_session_transcript`, with a reason, audited
    (shared/services/admin_sessions.py)."""
    if role is Role.CLIENT and account_id == client_id:
        return client_sees_session(started_at=started_at, history_from=client_history_from)
    return role is Role.MITRA and account_id == mitra_id
