"""Chat: sending, receipts, typing, and reading a conversation back.

`send` is the hot path: one guarded statement decides whether the sender may send (shared.domain.chat.may_send),
stores the message and records its two events (the message's document and the `chat-messages` event); the
projector then delivers them from memory.
"""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from shared.domain import accounts
from shared.domain import chat as rules
from shared.domain.chat import (
    Appended,
    NewMessage,
    Participant,
    Receipt,
    Recipient,
    Refused,
    SendRefusal,
    Sent,
    Side,
    TypingWritten,
    Watermarks,
)
from shared.domain.config import AnonymityMode
from shared.domain.events import DocumentWrite, TopicMessage
from shared.domain.roles import Role
from shared.errors import Conflict, InvalidRequest, NotFound, RateLimited
from shared.services import projector
from shared.services.ports import Ports
from shared.services.unit_of_work import UnitOfWork

# A session or message as the reading use cases hand it to their functions, column by column.
Row = dict[str, Any]
# A deferred receipts row is the sweep's only if its task has not published it by then.
_RECEIPTS_SWEEP_GRACE_S = 10


class ChatRepository(Protocol):
    """What chat needs from storage (shared/adapters/postgres/chat.py)."""

    def append_if_sender_may_send(
        self, message: NewMessage, *, sender_id: str, document: DocumentWrite, posted: TopicMessage
    ) -> Appended | Refused: ...

    def stored(self, session_id: str, client_message_id: str) -> Sent | None: ...

    def append(self, message: NewMessage, *, sender_id: str | None) -> tuple[int, datetime]: ...

    def recipient(self, session_id: str, message_id: str) -> Recipient | None: ...

    def locked_watermarks(self, session_id: str, side: Side, account_id: str) -> Watermarks | None: ...

    def message_seq(self, session_id: str, message_id: str) -> int | None: ...

    def save_watermarks(self, session_id: str, side: Side, marks: Watermarks) -> None: ...

    def typing(
        self, session_id: str, side: Side, account_id: str, *, typing: bool, renew_s: float, ttl_s: float
    ) -> TypingWritten | None: ...

    def is_participant(self, session_id: str, side: Side, account_id: str) -> bool: ...

    def session_view(self, session_id: str) -> Row | None: ...

    def history(self, session_id: str, *, before_seq: int | None, limit: int) -> list[Row]: ...

    def messages(self, session_id: str) -> list[Row]: ...

    def sessions_of(
        self, side: Side, account_id: str, *, after: tuple[datetime, str] | None, limit: int
    ) -> list[Row]: ...


# -- sending -----------------------------------------------------------------------------------------------------------


def send(ports: Ports, sender: Participant, *, session_id: str, client_message_id: str, text: str) -> Sent:
    """Idempotent on `client_message_id`: a retry returns the first message and writes nothing."""
    message = NewMessage(
        message_id=str(uuid.uuid4()),
        session_id=session_id,
        kind="text",
        sender_role=sender.side,
        sender_uid=sender.uid,
        text=text,
        client_message_id=client_message_id,
    )
    with ports.uow(one_statement=True) as uow:
        outcome = uow.chat.append_if_sender_may_send(
            message,
            sender_id=sender.account_id,
            document=rules.message_document(message),
            posted=rules.message_posted(message),
        )
        if isinstance(outcome, Refused):
            return _stored_earlier(uow, session_id, client_message_id, outcome)
        uow.outbox.recorded(outcome.committed)
        committed = uow.commit()
    projector.deliver(ports, committed)
    return Sent(message_id=message.message_id, seq=outcome.seq, created_at=outcome.created_at)


def _stored_earlier(uow: UnitOfWork, session_id: str, client_message_id: str, refused: Refused) -> Sent:
    """A retry of a message already stored gets that message; any other refusal is the caller's answer."""
    earlier = uow.chat.stored(session_id, client_message_id)
    if earlier is not None:
        return earlier
    if refused.reason is SendRefusal.RATE_LIMITED:
        raise RateLimited("too many messages in the last minute", retry_after_s=refused.retry_after_s or 1)
    if refused.reason is SendRefusal.SESSION_NOT_ACTIVE:
        raise Conflict("this session is not open for messages", code="session_not_active")
    raise AssertionError("a message that conflicted on insert must exist")


