"""Pub/Sub publishing; the emulator is used when PUBSUB_EMULATOR_HOST is set.

Group publishing, the Pub/Sub twin of the Firestore writer's group commit (shared/adapters/group_commit.py): per
topic, one Publish RPC is in flight at a time, and the messages that arrive meanwhile go together in the next one.
Alone, a message is sent at once, on the caller's own thread; under load an instance sends one RPC for many requests
instead of one each. Every caller waits for its own message ids before its request ends (Cloud Functions may take
the CPU away once a request has answered).

RPCs are blocking calls on the generated client's channel, taking plain protobuf messages: gRPC's asynchronous calls
would start a thread to poll the channel whenever none is in flight, which costs more CPU than the RPC itself when
messages come one at a time, and the generated client's wrapper types cost several times what plain messages do.
That fast path reaches under the generated client (`transport.grpc_channel`, the Publish method's wire name, the
`.pb()` protobuf types); `private_api_problems()` says whether the installed library still offers all of it, and
tests/unit/test_client_library_canary.py fails, naming what changed, on an upgrade that breaks it.

With `public_client_api` (HALO_PUBLIC_CLIENT_API) set, messages go through the library's public
`google.cloud.pubsub_v1.PublisherClient.publish` instead, whose futures each caller waits for: the same ids in the
same order, the same errors, within the same deadline; the library batches on its own thread.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from shared import metering
from shared.adapters.group_commit import GroupCommit

# An outage must not hold a request: a publish that has not landed by then fails, and the outbox row it came from
# is retried later by the projector.
_PUBLISH_TIMEOUT_S = 5.0
# Pub/Sub's limits for one Publish request are 1,000 messages and 10 MB; a group stays well inside both.
GROUP_MAX_MESSAGES = 1000
GROUP_MAX_BYTES = 8 * 1024 * 1024
# Failures worth one immediate resend of the same group (a dropped connection, a busy server); anything else, and
# a second failure, fails every message of the group and its callers fall back to the outbox.
_RESEND_ONCE = ("UNAVAILABLE", "ABORTED", "RESOURCE_EXHAUSTED", "INTERNAL", "UNKNOWN")


class PublishError(RuntimeError):
    """A Publish RPC answered with fewer ids than it carried messages: none of them may be assumed published."""


@dataclass
class _Pending:
    """One caller's messages to one topic (plain PubsubMessage protobufs), and the ids Pub/Sub gave them."""

    messages: list[Any]
    size: int
    ids: list[str] = field(default_factory=list)


def _take(waiting: Sequence[_Pending]) -> int:
    """Callers in arrival order, as many as one Publish request holds."""
    count = size = taken = 0
    for pending in waiting:
        if taken and (count + len(pending.messages) > GROUP_MAX_MESSAGES or size + pending.size > GROUP_MAX_BYTES):
            break
        count += len(pending.messages)
        size += pending.size
        taken += 1
    return taken


