"""The Pub/Sub adapter's group publishing against the Pub/Sub emulator: ids in the caller's order, every message
delivered once with its attributes, concurrent callers sharing one RPC, and failures reaching only their callers.

The behaviour every caller relies on is tested on both ways of publishing (HALO_PUBLIC_CLIENT_API): the fast path on
the generated client's channel, and the library's public PublisherClient. How the fast path groups RPCs on the
callers' own threads is its own (the library batches on a thread of its own), so those tests run on it alone."""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from google.api_core import exceptions

from emulators.stack import PROJECT, LocalStack
from shared.adapters.pubsub import PubSubPublisher
from tests.integration.pubsub_pull import pull

pytestmark = pytest.mark.needs_gcloud


@pytest.fixture
def topics(stack: LocalStack) -> Iterator[dict[str, str]]:
    """Two fresh topics, each with a pull subscription: {topic id: subscription path}."""
    from google.cloud import pubsub_v1  # type: ignore[attr-defined]

    admin, subscriber = pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient()
    made = {}
    for _ in range(2):
        name = f"publisher-{uuid.uuid4().hex[:12]}"
        admin.create_topic(name=admin.topic_path(PROJECT, name))
        subscription = subscriber.subscription_path(PROJECT, name)
        subscriber.create_subscription(name=subscription, topic=admin.topic_path(PROJECT, name))
        made[name] = subscription
    yield made
    for name, subscription in made.items():
        subscriber.delete_subscription(subscription=subscription)
        admin.delete_topic(topic=admin.topic_path(PROJECT, name))
    subscriber.close()


@pytest.fixture(params=[False, True], ids=["fast-path", "public-api"])
def public_api(request: pytest.FixtureRequest) -> bool:
    return bool(request.param)


class HeldFirstRpc:
    """The real Publish callable, except that the first RPC is held until `release` is set: while it is, every
    other caller's messages queue behind it. Records each request's message count."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.entered = threading.Event()
        self.release = threading.Event()
        self.sizes: list[int] = []

    def __call__(self, request: Any, **options: Any) -> Any:
        self.sizes.append(len(request.messages))
        if len(self.sizes) == 1:
            self.entered.set()
            assert self.release.wait(10)
        return self._inner(request, **options)


def test_ids_come_back_in_the_callers_order_and_every_message_arrives_once(
    topics: dict[str, str], public_api: bool
) -> None:
    first, second = topics
    publisher = PubSubPublisher(PROJECT, public_api=public_api)
    ids = publisher.publish_all(
        [(first, b"a", {"n": "1"}), (second, b"b", {}), (first, b"c", {"n": "3"}), (second, b"d", {"k": "v"})]
    )
    assert len(ids) == 4 and len(set(ids)) == 4 and all(ids)
    got_first = pull(topics[first], 2)
    got_second = pull(topics[second], 2)
    assert sorted((m.data, dict(m.attributes)) for m in got_first) == [(b"a", {"n": "1"}), (b"c", {"n": "3"})]
    assert sorted((m.data, dict(m.attributes)) for m in got_second) == [(b"b", {}), (b"d", {"k": "v"})]
    by_data = {m.data: m.message_id for m in [*got_first, *got_second]}
    assert [by_data[data] for data in (b"a", b"b", b"c", b"d")] == ids
    assert publisher.publish(first, b"e", {}) not in ids


def test_callers_arriving_while_an_rpc_is_in_flight_share_the_next_one(topics: dict[str, str]) -> None:
    topic = next(iter(topics))
    publisher = PubSubPublisher(PROJECT, public_api=False)
    held = HeldFirstRpc(publisher._publish_rpc())
    publisher._rpc = held
    results: dict[int, list[str]] = {}

    def publish(n: int) -> None:
        results[n] = publisher.publish_all([(topic, f"m{n}".encode(), {})])

    leader = threading.Thread(target=publish, args=(0,))
    leader.start()
    assert held.entered.wait(10)
    followers = [threading.Thread(target=publish, args=(n,)) for n in range(1, 11)]
    for thread in followers:
        thread.start()
    deadline = time.monotonic() + 10
    while publisher._lane(topic).waiting() < 10 and time.monotonic() < deadline:
        time.sleep(0.005)
    held.release.set()
    for thread in [leader, *followers]:
        thread.join(10)
    assert held.sizes == [1, 10], "the ten that waited went out together"
    assert sorted(results) == list(range(11)) and len({ids[0] for ids in results.values()}) == 11
    assert sorted(m.data for m in pull(topics[topic], 11)) == sorted(f"m{n}".encode() for n in range(11))
    assert settles_idle(publisher, topic)


def test_a_failed_rpc_fails_only_its_callers_and_the_topic_keeps_working(
    topics: dict[str, str], public_api: bool
) -> None:
    topic = next(iter(topics))
    publisher = PubSubPublisher(PROJECT, public_api=public_api)
    with pytest.raises(exceptions.NotFound):
        publisher.publish_all([("no-such-topic-here", b"lost", {}), (topic, b"fine", {})])
    assert [m.data for m in pull(topics[topic], 1)] == [b"fine"], "the other topic's message went out"
    with pytest.raises(exceptions.NotFound):
        publisher.publish("no-such-topic-here", b"again", {})
    assert publisher.publish(topic, b"after", {})
    assert [m.data for m in pull(topics[topic], 1)] == [b"after"]


def test_an_unreachable_pubsub_fails_the_caller_within_the_deadline(
    monkeypatch: pytest.MonkeyPatch, public_api: bool
) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", f"127.0.0.1:{port}")
    publisher = PubSubPublisher(PROJECT, public_api=public_api)
    started = time.monotonic()
    with pytest.raises((exceptions.ServiceUnavailable, exceptions.DeadlineExceeded)):
        publisher.publish("notify", b"x", {})
    assert time.monotonic() - started < 12
    assert settles_idle(publisher, "notify"), "the next caller is not stuck behind the failure"


def test_messages_one_at_a_time_are_sent_on_the_callers_thread(topics: dict[str, str]) -> None:
    first, second = topics
    publisher = PubSubPublisher(PROJECT, public_api=False)
    publisher.publish(first, b"warm", {})
    before = threading.active_count()
    for n in range(20):
        publisher.publish_all([(first, f"a{n}".encode(), {}), (second, f"b{n}".encode(), {})])
        assert threading.active_count() == before, "no thread is started to send or to wait"
    assert sorted(m.data for m in pull(topics[first], 21)) == sorted([b"warm", *(f"a{n}".encode() for n in range(20))])
    assert sorted(m.data for m in pull(topics[second], 20)) == sorted(f"b{n}".encode() for n in range(20))


def test_a_message_pubsub_cannot_encode_fails_its_caller_alone(topics: dict[str, str], public_api: bool) -> None:
    topic = next(iter(topics))
    publisher = PubSubPublisher(PROJECT, public_api=public_api)
    with pytest.raises(TypeError):
        publisher.publish_all([(topic, b"bad", {"n": 1})])  # type: ignore[dict-item]
    assert publisher.publish(topic, b"good", {"n": "1"})
    assert [m.data for m in pull(topics[topic], 1)] == [b"good"]


def settles_idle(publisher: PubSubPublisher, topic: str) -> bool:
    """No group of the topic is running or about to (the lead was not left with anyone)."""
    deadline = time.monotonic() + 2
    while publisher._lane(topic).busy() and time.monotonic() < deadline:
        time.sleep(0.005)
    return not publisher._lane(topic).busy()