def push_for(ports: Ports, *, session_id: str, message_id: str) -> TopicMessage | None:
    """The recipient's push for a stored message (the `chat-messages` event names the message only); None when the
    message or its recipient is gone."""
    with ports.uow(one_statement=True) as uow:
        recipient = uow.chat.recipient(session_id, message_id)
    if recipient is None:
        return None
    return rules.message_push(
        message_id=message_id,
        session_id=session_id,
        recipient_uid=recipient.uid,
        text=recipient.text,
        show_text=rules.push_shows_words(recipient),
    )


def post(uow: UnitOfWork, message: NewMessage, *, sender_id: str | None) -> Sent:
    """A system or goodbye message inside the caller's change (which holds the session's row lock)."""
    seq, created_at = uow.chat.append(message, sender_id=sender_id)
    uow.outbox.add(rules.stamped(rules.message_document(message), seq=seq, created_at=created_at))
    return Sent(message_id=message.message_id, seq=seq, created_at=created_at)


# -- receipts and typing -----------------------------------------------------------------------------------------------


def receipts(
    ports: Ports, reader: Participant, *, session_id: str, up_to_message_id: str, receipt: Receipt
) -> dict[str, int]:
    """Delivered/read up to a message of the other side: monotonic watermarks. They reach Firestore with this side's
    next session-document write (typing, usually right after reading) or, failing that, RECEIPTS_COALESCE later
    from one pending outbox row per side that each call brings up to date: at most one write however often apps
    call this."""
    side = reader.side
    deferred: int | None = None
    with ports.uow() as uow:
        marks = uow.chat.locked_watermarks(session_id, side, reader.account_id)
        if marks is None:
            raise NotFound("no such session")
        seq = uow.chat.message_seq(session_id, up_to_message_id)
        if seq is None:
            raise InvalidRequest(
                "no such message in this session", fields=[{"field": "up_to_message_id", "problem": "unknown"}]
            )
        delivered, read = rules.watermarks(receipt, seq, marks.delivered, marks.read)
        if (delivered, read) != (marks.delivered, marks.read):
            document = rules.receipts_document(session_id, side, delivered=delivered, read=read)
            pending = marks.pending_outbox_id
            if pending is not None and not uow.outbox.replace_if_pending(pending, document):
                pending = None  # published meanwhile: these watermarks need a row of their own
            if pending is None:
                delay = rules.RECEIPTS_COALESCE.total_seconds() + _RECEIPTS_SWEEP_GRACE_S
                pending = deferred = uow.outbox.add_deferred(document, delay_s=delay)
            uow.chat.save_watermarks(session_id, side, Watermarks(delivered, read, pending))
        uow.commit()
    if deferred is not None:
        projector.schedule_retry(ports, [deferred], at=datetime.now(UTC) + rules.RECEIPTS_COALESCE)
    return {"delivered_seq": delivered, "read_seq": read}


# What chat_typing tells the app: send `typing: true` again no sooner than this while the person keeps typing.
TYPING_RENEW_AFTER_S = int(rules.TYPING_RENEW_AFTER.total_seconds())


def typing(ports: Ports, typist: Participant, *, session_id: str, is_typing: bool) -> bool:
    """Returns whether this call was written to Firestore. Typing is ephemeral, so it skips the outbox: a lease
    (shared.domain.chat.typing_renewable / typing_clearable) written straight to the session document, with this
    side's pending receipts riding along."""
    side = typist.side
    with ports.uow(one_statement=True) as uow:
        written = uow.chat.typing(
            session_id,
            side,
            typist.account_id,
            typing=is_typing,
            renew_s=rules.TYPING_RENEW_AFTER.total_seconds(),
            ttl_s=rules.TYPING_TTL.total_seconds(),
        )
        if written is None:
            if not uow.chat.is_participant(session_id, side, typist.account_id):
                raise NotFound("no such session")
            return False
        lease = rules.typing_document(session_id, side, written.at if is_typing else None)
        receipts = rules.receipts_document(session_id, side, delivered=written.delivered, read=written.read)
        carried = written.pending_receipts_outbox_id
        data = {**lease.data, **receipts.data} if carried is not None else lease.data
        ports.documents.apply([DocumentWrite(lease.paths, data)])
        if carried is not None:  # its row is done, unless newer receipts have replaced it since
            uow.outbox.mark_published_if_unchanged(carried, receipts)
    return True


