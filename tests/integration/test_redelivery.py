"""Exactly-once effects under at-least-once delivery: every Pub/Sub and Cloud Tasks handler, delivered again, at
the same time and out of order, leaves the same world as one delivery — no second offer, push, message, closure or
charge.

Messages reach the gateway the way Pub/Sub push and Cloud Tasks deliver them (HTTP, the same bodies), against states
arranged in PostgreSQL (the gateway's database). The running stack keeps doing its own work meanwhile (scheduled
sweeps every second, timers, push subscriptions), which is one more source of duplicate deliveries.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest
import requests

from emulators.pubsub_wiring import push_endpoint
from emulators.stack import DATABASE, PROJECT, XENDIT_SECRET_KEY, LocalStack
from functions.manifest import BY_NAME, FUNCTIONS
from shared.adapters.postgres.database import Database
from shared.adapters.xendit_payments import XenditInvoices

pytestmark = pytest.mark.needs_gcloud

ROOT = Path(__file__).resolve().parents[2]
T = TypeVar("T")
PRICE = 35_000
OK = (200, 204)


class Deliveries:
    """Pub/Sub push and Cloud Tasks as the gateway sees them (with the callers' signed tokens: pushes go through the
    stack's relay, tasks carry the tasks invoker's), so a test can deliver any message again, at will."""

    def __init__(self, stack: LocalStack) -> None:
        self.stack = stack
        self.url = stack.functions_url
        self.http = requests.Session()

    def push(self, function: str, payload: dict[str, Any], message_id: str | None = None) -> int:
        spec = BY_NAME[function]
        assert spec.trigger == "pubsub" and spec.topic is not None
        envelope = {
            "subscription": f"projects/{PROJECT}/subscriptions/{spec.topic}--{function}",
            "message": {
                "data": base64.b64encode(json.dumps(payload).encode()).decode(),
                "messageId": message_id or uuid.uuid4().hex,
                "publishTime": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
                "attributes": {},
            },
        }
        url = push_endpoint(self.stack.relay_url, function, PROJECT, spec.topic)
        return requests.post(url, json=envelope, timeout=60).status_code

    def task(self, function: str, payload: dict[str, Any]) -> tuple[int, str]:
        """(status, outcome word or error code), as Cloud Tasks would see the answer."""
        assert BY_NAME[function].trigger == "task"
        headers = {
            "X-CloudTasks-TaskName": f"redelivery-{uuid.uuid4().hex}",
            "X-CloudTasks-TaskRetryCount": "0",
            "Authorization": f"Bearer {self.stack.caller_token(function)}",
        }
        response = requests.post(f"{self.url}/{function}", json=payload, headers=headers, timeout=60)
        body = response.json()
        return response.status_code, body.get("outcome") or body["error"]["code"]


def at_once(calls: Sequence[Callable[[], T]]) -> list[T]:
    """Every call released at the same instant, each on its own thread (and so its own gateway connection)."""
    start = threading.Barrier(len(calls))

    def run(call: Callable[[], T]) -> T:
        start.wait()
        return call()

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(run, calls))


def eventually(check: Callable[[], bool], timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout}s: {check.__doc__ or check}")
        time.sleep(0.1)


# -- the world, arranged in the gateway's database ------------------------------------------------------------------


@pytest.fixture(scope="module")
def halo(stack: LocalStack) -> Iterator[Database]:
    database = Database(lambda: stack.postgres.connect(DATABASE), max_idle=4)
    yield database
    database.close()


@pytest.fixture(scope="module")
def deliver(stack: LocalStack) -> Deliveries:
    return Deliveries(stack)


@pytest.fixture
def quiet(halo: Database) -> None:
    """Earlier tests' mitras offline and their searches ended, so a blast reaches only this test's mitras."""
    with halo.transaction() as tx:
        tx.execute("UPDATE mitras SET presence = 'offline' WHERE presence = 'online'")
        tx.execute("UPDATE pairing_requests SET status = 'cancelled', ended_at = now() WHERE status = 'searching'")
        tx.execute("UPDATE pairing_offers SET status = 'withdrawn' WHERE status = 'offered'")


def add_client(halo: Database) -> tuple[str, str]:
    uid = f"client-{uuid.uuid4().hex}"
    with halo.transaction() as tx:
        client_id = tx.scalar(
            """INSERT INTO clients (firebase_uid, display_name, alias_number)
               VALUES (:uid, 'Klien', 1000 + (random() * 998000)::int) RETURNING id::text""",
            {"uid": uid},
        )
    return str(client_id), uid


def add_mitra(halo: Database) -> tuple[str, str]:
    """An online mitra with a fresh heartbeat."""
    uid = f"mitra-{uuid.uuid4().hex}"
    with halo.transaction() as tx:
        mitra_id = tx.scalar(
            """INSERT INTO mitras (phone, display_name, firebase_uid, presence, last_heartbeat_at, heard_until)
               VALUES (:phone, 'Mitra Ulang', :uid, 'online', now(), now() + interval '90 seconds')
               RETURNING id::text""",
            {"phone": f"+62816{uuid.uuid4().int % 10**8:08d}", "uid": uid},
        )
    return str(mitra_id), uid


def add_device(halo: Database, uid: str) -> str:
    token = f"redelivery-{uuid.uuid4().hex}"
    with halo.transaction() as tx:
        tx.execute(
            "INSERT INTO devices (token, firebase_uid, platform) VALUES (:t, :uid, 'android')", {"t": token, "uid": uid}
        )
    return token


def add_request(halo: Database, client_id: str, *, deadline_in_s: int, status: str = "searching") -> str:
    with halo.transaction() as tx:
        request_id = tx.scalar(
            """INSERT INTO pairing_requests (client_id, status, kind, duration_s, search_deadline, ended_at)
               VALUES (CAST(:c AS uuid), :status, 'free_trial', 900, now() + make_interval(secs => :deadline),
                       CASE WHEN :status = 'searching' THEN NULL ELSE now() END)
               RETURNING id::text""",
            {"c": client_id, "status": status, "deadline": deadline_in_s},
        )
    return str(request_id)


def add_offers(halo: Database, request_id: str, mitra_ids: list[str]) -> None:
    with halo.transaction() as tx:
        for mitra_id in mitra_ids:
            tx.execute(
                "INSERT INTO pairing_offers (request_id, mitra_id) VALUES (CAST(:r AS uuid), CAST(:m AS uuid))",
                {"r": request_id, "m": mitra_id},
            )


def add_session(halo: Database, client_id: str, mitra_id: str, *, ends_in_s: int) -> str:
    """An active session that started ten minutes ago, reached through a matched request."""
    request_id = add_request(halo, client_id, deadline_in_s=-600, status="matched")
    with halo.transaction() as tx:
        tx.execute(
            "UPDATE pairing_requests SET mitra_id = CAST(:m AS uuid) WHERE id = CAST(:r AS uuid)",
            {"m": mitra_id, "r": request_id},
        )
        session_id = tx.scalar(
            """INSERT INTO sessions (request_id, client_id, mitra_id, kind, started_at, ends_at)
               VALUES (CAST(:r AS uuid), CAST(:c AS uuid), CAST(:m AS uuid), 'free_trial',
                       now() - interval '10 minutes', now() + make_interval(secs => :ends))
               RETURNING id::text""",
            {"r": request_id, "c": client_id, "m": mitra_id, "ends": ends_in_s},
        )
    return str(session_id)


def rows(halo: Database, sql: str, **params: Any) -> list[dict[str, Any]]:
    with halo.transaction() as tx:
        return tx.all(sql, params)


def count(halo: Database, sql: str, **params: Any) -> int:
    with halo.transaction() as tx:
        return int(tx.scalar(sql, params))


def notifications(halo: Database, dedup_key: str) -> list[dict[str, Any]]:
    """The `notify` messages committed to the outbox under one dedup key (their data as published)."""
    found = rows(
        halo,
        """SELECT payload -> 'data' AS data FROM outbox
           WHERE kind = 'pubsub' AND destination = 'notify' AND payload -> 'data' ->> 'dedup_key' = :key ORDER BY id""",
        key=dedup_key,
    )
    return [dict(row["data"]) for row in found]


def doc_writes(halo: Database, path: str) -> list[dict[str, Any]]:
    """Every Firestore write committed to the outbox for one document: {"op": ..., "data": ...} (a row may write one
    document to many paths: the offers of a blast, their withdrawal)."""
    found = rows(
        halo,
        """SELECT payload - 'paths' AS payload FROM outbox
           WHERE kind = 'firestore' AND (destination = :p OR jsonb_exists(payload -> 'paths', :p)) ORDER BY id""",
        p=path,
    )
    return [dict(row["payload"]) for row in found]


def pushes(stack: LocalStack, token: str) -> list[dict[str, Any]]:
    reply = requests.get(f"http://127.0.0.1:{stack.ports.fcm}/_sink/messages", params={"token": token}, timeout=10)
    return [message["message"] for message in reply.json()["messages"]]


def settled_pushes(stack: LocalStack, tokens: list[str], expected: int = 1) -> dict[str, int]:
    """Waits until every token has `expected` pushes, then a little longer for any duplicate still on its way."""
    eventually(lambda: all(len(pushes(stack, token)) >= expected for token in tokens))
    time.sleep(1.0)
    return {token: len(pushes(stack, token)) for token in tokens}


# -- Pub/Sub handlers ------------------------------------------------------------------------------------------------


def test_a_blast_delivered_again_and_at_once_offers_each_mitra_once_and_pushes_once(
    stack: LocalStack, halo: Database, deliver: Deliveries, quiet: None
) -> None:
    client_id, _ = add_client(halo)
    first = [add_mitra(halo) for _ in range(2)]
    tokens = {uid: add_device(halo, uid) for _, uid in first}
    request_id = add_request(halo, client_id, deadline_in_s=120)
    blast = {"request_id": request_id}
    same_message = uuid.uuid4().hex

    answers = at_once([lambda: deliver.push("on_pairing_requested", blast, same_message)] * 3)

    assert all(status in OK for status in answers), answers
    offered = rows(halo, "SELECT mitra_id::text FROM pairing_offers WHERE request_id = CAST(:r AS uuid)", r=request_id)
    assert sorted(row["mitra_id"] for row in offered) == sorted(mitra_id for mitra_id, _ in first)
    for _, uid in first:
        assert len(doc_writes(halo, f"mitras/{uid}/offers/{request_id}")) == 1, "one offer document per mitra"
    assert [sorted(n["recipients"]) for n in notifications(halo, f"offer:{request_id}")] == [sorted(tokens)]

    # Redelivered after a third mitra came online: only the newcomer is offered, and only the newcomer is pushed.
    late_id, late_uid = add_mitra(halo)
    tokens[late_uid] = add_device(halo, late_uid)
    answers = at_once([lambda: deliver.push("on_pairing_requested", blast)] * 2)

    assert all(status in OK for status in answers), answers
    assert count(halo, "SELECT count(*) FROM pairing_offers WHERE request_id = CAST(:r AS uuid)", r=request_id) == 3
    for uid in tokens:
        assert len(doc_writes(halo, f"mitras/{uid}/offers/{request_id}")) == 1
    sent = notifications(halo, f"offer:{request_id}")
    assert [sorted(n["recipients"]) for n in sent] == [sorted(uid for _, uid in first), [late_uid]]

    # The pushes went out through Pub/Sub by themselves; delivering every notify message twice more adds nothing.
    assert settled_pushes(stack, list(tokens.values())) == dict.fromkeys(tokens.values(), 1)
    answers = at_once([lambda n=n: deliver.push("on_notify", n) for n in sent * 2])
    assert all(status in OK for status in answers), answers
    assert settled_pushes(stack, list(tokens.values())) == dict.fromkeys(tokens.values(), 1)

    # Out of order: the search has ended when the blast arrives once more; a fourth mitra online is not offered it.
    with halo.transaction() as tx:
        tx.execute(
            "UPDATE pairing_requests SET status = 'cancelled', ended_at = now() WHERE id = CAST(:r AS uuid)",
            {"r": request_id},
        )
    add_mitra(halo)
    assert deliver.push("on_pairing_requested", blast) in OK
    offered = rows(halo, "SELECT mitra_id::text FROM pairing_offers WHERE request_id = CAST(:r AS uuid)", r=request_id)
    assert sorted(row["mitra_id"] for row in offered) == sorted([late_id, *(mitra_id for mitra_id, _ in first)])
    assert len(notifications(halo, f"offer:{request_id}")) == 2


def test_an_offer_s_push_rings_only_the_mitras_the_request_is_still_offered_to(
    stack: LocalStack, halo: Database, deliver: Deliveries, quiet: None
) -> None:
    client_id, _ = add_client(halo)
    mitras = [add_mitra(halo) for _ in range(3)]
    request_id = add_request(halo, client_id, deadline_in_s=120)
    add_offers(halo, request_id, [mitra_id for mitra_id, _ in mitras])
    tokens = [add_device(halo, mitra_uid) for _, mitra_uid in mitras]
    with halo.transaction() as tx:  # the first mitra declined before the push went out
        tx.execute(
            """UPDATE pairing_offers SET status = 'declined', responded_at = now()
               WHERE request_id = CAST(:r AS uuid) AND mitra_id = CAST(:m AS uuid)""",
            {"r": request_id, "m": mitras[0][0]},
        )

    def offer(dedup_key: str) -> dict[str, Any]:
        return {
            "dedup_key": dedup_key,
            "recipients": [mitra_uid for _, mitra_uid in mitras],
            "data": {"type": "pairing_offer", "request_id": request_id},
            "title": "Ada yang ingin curhat",
            "body": "Klien ingin bicara 15 menit",
        }

    # on_notify sends before it answers: what FCM got is settled when the push is acknowledged.
    assert deliver.push("on_notify", offer(f"offer:{request_id}")) in OK
    assert [len(pushes(stack, token)) for token in tokens] == [0, 1, 1]

    with halo.transaction() as tx:  # the client gave up; the same offer's push arrives late, under a new key
        tx.execute(
            "UPDATE pairing_requests SET status = 'cancelled', ended_at = now() WHERE id = CAST(:r AS uuid)",
            {"r": request_id},
        )
    assert deliver.push("on_notify", offer(f"offer:{request_id}:late")) in OK
    assert [len(pushes(stack, token)) for token in tokens] == [0, 1, 1]
    assert count(halo, "SELECT count(*) FROM push_log WHERE dedup_key = :k", k=f"offer:{request_id}:late") == 0


def test_a_notification_retried_after_fcm_failed_reaches_each_device_exactly_once(
    stack: LocalStack, halo: Database, deliver: Deliveries
) -> None:
    _, two_phones = add_client(halo)
    _, one_phone = add_client(halo)
    tokens = [add_device(halo, two_phones), add_device(halo, two_phones), add_device(halo, one_phone)]
    notification = {
        "dedup_key": f"redelivery:{uuid.uuid4().hex}",
        "recipients": [two_phones, one_phone],
        "data": {"type": "message", "session_id": str(uuid.uuid4())},
        "title": "Halo Bestie",
        "body": "Pesan baru",
    }
    # FCM answers 503 to the next sends (the sender's own retries included): some recipient fails on the first try.
    outage = requests.post(
        f"http://127.0.0.1:{stack.ports.fcm}/_sink/failures", json={"status": 503, "count": 3}, timeout=10
    )
    assert outage.status_code == 200

    attempts = 0
    while attempts < 5:
        attempts += 1
        if deliver.push("on_notify", notification) in OK:
            break
    answers = at_once([lambda: deliver.push("on_notify", notification)] * 3)

    assert all(status in OK for status in answers), answers
    assert settled_pushes(stack, tokens) == dict.fromkeys(tokens, 1)
    assert count(halo, "SELECT count(*) FROM push_log WHERE dedup_key = :k", k=notification["dedup_key"]) == 2


def test_presence_sweeps_running_together_take_each_silent_mitra_offline_once(
    halo: Database, deliver: Deliveries, quiet: None
) -> None:
    client_id, _ = add_client(halo)
    silent = [add_mitra(halo) for _ in range(2)]
    request_id = add_request(halo, client_id, deadline_in_s=120)
    ids = [mitra_id for mitra_id, _ in silent]
    add_offers(halo, request_id, ids)
    # Silent from here on, in one statement: the stack's own sweep may be the one that notices, but only once.
    with halo.transaction() as tx:
        tx.execute(
            """UPDATE mitras SET last_heartbeat_at = now() - interval '1 hour', heard_until = now() - interval '1 hour'
               WHERE id = ANY(CAST(:ids AS uuid[]))""",
            {"ids": ids},
        )

    answers = at_once([lambda: deliver.push("presence_sweep", {})] * 4)

    assert all(status in OK for status in answers), answers
    assert (
        count(
            halo, "SELECT count(*) FROM mitras WHERE id = ANY(CAST(:ids AS uuid[])) AND presence = 'offline'", ids=ids
        )
        == 2
    )
    logged = rows(
        halo,
        """SELECT mitra_id::text, from_status, to_status, reason FROM mitra_status_logs
                           WHERE mitra_id = ANY(CAST(:ids AS uuid[])) ORDER BY mitra_id""",
        ids=ids,
    )
    assert logged == [
        {"mitra_id": mitra_id, "from_status": "online", "to_status": "offline", "reason": "heartbeat_timeout"}
        for mitra_id in sorted(ids)
    ]
    offers = rows(halo, "SELECT status FROM pairing_offers WHERE request_id = CAST(:r AS uuid)", r=request_id)
    assert [row["status"] for row in offers] == ["withdrawn", "withdrawn"]
    for _, uid in silent:
        assert [write["op"] for write in doc_writes(halo, f"mitras/{uid}/offers/{request_id}")] == ["delete"]


@pytest.fixture
def topic(stack: LocalStack) -> Iterator[tuple[str, str]]:
    """A fresh topic with a pull subscription: (topic id, subscription path)."""
    from google.cloud import pubsub_v1  # type: ignore[attr-defined]

    publisher, subscriber = pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient()
    name = f"redelivery-{uuid.uuid4().hex[:12]}"
    topic_path, subscription = publisher.topic_path(PROJECT, name), subscriber.subscription_path(PROJECT, name)
    publisher.create_topic(name=topic_path)
    subscriber.create_subscription(name=subscription, topic=topic_path)
    yield name, subscription
    subscriber.delete_subscription(subscription=subscription)
    publisher.delete_topic(topic=topic_path)
    subscriber.close()


def pulled(subscription: str, *, expected: int, quiet_s: float = 1.5) -> list[bytes]:
    """Everything on the subscription: waits for `expected` messages, then for `quiet_s` more in case of extras."""
    from google.cloud import pubsub_v1  # type: ignore[attr-defined]

    received: list[bytes] = []
    deadline = time.monotonic() + 15
    with pubsub_v1.SubscriberClient() as subscriber:
        while time.monotonic() < deadline:
            reply = subscriber.pull(subscription=subscription, max_messages=100, timeout=5, return_immediately=True)
            if reply.received_messages:
                subscriber.acknowledge(
                    subscription=subscription, ack_ids=[message.ack_id for message in reply.received_messages]
                )
                received.extend(message.message.data for message in reply.received_messages)
            if len(received) >= expected:
                deadline = min(deadline, time.monotonic() + quiet_s)
            time.sleep(0.1)
    return received


def test_the_outbox_projected_by_sweeps_and_retry_tasks_at_once_is_published_once(
    stack: LocalStack, halo: Database, deliver: Deliveries, topic: tuple[str, str]
) -> None:
    from google.cloud import firestore

    topic_name, subscription = topic
    folder = f"redelivery_{uuid.uuid4().hex[:8]}"
    with halo.transaction() as tx:
        ids = [
            int(
                tx.scalar(
                    """INSERT INTO outbox (kind, destination, payload)
                             VALUES ('pubsub', :topic, CAST(:payload AS jsonb)) RETURNING id""",
                    {"topic": topic_name, "payload": json.dumps({"data": {"n": n}, "attributes": {}})},
                )
            )
            for n in range(5)
        ] + [
            int(
                tx.scalar(
                    """INSERT INTO outbox (kind, destination, payload)
                             VALUES ('firestore', :path, CAST(:payload AS jsonb)) RETURNING id""",
                    {"path": f"{folder}/doc{n}", "payload": json.dumps({"op": "set", "data": {"n": n}})},
                )
            )
            for n in range(5)
        ]
    retry = {"ids": ids}

    answers = at_once(
        [lambda: deliver.push("outbox_sweep", {})] * 3
        + [lambda: deliver.task("task_project_outbox", retry)[0]] * 3
        + [lambda: deliver.task("task_project_outbox", {"ids": ids[::-1]})[0]]
    )

    assert all(status in OK for status in answers), answers
    assert count(halo, "SELECT count(*) FROM outbox WHERE id = ANY(:ids) AND published_at IS NULL", ids=ids) == 0
    assert sorted(json.loads(data)["n"] for data in pulled(subscription, expected=5)) == [0, 1, 2, 3, 4]
    documents = firestore.Client(project=PROJECT).collection(folder).stream()
    assert sorted(document.to_dict()["n"] for document in documents) == [0, 1, 2, 3, 4]

    # A retry task delivered long after the rows went out finds nothing to do.
    assert deliver.task("task_project_outbox", retry) == (200, "already_published")
    assert deliver.push("outbox_sweep", {}) in OK
    assert pulled(subscription, expected=0, quiet_s=1.0) == []


# -- Cloud Tasks handlers -------------------------------------------------------------------------------------------


def test_a_pairing_timeout_delivered_again_ends_the_search_once_and_never_after_a_match(
    halo: Database, deliver: Deliveries
) -> None:
    client_id, client_uid = add_client(halo)
    mitras = [add_mitra(halo) for _ in range(2)]
    timed_out = add_request(halo, client_id, deadline_in_s=-2)
    add_offers(halo, timed_out, [mitra_id for mitra_id, _ in mitras])

    outcomes = at_once([lambda: deliver.task("task_pairing_timeout", {"request_id": timed_out})] * 3)

    assert sorted(outcomes) == [(200, "no_mitra"), (200, "stale"), (200, "stale")]
    assert deliver.task("task_pairing_timeout", {"request_id": timed_out}) == (200, "stale")
    request = rows(halo, "SELECT status FROM pairing_requests WHERE id = CAST(:r AS uuid)", r=timed_out)
    assert request == [{"status": "no_mitra"}]
    statuses = [write["data"].get("status") for write in doc_writes(halo, f"pairing_requests/{timed_out}")]
    assert statuses == ["no_mitra"]
    assert [n["recipients"] for n in notifications(halo, f"no_mitra:{timed_out}")] == [[client_uid]]
    for _, uid in mitras:
        assert [write["op"] for write in doc_writes(halo, f"mitras/{uid}/offers/{timed_out}")] == ["delete"]

    # Out of order: the timeout fires after a mitra accepted; and one that fires early is retried, not obeyed.
    other_client, _ = add_client(halo)
    matched = add_request(halo, other_client, deadline_in_s=-2, status="matched")
    third_client, _ = add_client(halo)
    early = add_request(halo, third_client, deadline_in_s=120)

    assert deliver.task("task_pairing_timeout", {"request_id": matched}) == (200, "stale")
    assert deliver.task("task_pairing_timeout", {"request_id": early}) == (503, "unavailable")
    found = rows(
        halo, "SELECT id::text, status FROM pairing_requests WHERE id = ANY(CAST(:ids AS uuid[]))", ids=[matched, early]
    )
    assert {row["id"]: row["status"] for row in found} == {matched: "matched", early: "searching"}
    assert doc_writes(halo, f"pairing_requests/{matched}") == doc_writes(halo, f"pairing_requests/{early}") == []


def test_a_freed_slot_delivered_again_and_at_once_offers_once_and_pushes_once(
    stack: LocalStack, halo: Database, deliver: Deliveries, quiet: None
) -> None:
    client_id, _ = add_client(halo)
    mitra_id, mitra_uid = add_mitra(halo)
    token = add_device(halo, mitra_uid)
    request_id = add_request(halo, client_id, deadline_in_s=120)
    freed = {"mitra_id": mitra_id}

    answers = at_once([lambda: deliver.push("on_mitra_slot_freed", freed)] * 3)
    again = deliver.push("on_mitra_slot_freed", freed)

    assert all(status in OK for status in [*answers, again]), answers
    offers = rows(
        halo, "SELECT mitra_id::text, status FROM pairing_offers WHERE request_id = CAST(:r AS uuid)", r=request_id
    )
    assert offers == [{"mitra_id": mitra_id, "status": "offered"}]
    assert settled_pushes(stack, [token]) == {token: 1}


def test_a_preference_timer_delivered_early_waits_and_delivered_again_offers_everyone_once(
    stack: LocalStack, halo: Database, deliver: Deliveries, quiet: None
) -> None:
    client_id, _ = add_client(halo)
    preferred_id, _ = add_mitra(halo)
    other_id, other_uid = add_mitra(halo)
    token = add_device(halo, other_uid)
    request_id = add_request(halo, client_id, deadline_in_s=120)
    widen = {"request_id": request_id}
    with halo.transaction() as tx:
        tx.execute(
            """UPDATE pairing_requests
               SET preferred_mitra_id = CAST(:m AS uuid), preferred_until = now() + interval '1 hour'
               WHERE id = CAST(:r AS uuid)""",
            {"m": preferred_id, "r": request_id},
        )

    assert deliver.task("task_pairing_widen", widen) == (503, "unavailable")
    with halo.transaction() as tx:
        tx.execute(
            "UPDATE pairing_requests SET preferred_until = now() - interval '2 seconds' WHERE id = CAST(:r AS uuid)",
            {"r": request_id},
        )
    answers = at_once([lambda: deliver.task("task_pairing_widen", widen)] * 3)

    assert all(status == 200 for status, _ in answers), answers
    offers = rows(halo, "SELECT mitra_id::text FROM pairing_offers WHERE request_id = CAST(:r AS uuid)", r=request_id)
    assert sorted(row["mitra_id"] for row in offers) == sorted([preferred_id, other_id])
    assert settled_pushes(stack, [token]) == {token: 1}


def test_session_timers_delivered_twice_and_out_of_order_warn_once_and_close_once(
    stack: LocalStack, halo: Database, deliver: Deliveries, quiet: None
) -> None:
    # quiet: the close frees the mitra's slot, and an earlier test's search would be offered to them (one more push).
    client_id, client_uid = add_client(halo)
    mitra_id, mitra_uid = add_mitra(halo)
    client_phone, mitra_phone = add_device(halo, client_uid), add_device(halo, mitra_uid)
    session_id = add_session(halo, client_id, mitra_id, ends_in_s=-1)
    timer = {"session_id": session_id, "version": 1}
    closer = {"session_id": session_id}

    # The goodbye window's end arrives first (the session is still active), then the warning twice at once.
    assert deliver.task("task_session_close", closer) == (200, "stale")
    warned = at_once([lambda: deliver.task("task_session_warning", timer)] * 2)
    assert sorted(warned) == [(200, "already_warned"), (200, "warned")]

    # A timer of a version that never was, then the real expiry three times at once, then the warning once more.
    assert deliver.task("task_session_expire", {"session_id": session_id, "version": 2}) == (200, "stale")
    expired = at_once([lambda: deliver.task("task_session_expire", timer)] * 3)
    assert sorted(expired) == [(200, "closing"), (200, "stale"), (200, "stale")]
    assert deliver.task("task_session_warning", timer) == (200, "stale")

    # Early for the goodbye window: retried, not obeyed. Then it is over, and the close arrives three times.
    assert deliver.task("task_session_close", closer) == (503, "unavailable")
    with halo.transaction() as tx:
        tx.execute(
            "UPDATE sessions SET goodbye_until = now() - interval '2 seconds' WHERE id = CAST(:s AS uuid)",
            {"s": session_id},
        )
    closed = at_once([lambda: deliver.task("task_session_close", closer)] * 3)
    assert sorted(closed) == [(200, "closed"), (200, "stale"), (200, "stale")]
    assert deliver.task("task_session_expire", timer) == (200, "stale")

    assert rows(halo, "SELECT status, warned_version FROM sessions WHERE id = CAST(:s AS uuid)", s=session_id) == [
        {"status": "closed", "warned_version": 1}
    ]
    closures = rows(
        halo, "SELECT reason, closed_by FROM session_closures WHERE session_id = CAST(:s AS uuid)", s=session_id
    )
    assert closures == [{"reason": "expired", "closed_by": "system"}]
    messages = rows(halo, "SELECT kind, seq FROM chat_messages WHERE session_id = CAST(:s AS uuid)", s=session_id)
    assert messages == [{"kind": "system", "seq": 1}], "one warning message"
    statuses = [write["data"].get("status") for write in doc_writes(halo, f"sessions/{session_id}")]
    assert [status for status in statuses if status] == ["closing", "closed"]
    assert len(notifications(halo, f"warning:{session_id}:1")) == 1
    assert len(notifications(halo, f"closing:{session_id}")) == 1
    # The client hears the warning and the closing, the mitra the closing: once each.
    assert settled_pushes(stack, [client_phone], expected=2) == {client_phone: 2}
    assert settled_pushes(stack, [mitra_phone]) == {mitra_phone: 1}


def test_an_extension_timeout_delivered_again_expires_the_request_once(halo: Database, deliver: Deliveries) -> None:
    client_id, _ = add_client(halo)
    mitra_id, _ = add_mitra(halo)
    session_id = add_session(halo, client_id, mitra_id, ends_in_s=1200)

    def extension(status: str, respond_in_s: int) -> str:
        with halo.transaction() as tx:
            return str(
                tx.scalar(
                    """INSERT INTO session_extensions (session_id, tier_id, duration_s, price, status, respond_by)
                   VALUES (CAST(:s AS uuid), 'sesi-30', 1800, :price, :status, now() + make_interval(secs => :in_s))
                   RETURNING id::text""",
                    {"s": session_id, "price": PRICE, "status": status, "in_s": respond_in_s},
                )
            )

    unanswered = extension("requested", -2)
    outcomes = at_once([lambda: deliver.task("task_extension_timeout", {"extension_id": unanswered})] * 3)

    assert sorted(outcomes) == [(200, "expired"), (200, "stale"), (200, "stale")]
    assert deliver.task("task_extension_timeout", {"extension_id": unanswered}) == (200, "stale")
    writes = [write["data"]["extension"] for write in doc_writes(halo, f"sessions/{session_id}")]
    assert writes == [{"extension_id": unanswered, "status": "expired"}]

    # Out of order: the timeout of an extension that was answered and applied, and one that fires early.
    with halo.transaction() as tx:
        tx.execute("UPDATE session_extensions SET status = 'applied' WHERE id = CAST(:e AS uuid)", {"e": unanswered})
    assert deliver.task("task_extension_timeout", {"extension_id": unanswered}) == (200, "stale")
    pending = extension("requested", 120)
    assert deliver.task("task_extension_timeout", {"extension_id": pending}) == (503, "unavailable")
    found = rows(
        halo, "SELECT id::text, status FROM session_extensions WHERE session_id = CAST(:s AS uuid)", s=session_id
    )
    assert {row["id"]: row["status"] for row in found} == {unanswered: "applied", pending: "requested"}
    assert len(doc_writes(halo, f"sessions/{session_id}")) == 1


@pytest.fixture(scope="module")
def xendit(stack: LocalStack) -> XenditInvoices:
    return XenditInvoices(secret_key=XENDIT_SECRET_KEY, host=f"http://127.0.0.1:{stack.ports.xendit}")


def pending_transaction(halo: Database, xendit: XenditInvoices) -> tuple[str, str]:
    """A checkout whose payment window has just closed: (transaction id, Xendit invoice id)."""
    client_id, _ = add_client(halo)
    transaction_id = str(uuid.uuid4())
    invoice = xendit.create_invoice(
        external_id=transaction_id, amount=PRICE, description="Sesi 30 menit", invoice_duration_s=600
    )
    with halo.transaction() as tx:
        tx.execute(
            """INSERT INTO customer_transactions (id, client_id, purpose, tier_id, duration_s, amount,
                                                  xendit_invoice_id, invoice_url, expires_at)
               VALUES (CAST(:id AS uuid), CAST(:client AS uuid), 'session', 'sesi-30', 1800, :price, :invoice, :url,
                       now() - interval '2 seconds')""",
            {
                "id": transaction_id,
                "client": client_id,
                "price": PRICE,
                "invoice": invoice.invoice_id,
                "url": invoice.invoice_url,
            },
        )
    return transaction_id, invoice.invoice_id


def money(halo: Database, transaction_id: str) -> dict[str, Any]:
    found = rows(
        halo,
        """SELECT t.status,
                  (SELECT count(*) FROM ledger_entries l WHERE l.transaction_id = t.id
                                                          AND l.kind = 'payment_received') AS payments,
                  (SELECT count(*) FROM session_credits c WHERE c.transaction_id = t.id) AS credits
           FROM customer_transactions t WHERE t.id = CAST(:id AS uuid)""",
        id=transaction_id,
    )
    return found[0]


def test_a_payment_timeout_delivered_again_expires_once_and_never_undoes_a_payment(
    stack: LocalStack, halo: Database, deliver: Deliveries, xendit: XenditInvoices
) -> None:
    unpaid, unpaid_invoice = pending_transaction(halo, xendit)

    outcomes = at_once([lambda: deliver.task("task_payment_timeout", {"transaction_id": unpaid})] * 3)

    # The first timeout expires the invoice at Xendit, whose EXPIRED callback may land before that timeout's own
    # update: then the callback expired the transaction and every timeout found it stale. Either way, once.
    assert sorted(outcomes) in ([(200, "expired"), (200, "stale"), (200, "stale")], [(200, "stale")] * 3), outcomes
    eventually(
        lambda: (
            count(halo, "SELECT count(*) FROM payment_events WHERE transaction_id = CAST(:t AS uuid)", t=unpaid) >= 1
        )
    )
    applied_callbacks = count(
        halo,
        "SELECT count(*) FROM payment_events WHERE transaction_id = CAST(:t AS uuid) AND outcome = 'applied'",
        t=unpaid,
    )
    assert [outcome for _, outcome in outcomes].count("expired") + applied_callbacks == 1
    assert deliver.task("task_payment_timeout", {"transaction_id": unpaid}) == (200, "stale")
    assert money(halo, unpaid) == {"status": "expired", "payments": 0, "credits": 0}
    assert xendit.get_invoice(unpaid_invoice).status == "EXPIRED"

    # Paid at the last second: the timeouts race Xendit's callback, delivered twice at once and once more after.
    paid, paid_invoice = pending_transaction(halo, xendit)
    payment = requests.post(f"http://127.0.0.1:{stack.ports.xendit}/_standin/invoices/{paid_invoice}/pay", timeout=10)
    assert payment.status_code == 200
    outcomes = at_once([lambda: deliver.task("task_payment_timeout", {"transaction_id": paid})] * 2)

    assert {outcome for _, outcome in outcomes} <= {"paid_at_provider", "stale"}, outcomes
    eventually(lambda: money(halo, paid)["status"] == "paid")
    assert deliver.task("task_payment_timeout", {"transaction_id": paid}) == (200, "stale")
    assert money(halo, paid) == {"status": "paid", "payments": 1, "credits": 1}


# Handlers whose own area proves them against redelivery: the test file that delivers each one twice.
PROVEN_ELSEWHERE = {
    "on_chat_message": "tests/e2e/test_safety.py",
    "retention_sweep": "tests/e2e/test_safety.py",
    "refund_sweep": "tests/e2e/test_billing.py",
    "idempotency_sweep": "tests/e2e/test_retries.py",
}


def test_every_pubsub_and_task_handler_is_delivered_twice_somewhere() -> None:
    """A handler added to the manifest must be proven against redelivery (here, or in its area's tests) to ship."""
    proven_here = {
        "on_pairing_requested",
        "on_notify",
        "presence_sweep",
        "outbox_sweep",
        "task_project_outbox",
        "task_pairing_timeout",
        "task_session_warning",
        "task_session_expire",
        "task_session_close",
        "task_extension_timeout",
        "task_payment_timeout",
        "on_mitra_slot_freed",
        "task_pairing_widen",
    }
    handlers = {spec.name for spec in FUNCTIONS if spec.trigger in ("pubsub", "task")}

    assert handlers - proven_here - set(PROVEN_ELSEWHERE) == set()
    for name in handlers & set(PROVEN_ELSEWHERE):
        assert name in (ROOT / PROVEN_ELSEWHERE[name]).read_text(), f"{PROVEN_ELSEWHERE[name]} does not deliver {name}"
