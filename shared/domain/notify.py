"""A push notification to people's devices, as the event that asks for it (sent by `on_notify`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from shared.domain.documents import NOTIFY_TOPIC
from shared.domain.events import TopicMessage


def push(
    *,
    dedup_key: str,
    recipients: Sequence[str],
    data: Mapping[str, str],
    title: str | None = None,
    body: str | None = None,
) -> TopicMessage:
    """Sent once per (dedup_key, recipient), to every device the recipient registered. `data` is what the app
    acts on; `title` and `body` are what a lock screen shows."""
    return TopicMessage(
        NOTIFY_TOPIC,
        {"dedup_key": dedup_key, "recipients": list(recipients), "data": dict(data), "title": title, "body": body},
    )
