"""Reading what reached a pull subscription on the Pub/Sub emulator, for tests that publish."""

from __future__ import annotations

import time
from typing import Any


def pull(subscription: str, expected: int, timeout: float = 10) -> list[Any]:
    """The messages (acknowledged as they come) once `expected` have arrived, or whatever came within `timeout`."""
    from google.cloud import pubsub_v1  # type: ignore[attr-defined]

    received: list[Any] = []
    deadline = time.monotonic() + timeout
    with pubsub_v1.SubscriberClient() as subscriber:
        while len(received) < expected and time.monotonic() < deadline:
            reply = subscriber.pull(subscription=subscription, max_messages=500, timeout=5)
            if reply.received_messages:
                subscriber.acknowledge(
                    subscription=subscription, ack_ids=[message.ack_id for message in reply.received_messages]
                )
            received.extend(message.message for message in reply.received_messages)
    return received