class PubSubPublisher:
    def __init__(self, project_id: str, *, public_api: bool | None = None) -> None:
        self._project_id = project_id
        # The library's public API instead of the fast path (None: as the settings say).
        self.public_api = _public_api_setting() if public_api is None else public_api
        self._public: Any = None
        self._rpc: Any = None
        self._client: Any = None
        self._types: tuple[Any, Any] = (None, None)
        self._lock = threading.Lock()
        self._lanes: dict[str, GroupCommit[_Pending]] = {}

    def _publish_rpc(self) -> Any:
        """The Publish method as a gRPC callable on the generated client's channel (authenticated as that client
        is), taking plain protobuf messages."""
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
                try:
                    channel = self._client.transport.grpc_channel
                except AttributeError as exc:
                    raise RuntimeError(
                        "google-cloud-pubsub's PublisherClient no longer has transport.grpc_channel, which the Pub/Sub "
                        "fast path uses: set HALO_PUBLIC_CLIENT_API=true (the library's public API), see "
                        "docs/operations.md"
                    ) from exc
                self._rpc = channel.unary_unary(
                    PUBLISH_METHOD,
                    request_serializer=PublishRequest.pb().SerializeToString,
                    response_deserializer=PublishResponse.pb().FromString,
                )
            return self._rpc

    def warm(self) -> None:
        """Import the client and open the channel ahead of the first publish (shared/bootstrap.py)."""
        if self.public_api:
            self._public_client()
        else:
            self._publish_rpc()

    def topic_path(self, topic: str) -> str:
        return f"projects/{self._project_id}/topics/{topic}"

    def publish(self, topic: str, data: bytes, attributes: dict[str, str]) -> str:
        return self.publish_all([(topic, data, attributes)])[0]

    def publish_all(self, messages: Sequence[tuple[str, bytes, dict[str, str]]]) -> list[str]:
        """Publish (topic, data, attributes) messages, each topic's share in that topic's next RPC, and return their
        ids in the order given. Every topic is tried; then the first failure is raised (a message Pub/Sub's types
        refuse fails its caller alone, before anything is sent)."""
        if self.public_api:
            metering.count("pubsub.message", len(messages))
            return self._publish_all_public(messages)
        self._publish_rpc()
        _, message_type = self._types
        by_topic: dict[str, list[int]] = {}
        for index, (topic, _, _) in enumerate(messages):
            by_topic.setdefault(topic, []).append(index)
        ids = [""] * len(messages)
        failure: Exception | None = None
        for topic, indexes in by_topic.items():
            try:
                pending = _Pending(
                    [message_type(data=messages[i][1], attributes=messages[i][2]) for i in indexes],
                    sum(len(messages[i][1]) + 64 for i in indexes),
                )
                self._lane(topic).submit(pending)
            except Exception as exc:
                failure = failure or exc
                continue
            for index, message_id in zip(indexes, pending.ids, strict=True):
                ids[index] = message_id
        if failure is not None:
            raise failure
        return ids

    def _lane(self, topic: str) -> GroupCommit[_Pending]:
        lane = self._lanes.get(topic)
        if lane is None:
            path = self.topic_path(topic)
            with self._lock:
                lane = self._lanes.setdefault(topic, GroupCommit(lambda group: self._send(path, group), take=_take))
        return lane

    def _send(self, path: str, group: list[_Pending]) -> None:
        """One Publish RPC for `group`, resent once after a transient failure; each caller gets its ids."""
        request_type, _ = self._types
        request = request_type(topic=path, messages=[message for pending in group for message in pending.messages])
        metering.count("pubsub.message", len(request.messages))
        metadata = [("x-goog-request-params", f"topic={quote(path, safe='')}")]
        for attempt in (1, 2):
            try:
                response = self._rpc(request, timeout=_PUBLISH_TIMEOUT_S, metadata=metadata)
                break
            except Exception as exc:
                code_of = getattr(exc, "code", None)  # a grpc.RpcError's StatusCode
                status = code_of() if callable(code_of) else None
                if attempt == 1 and getattr(status, "name", "") in _RESEND_ONCE:
                    continue
                raise _as_api_error(exc) from exc
        ids = list(response.message_ids)
        if len(ids) != len(request.messages):
            raise PublishError("Pub/Sub answered with fewer ids than messages")
        offset = 0
        for pending in group:
            pending.ids = ids[offset : offset + len(pending.messages)]
            offset += len(pending.messages)

    # -- the public path ------------------------------------------------------------------------------------------

    def _public_client(self) -> Any:
        """The library's batching publisher (it reads PUBSUB_EMULATOR_HOST itself). Batches leave at once rather than
        after the library's default 10 ms, and each publish is retried only within our deadline."""
        with self._lock:
            if self._public is None:
                from google.api_core import exceptions, retry
                from google.cloud import pubsub_v1  # type: ignore[attr-defined]

                transient = tuple(getattr(exceptions, name) for name in _RESEND_ONCE_ERRORS)
                policy = retry.Retry(  # type: ignore[no-untyped-call]
                    predicate=retry.if_exception_type(*transient),  # type: ignore[no-untyped-call]
                    initial=0.1,
                    maximum=1.0,
                    timeout=_PUBLISH_TIMEOUT_S,
                )
                self._public = pubsub_v1.PublisherClient(
                    batch_settings=pubsub_v1.types.BatchSettings(
                        max_messages=GROUP_MAX_MESSAGES, max_bytes=GROUP_MAX_BYTES, max_latency=0.001
                    ),
                    publisher_options=pubsub_v1.types.PublisherOptions(retry=policy, timeout=_PUBLISH_TIMEOUT_S),
                )
            return self._public

    def _publish_all_public(self, messages: Sequence[tuple[str, bytes, dict[str, str]]]) -> list[str]:
        client = self._public_client()
        by_topic: dict[str, list[int]] = {}
        for index, (topic, _, _) in enumerate(messages):
            by_topic.setdefault(topic, []).append(index)
        ids = [""] * len(messages)
        failure: Exception | None = None
        pending: list[tuple[str, list[int], list[Any]]] = []
        for topic, indexes in by_topic.items():
            try:
                for i in indexes:  # a topic's messages are checked before any of them is handed to the library
                    _check_message(messages[i][1], messages[i][2])
                futures = [client.publish(self.topic_path(topic), messages[i][1], **messages[i][2]) for i in indexes]
            except Exception as exc:
                failure = failure or exc
                continue
            pending.append((topic, indexes, futures))
        for _topic, indexes, futures in pending:
            try:
                for index, future in zip(indexes, futures, strict=True):
                    ids[index] = _result(future)
            except Exception as exc:
                failure = failure or exc
        if failure is not None:
            raise failure
        return ids


