"""Pub/Sub publishing; the emulator is used when PUBSUB_EMULATOR_HOST is set."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

# An outage must not hold a request for the client library's default ten minutes of retrying: a publish that has
# not landed by then fails, and the outbox row it came from is retried later by the projector.
_PUBLISH_TIMEOUT_S = 5.0


class PubSubPublisher:
    def __init__(self, project_id: str) -> None:
        self._project_id = project_id
        self._client: Any = None
        self._lock = threading.Lock()

    @property
    def client(self) -> Any:
        with self._lock:
            if self._client is None:
                # Heavy import, paid only by functions that publish.
                from google.api_core import exceptions, retry
                from google.cloud import pubsub_v1  # type: ignore[attr-defined]

                # Our messages are few and latency matters more than batching.
                batch = pubsub_v1.types.BatchSettings(max_messages=100, max_latency=0.001)
                transient = retry.if_exception_type(
                    exceptions.Aborted, exceptions.DeadlineExceeded, exceptions.InternalServerError,
                    exceptions.ResourceExhausted, exceptions.ServiceUnavailable, exceptions.Unknown,
                )  # fmt: skip
                options = pubsub_v1.types.PublisherOptions(
                    retry=retry.Retry(initial=0.1, maximum=1.0, predicate=transient, timeout=_PUBLISH_TIMEOUT_S),
                    timeout=_PUBLISH_TIMEOUT_S,
                )
                self._client = pubsub_v1.PublisherClient(batch_settings=batch, publisher_options=options)
            return self._client

    def topic_path(self, topic: str) -> str:
        return f"projects/{self._project_id}/topics/{topic}"

    def publish(self, topic: str, data: bytes, attributes: dict[str, str]) -> str:
        return self.start([(topic, data, attributes)])()[0]

    def start(self, messages: Sequence[tuple[str, bytes, dict[str, str]]]) -> Callable[[], list[str]]:
        """Put every message in flight at once; the returned call waits for their ids (raising the first failure),
        so a message to each of two topics costs one wait, and the caller can do other work meanwhile."""
        futures = [
            self.client.publish(self.topic_path(topic), data, **attributes) for topic, data, attributes in messages
        ]

        def wait() -> list[str]:
            return [str(future.result(timeout=_PUBLISH_TIMEOUT_S + 1)) for future in futures]

        return wait
