"""Chat and session reading: request and response models."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import AfterValidator, Field

from shared.domain.chat import HISTORY_PAGE_MAX, MAX_TEXT, InvalidText, clean_text
from shared.schemas import Model, Reply


def _text(value: str) -> str:
    try:
        return clean_text(value)
    except InvalidText as exc:
        raise ValueError(str(exc)) from exc


MessageText = Annotated[
    str,
    AfterValidator(_text),
    Field(
        description=f"1-{MAX_TEXT:,} characters once trimmed of surrounding spaces; newlines and tabs are the only "
        "control characters allowed.",
        json_schema_extra={"x-max-length": MAX_TEXT},
    ),
]


class ChatSend(Model):
    session_id: UUID
    client_message_id: UUID
    text: MessageText


class ChatSent(Reply):
    message_id: str
    seq: int
    created_at: datetime


class ChatReceipts(Model):
    session_id: UUID
    up_to_message_id: UUID
    status: Literal["delivered", "read"]


class Watermarks(Reply):
    delivered_seq: int
    read_seq: int


class ChatTyping(Model):
    session_id: UUID
    typing: bool


class TypingAck(Reply):
    written: bool
    # How long the app waits before it sends `typing: true` again while the person keeps typing: sooner would
    # write nothing (the lease is renewed only once this old), so it would only cost a call.
    renew_after_s: int


class HistoryQuery(Model):
    session_id: UUID
    before: int | None = Field(default=None, ge=1, description="seq: return messages older than this")
    limit: int = Field(default=50, ge=1, le=HISTORY_PAGE_MAX)


class Message(Reply):
    message_id: str
    seq: int
    kind: str
    sender_role: str
    text: str | None
    created_at: datetime


class HistoryPage(Reply):
    messages: list[Message]
    next_before: int | None


class SessionsQuery(Model):
    cursor: str | None = Field(default=None, max_length=200)
    limit: int = Field(default=20, ge=1, le=50)


class SessionSummary(Reply):
    session_id: str
    status: str
    kind: str
    started_at: datetime
    ends_at: datetime
    client_name: str
    mitra_name: str
    mitra_id: str = Field(description="The mitra's id: `pairing_request.mitra_id` asks for this mitra again")


class SessionsPage(Reply):
    sessions: list[SessionSummary]
    next_cursor: str | None


class TranscriptQuery(Model):
    session_id: UUID


class Transcript(Reply):
    session: SessionSummary
    messages: list[Message]
