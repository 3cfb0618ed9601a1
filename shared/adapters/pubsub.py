"""Pub/Sub publishing; the emulator is used when PUBSUB_EMULATOR_HOST is set.

Group publishing, the Pub/Sub twin of the Firestore writer's group commit: per topic, one Publish RPC is in flight
at a time, and the messages that arrive meanwhile go together in the next one. Alone, a message is sent after a 1 ms
window; under load an instance sends one RPC for many requests instead of one each. Every caller still waits for its
own message ids before its request ends (Cloud Functions may take the CPU away once a request has answered).

Each topic has one sender thread, started with its first message, that makes the RPCs one after another as blocking
calls. gRPC's own asynchronous calls would start a thread to poll the channel whenever none is in flight, which
costs more CPU than the RPC itself when messages come one at a time.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

# An outage must not hold a request: a publish that has not landed by then fails, and the outbox row it came from
# is retried later by the projector.
_PUBLISH_TIMEOUT_S = 5.0
# How long a message that finds its topic idle waits for others to share its RPC (the client library's batch
# `max_latency`, whose default is 10 ms): under load more requests share one RPC, and the caller, already past its
# Firestore write, waits a millisecond longer for its reply.
GROUP_WINDOW_S = 0.001
# Pub/Sub's limits for one Publish request are 1,000 messages and 10 MB; a group stays well inside both.
GROUP_MAX_MESSAGES = 1000
GROUP_MAX_BYTES = 8 * 1024 * 1024
# Failures worth one immediate resend of the same group (a dropped connection, a busy server); anything else, and
# a second failure, fails every message of the group and its callers fall back to the outbox.
_RESEND_ONCE = ("UNAVAILABLE", "ABORTED", "RESOURCE_EXHAUSTED", "INTERNAL", "UNKNOWN")


class PublishError(RuntimeError):
    """A Publish RPC failed (or did not answer in time); none of its messages may be assumed published."""


@dataclass
class _Pending:
    """One caller's messages to one topic, and what became of them."""

    messages: list[tuple[bytes, dict[str, str]]]
    size: int
    done: threading.Event = field(default_factory=threading.Event)
    ids: list[str] = field(default_factory=list)
    error: Exception | None = None


@dataclass
class _Lane:
    """A topic's queue and its sender; `busy` while the sender has a group in hand (in its window or in flight)."""

    path: str
    lock: threading.Lock = field(default_factory=threading.Lock)
    queue: list[_Pending] = field(default_factory=list)
    busy: bool = False
    sender: threading.Thread | None = None
    wake: threading.Condition = field(init=False)

    def __post_init__(self) -> None:
        self.wake = threading.Condition(self.lock)

    def take(self) -> list[_Pending]:
        """The next group, in arrival order (call with the lock held)."""
        group: list[_Pending] = []
        count = size = 0
        while self.queue:
            pending = self.queue[0]
            if group and (count + len(pending.messages) > GROUP_MAX_MESSAGES or size + pending.size > GROUP_MAX_BYTES):
                break
            group.append(self.queue.pop(0))
            count += len(pending.messages)
            size += pending.size
        return group