# -- reading back ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reader:
    """Who reads a conversation through the apps: one of its participants (`shared.domain.chat.may_read`). An
    admin reads it through the control center (shared/services/admin_sessions.py `transcript`), audited."""

    role: Role | None
    account_id: str | None
    uid: str


def history(
    ports: Ports, reader: Reader, *, session_id: str, before_seq: int | None, limit: int
) -> tuple[list[Row], int | None]:
    """Keyset pagination on `seq` (stable under concurrent inserts): newest page first, each page oldest→newest."""
    with ports.uow() as uow:
        _readable(uow, reader, session_id)
        rows = uow.chat.history(session_id, before_seq=before_seq, limit=limit + 1)
    more = len(rows) > limit
    page = list(reversed(rows[:limit]))
    return page, (page[0]["seq"] if more and page else None)


def transcript(ports: Ports, reader: Reader, *, session_id: str) -> tuple[Row, list[Row]]:
    """The whole conversation, for one of its participants."""
    with ports.uow() as uow:
        session = _readable(uow, reader, session_id)
        session["client_name"] = client_name(session, reader.role, uow.settings.load().anonymity_mode)
        messages = uow.chat.messages(session_id)
    return session, messages


def _readable(uow: UnitOfWork, reader: Reader, session_id: str) -> Row:
    session = uow.chat.session_view(session_id)
    if session is None or not rules.may_read(
        role=reader.role,
        account_id=reader.account_id,
        client_id=session["client_id"],
        mitra_id=session["mitra_id"],
        started_at=session["started_at"],
        client_history_from=session["client_history_from"],
    ):
        raise NotFound("no such session")
    return session


def client_name(session: Row, role: Role | None, mode: AnonymityMode) -> str:
    """The client as this reader is shown them: their own name to the client, as the anonymity mode says to anyone
    else."""
    if role is Role.CLIENT:
        return str(session["client_display_name"])
    return accounts.name_for_mitra(
        display_name=session["client_display_name"],
        anonymous=session["anonymous"],
        alias_number=session["alias_number"],
        mode=mode,
    )


def list_sessions(
    ports: Ports, participant: Participant, *, cursor: str | None, limit: int
) -> tuple[list[Row], str | None]:
    """Newest first, keyset on (started_at, id)."""
    with ports.uow() as uow:
        mode = uow.settings.load().anonymity_mode
        rows = uow.chat.sessions_of(
            participant.side, participant.account_id, after=_decode_cursor(cursor), limit=limit + 1
        )
    more = len(rows) > limit
    page = rows[:limit]
    for row in page:
        row["client_name"] = client_name(row, participant.role, mode)
    next_cursor = _encode_cursor(page[-1]["started_at"], page[-1]["session_id"]) if more and page else None
    return page, next_cursor


def _encode_cursor(at: datetime, session_id: str) -> str:
    return base64.urlsafe_b64encode(f"{at.isoformat()}|{session_id}".encode()).decode()


def _decode_cursor(cursor: str | None) -> tuple[datetime, str] | None:
    if not cursor:
        return None
    try:
        at, session_id = base64.urlsafe_b64decode(cursor.encode()).decode().split("|")
        return datetime.fromisoformat(at), str(uuid.UUID(session_id))
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidRequest(
            "the cursor is not one we issued", fields=[{"field": "cursor", "problem": "invalid"}]
        ) from exc
