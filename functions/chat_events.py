"""What follows a chat message, off the send path: the recipient's push and the crisis-signal check."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Literal
from uuid import UUID

from pydantic import BaseModel

from functions._events import pubsub_handler
from shared import bootstrap
from shared.domain.notify import Notification
from shared.logging import event
from shared.services import chat, notify, safety

log = logging.getLogger("halo.events")


class MessageSent(BaseModel):
    message_id: UUID
    session_id: UUID
    sender_role: Literal["client", "mitra"]


@pubsub_handler(MessageSent)
def on_chat_message(sent: MessageSent, _message_id: str) -> None:
    """Push the message to the recipient's devices and, when a client wrote it, check it for crisis signals. Each
    step runs whatever became of the other, so an FCM outage never holds a check back, nor a failing check a push;
    if either failed the event is redelivered, and the step that had succeeded does nothing the second time (a push
    goes once per dedup key and recipient, a message is flagged once)."""

    def push() -> None:
        message = chat.push_for(bootstrap.ports(), session_id=str(sent.session_id), message_id=str(sent.message_id))
        if message is not None:
            notify.deliver(bootstrap.ports(), bootstrap.fcm(), Notification(**message.data))

    def check() -> None:
        safety.check_message(bootstrap.ports(), message_id=str(sent.message_id), session_id=str(sent.session_id))

    steps: list[tuple[str, Callable[[], None]]] = [("push", push)]
    if sent.sender_role == "client":
        steps.append(("safety_check", check))
    failed: list[Exception] = []
    for name, step in steps:
        try:
            step()
        except Exception as exc:
            event(log, "chat message step failed", logging.WARNING, step=name, error=type(exc).__name__)
            failed.append(exc)
    if failed:
        raise failed[0]
