"""Session lifecycle: early end, goodbye notes, extensions."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from pydantic import Field

from shared.schemas import Model, Reply
from shared.schemas.chat import MessageText


class SessionRef(Model):
    session_id: UUID


class SessionEnded(Reply):
    session_id: str
    status: str


class Goodbye(Model):
    session_id: UUID
    text: MessageText


class GoodbyeSent(Reply):
    message_id: str
    seq: int
    created_at: datetime


class ExtensionRequest(Model):
    session_id: UUID
    tier_id: str = Field(min_length=1, max_length=40)


class ExtensionRespond(Model):
    extension_id: UUID
    accept: bool


class ExtensionState(Reply):
    extension_id: str
    status: str
    respond_by: datetime