class PubSubPublisher:
    def __init__(self, project_id: str) -> None:
        self._project_id = project_id
        self._rpc: Any = None
        self._client: Any = None
        self._types: tuple[Any, Any] = (None, None)
        self._lock = threading.Lock()
        self._lanes: dict[str, _Lane] = {}

    def _publish_rpc(self) -> Any:
        """The Publish method as a gRPC callable on the generated client's channel (authenticated as that client
        is), taking plain protobuf messages: its `.future` puts a request in flight without a thread, and building a
        plain message costs a fraction of the generated client's wrapper types."""
        with self._lock:
            if self._rpc is None:
                # Heavy import, paid only by functions that publish: the generated client alone, not the batching
                # library around it.
                from google.pubsub_v1.services.publisher import PublisherClient
                from google.pubsub_v1.types import PublishRequest, PublishResponse, PubsubMessage

                options: dict[str, Any] = {}
                emulator = os.environ.get("PUBSUB_EMULATOR_HOST")
                if emulator:
                    from google.auth.credentials import AnonymousCredentials

                    credentials = AnonymousCredentials()  # type: ignore[no-untyped-call]
                    options = {"client_options": {"api_endpoint": emulator}, "credentials": credentials}
                self._client = PublisherClient(**options)  # holds the channel open
                self._types = (PublishRequest.pb(), PubsubMessage.pb())
                self._rpc = self._client.transport.grpc_channel.unary_unary(
                    "/google.pubsub.v1.Publisher/Publish",
                    request_serializer=PublishRequest.pb().SerializeToString,
                    response_deserializer=PublishResponse.pb().FromString,
                )
            return self._rpc

    def topic_path(self, topic: str) -> str:
        return f"projects/{self._project_id}/topics/{topic}"

    def publish(self, topic: str, data: bytes, attributes: dict[str, str]) -> str:
        return self.start([(topic, data, attributes)])()[0]

    def start(self, messages: Sequence[tuple[str, bytes, dict[str, str]]]) -> Callable[[], list[str]]:
        """Put every message in flight at once (each topic's share joins that topic's next RPC); the returned call
        waits for their ids, in the order given, raising the first failure. The caller may do other work
        meanwhile."""
        by_topic: dict[str, list[int]] = {}
        for index, (topic, _, _) in enumerate(messages):
            by_topic.setdefault(topic, []).append(index)
        waits: list[tuple[list[int], _Pending]] = []
        for topic, indexes in by_topic.items():
            batch = [(messages[i][1], messages[i][2]) for i in indexes]
            pending = _Pending(batch, sum(len(data) + 64 for data, _ in batch))
            lane = self._lane(topic)
            with lane.lock:
                lane.queue.append(pending)
                if lane.sender is None:
                    lane.sender = threading.Thread(
                        target=self._sender, args=(lane,), name=f"pubsub-{topic}", daemon=True
                    )
                    lane.sender.start()
                lane.wake.notify()
            waits.append((indexes, pending))

        def wait() -> list[str]:
            ids = [""] * len(messages)
            for indexes, pending in waits:
                if not pending.done.wait(2 * _PUBLISH_TIMEOUT_S + 1):
                    raise PublishError("Pub/Sub did not answer in time")
                if pending.error is not None:
                    raise pending.error
                for index, message_id in zip(indexes, pending.ids, strict=True):
                    ids[index] = message_id
            return ids

        return wait

    def _lane(self, topic: str) -> _Lane:
        lane = self._lanes.get(topic)
        if lane is None:
            with self._lock:
                lane = self._lanes.setdefault(topic, _Lane(self.topic_path(topic)))
        return lane

    def _sender(self, lane: _Lane) -> None:
        """The topic's RPCs, one at a time, for as long as the process lives. After an idle spell the first message
        waits GROUP_WINDOW_S for company; then every group that queued meanwhile goes out, back to back."""
        while True:
            with lane.lock:
                while not lane.queue:
                    lane.busy = False
                    lane.wake.wait()
                lane.busy = True
            time.sleep(GROUP_WINDOW_S)
            while True:
                with lane.lock:
                    group = lane.take()
                if not group:
                    break
                self._send(lane, group)

    def _send(self, lane: _Lane, group: list[_Pending]) -> None:
        """One Publish RPC for `group` (resent once after a transient failure); every caller in it learns the
        outcome. Never raises: the sender thread must outlive any failure."""
        ids: list[str] | None = None
        error: Exception | None = None
        try:
            rpc = self._publish_rpc()
            request_type, message_type = self._types
            request = request_type(
                topic=lane.path,
                messages=[
                    message_type(data=data, attributes=attributes)
                    for pending in group
                    for data, attributes in pending.messages
                ],
            )
            metadata = [("x-goog-request-params", f"topic={quote(lane.path, safe='')}")]
            ids = self._call(rpc, request, metadata)
        except Exception as exc:  # no channel, a message Pub/Sub's types refuse, or the RPC failed
            error = exc
        offset = 0
        for pending in group:
            if ids is not None and len(ids) >= offset + len(pending.messages):
                pending.ids = ids[offset : offset + len(pending.messages)]
            else:
                pending.error = error or PublishError("Pub/Sub answered with fewer ids than messages")
            offset += len(pending.messages)
            pending.done.set()

    @staticmethod
    def _call(rpc: Any, request: Any, metadata: list[tuple[str, str]]) -> list[str]:
        for attempt in (1, 2):
            try:
                response = rpc(request, timeout=_PUBLISH_TIMEOUT_S, metadata=metadata)
            except Exception as exc:
                code_of = getattr(exc, "code", None)  # a grpc.RpcError's StatusCode
                status = code_of() if callable(code_of) else None
                if attempt == 1 and getattr(status, "name", "") in _RESEND_ONCE:
                    continue
                raise _as_api_error(exc) from exc
            return list(response.message_ids)
        raise AssertionError("the second attempt returns or raises")


def _as_api_error(exc: Exception) -> Exception:
    """A gRPC failure as the google.api_core exception the client libraries raise (NotFound, ServiceUnavailable,
    ...), so logs and the outbox's `last_error` name what happened."""
    import grpc
    from google.api_core import exceptions

    return exceptions.from_grpc_error(exc) if isinstance(exc, grpc.RpcError) else exc  # type: ignore[no-untyped-call]