# gRPC status names worth retrying, and the google.api_core errors the library raises for them.
_RESEND_ONCE_ERRORS = ("ServiceUnavailable", "Aborted", "ResourceExhausted", "InternalServerError", "Unknown")


def _public_api_setting() -> bool:
    from shared.config import get_settings

    return get_settings().public_client_api


def _check_message(data: Any, attributes: dict[str, Any]) -> None:
    """What the library would refuse (as the fast path's protobuf types do), refused for the whole topic at once."""
    if not isinstance(data, bytes):
        raise TypeError("a Pub/Sub message's data is bytes")
    for key, value in attributes.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise TypeError("Pub/Sub message attributes are text keys and text values")


def _result(future: Any) -> str:
    """A publish future's message id; a retry that ran out is reported as the failure it gave up on."""
    import concurrent.futures

    from google.api_core import exceptions

    try:
        message_id: str = future.result(timeout=2 * _PUBLISH_TIMEOUT_S)
    except exceptions.RetryError as exc:
        if isinstance(exc.cause, Exception):
            raise exc.cause from exc
        raise _deadline_exceeded(str(exc)) from exc
    except concurrent.futures.TimeoutError as exc:
        raise _deadline_exceeded("Pub/Sub did not answer in time") from exc
    return message_id


def _deadline_exceeded(message: str) -> Exception:
    from google.api_core import exceptions

    error: Exception = exceptions.DeadlineExceeded(message)  # type: ignore[no-untyped-call]
    return error


PUBLISH_METHOD = "/google.pubsub.v1.Publisher/Publish"


def private_api_problems() -> list[str]:
    """What the installed google-cloud-pubsub no longer offers the fast path, each naming what changed; empty when
    the fast path can run. Builds a client with anonymous credentials: nothing is sent."""
    import inspect

    from google.auth.credentials import AnonymousCredentials

    problems: list[str] = []
    try:
        from google.pubsub_v1.services.publisher import PublisherClient
        from google.pubsub_v1.services.publisher.transports import grpc as generated
        from google.pubsub_v1.types import PublishRequest, PublishResponse, PubsubMessage
    except ImportError as exc:
        return [f"google.pubsub_v1 no longer has the generated client or its types: {exc}"]
    client = PublisherClient(credentials=AnonymousCredentials())  # type: ignore[no-untyped-call]
    channel = getattr(getattr(client, "transport", None), "grpc_channel", None)
    if not callable(getattr(channel, "unary_unary", None)):
        problems.append("PublisherClient.transport.grpc_channel is gone or not a gRPC channel")
    publish = getattr(generated.PublisherGrpcTransport, "publish", None)
    if not isinstance(publish, property) or PUBLISH_METHOD not in inspect.getsource(publish.fget):  # type: ignore[arg-type]
        problems.append(f"the generated Publisher transport no longer calls {PUBLISH_METHOD}")
    needed = (
        (PublishRequest, ("topic", "messages")),
        (PubsubMessage, ("data", "attributes")),
        (PublishResponse, ("message_ids",)),
    )
    for wrapper, fields in needed:
        pb = getattr(wrapper, "pb", None)
        if not callable(pb):
            problems.append(f"{wrapper.__name__}.pb() is gone")
            continue
        missing = [name for name in fields if name not in pb().DESCRIPTOR.fields_by_name]
        if missing:
            problems.append(f"{wrapper.__name__} has no field {', '.join(missing)}")
    close = getattr(getattr(client, "transport", None), "close", None)
    if callable(close):
        close()
    return problems


def _as_api_error(exc: Exception) -> Exception:
    """A gRPC failure as the google.api_core exception the client libraries raise (NotFound, ServiceUnavailable,
    ...), so logs and the outbox's `last_error` name what happened."""
    import grpc
    from google.api_core import exceptions

    return exceptions.from_grpc_error(exc) if isinstance(exc, grpc.RpcError) else exc  # type: ignore[no-untyped-call]
