"""Pub/Sub publishing; the emulator is used when PUBSUB_EMULATOR_HOST is set."""

from __future__ import annotations

import threading
from typing import Any

_PUBLISH_TIMEOUT_S = 30


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
                from google.cloud import pubsub_v1  # type: ignore[attr-defined]

                # Our messages are few and latency matters more than batching.
                batch = pubsub_v1.types.BatchSettings(max_messages=100, max_latency=0.005)
                self._client = pubsub_v1.PublisherClient(batch_settings=batch)
            return self._client

    def topic_path(self, topic: str) -> str:
        return f"projects/{self._project_id}/topics/{topic}"

    def publish(self, topic: str, data: bytes, attributes: dict[str, str]) -> str:
        future = self.client.publish(self.topic_path(topic), data, **attributes)
        return str(future.result(timeout=_PUBLISH_TIMEOUT_S))
