"""Faults in the parts we do not own, mid-flow: Firestore down mid-session, Pub/Sub down mid-blast, PostgreSQL
connections cut mid-request. Nothing committed is lost, nothing happens twice, and once the part is back the
projector and the retries catch up by themselves.

Each test puts the stack back (the part restarted on its port, Pub/Sub's subscriptions wired again) whatever
happens, so later tests find it whole. A restarted emulator comes back empty: only what was written during and
after the outage is expected on it.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from emulators.process import ManagedProcess
from emulators.simulator import App, Reply, Watch
from emulators.stack import DATABASE, LocalStack
from shared.adapters.postgres.database import Database
from tests.support.people import Pair

pytestmark = pytest.mark.needs_gcloud

CATCH_UP_S = 60


def part(stack: LocalStack, name: str) -> ManagedProcess:
    return next(process for process in stack.processes if process.name == name)


def bring_back(stack: LocalStack, name: str) -> None:
    """Restart a part that is down (a no-op when it runs); Pub/Sub comes back wired as the stack set it up."""
    process = part(stack, name)
    if process.proc is None or process.proc.poll() is not None:
        stack.restart(name)


@pytest.fixture
def outage(stack: LocalStack) -> Iterator[Callable[[str], None]]:
    """Stops a part of the stack for a test; whatever the test does, the part is back afterwards."""
    stopped: list[str] = []

    def stop(name: str) -> None:
        stopped.append(name)
        part(stack, name).stop()

    yield stop
    for name in stopped:
        bring_back(stack, name)


def pending_outbox(halo_db: Database, destination_like: str) -> list[int]:
    with halo_db.transaction() as tx:
        found = tx.all(
            "SELECT id FROM outbox WHERE published_at IS NULL AND destination LIKE :d ORDER BY id",
            {"d": destination_like},
        )
    return [row["id"] for row in found]


def outbox_rows(halo_db: Database, destination_like: str) -> list[dict[str, Any]]:
    """The rows for `destination_like` and how their publishing went, for a failure to explain itself."""
    with halo_db.transaction() as tx:
        return tx.all(
            """SELECT id, destination, published_at::text, attempts, last_error FROM outbox
               WHERE destination LIKE :d ORDER BY id DESC LIMIT 10""",
            {"d": destination_like},
        )


def catch_up(stack: LocalStack, halo_db: Database, destination_like: str, done: Callable[[], bool]) -> None:
    """What Cloud Tasks and the scheduled sweep do after an outage, every second instead of on their backoff:
    retry the pending rows until `done`."""
    deadline = time.monotonic() + CATCH_UP_S
    while not done():
        assert time.monotonic() < deadline, f"not caught up in {CATCH_UP_S}s: {outbox_rows(halo_db, destination_like)}"
        pending = pending_outbox(halo_db, destination_like)
        if pending:
            requests.post(f"{stack.functions_url}/task_project_outbox", json={"ids": pending}, timeout=30)
        time.sleep(1)


def pushes(stack: LocalStack, token: str) -> int:
    reply = requests.get(f"http://127.0.0.1:{stack.ports.fcm}/_sink/messages", params={"token": token}, timeout=10)
    return len(reply.json()["messages"])


def message_rows(halo_db: Database, session_id: str) -> list[dict[str, Any]]:
    with halo_db.transaction() as tx:
        return tx.all(
            """SELECT id::text AS message_id, client_message_id::text, seq, text FROM chat_messages
               WHERE session_id = CAST(:s AS uuid) AND kind = 'text' ORDER BY seq""",
            {"s": session_id},
        )


def send(app: App, session_id: str, text: str, client_message_id: str) -> Reply:
    body = {"session_id": session_id, "client_message_id": client_message_id, "text": text}
    return app.post("chat_send", body)


def test_chat_goes_on_while_firestore_is_down_and_every_message_reaches_the_listener_once_it_is_back(
    stack: LocalStack,
    paired: Callable[..., Pair],
    halo_db: Database,
    watches: Callable[[Watch], Watch],
    outage: Callable[[str], None],
) -> None:
    pair = paired()
    sent: dict[str, str] = {}  # client_message_id → message_id, for every message the listener must see

    def say(app: App, text: str) -> None:
        client_message_id = str(uuid.uuid4())
        reply = send(app, pair.session_id, text, client_message_id)
        assert reply.status == 200, reply.body
        sent[client_message_id] = reply.body["message_id"]

    assert send(pair.client, pair.session_id, "sebelum", str(uuid.uuid4())).status == 200

    outage("firestore")
    say(pair.client, "saat mati 0")
    say(pair.mitra, "saat mati 1")
    retried = next(iter(sent))
    again = send(pair.client, pair.session_id, "saat mati 0", retried)
    assert (again.status, again.body["message_id"]) == (200, sent[retried]), "a retry is the same message"
    assert len(pending_outbox(halo_db, f"sessions/{pair.session_id}/messages/%")) == 2, "committed, not projected"
    # Typing is ephemeral and goes straight to Firestore: it may fail, but cleanly.
    assert_clean(pair.mitra.post("chat_typing", {"session_id": pair.session_id, "typing": True}))

    bring_back(stack, "firestore")
    say(pair.mitra, "sesudah 0")
    say(pair.client, "sesudah 1")
    listener = watches(Watch.collection(f"sessions/{pair.session_id}/messages"))
    expected = {f"sessions/{pair.session_id}/messages/{message_id}" for message_id in sent.values()}

    catch_up(stack, halo_db, f"sessions/{pair.session_id}/messages/%", lambda: expected <= set(listener.latest))

    seen = {path: doc for path, doc in listener.latest.items() if path in expected}
    assert sorted((doc["client_message_id"], doc["message_id"]) for doc in seen.values()) == sorted(sent.items())
    stored = message_rows(halo_db, pair.session_id)
    assert [row["seq"] for row in stored] == [1, 2, 3, 4, 5], "every message once, in order, no gap"
    assert {row["client_message_id"]: row["message_id"] for row in stored[1:]} == sent
    assert {doc["seq"] for doc in seen.values()} == {2, 3, 4, 5}
    assert pending_outbox(halo_db, f"sessions/{pair.session_id}/%") == []


def test_a_request_made_while_pubsub_is_down_reaches_every_mitra_once_it_is_back(
    stack: LocalStack,
    new_client: Callable[..., App],
    new_mitra: Callable[..., App],
    halo_db: Database,
    watches: Callable[[Watch], Watch],
    outage: Callable[[str], None],
    quiet_world: None,
) -> None:
    mitras = [new_mitra(f"Mitra {n}") for n in range(2)]
    phones = {}
    for mitra in mitras:
        assert mitra.session is not None
        phones[mitra.session.uid] = f"fault-{uuid.uuid4().hex}"
        assert mitra.post("devices_register", {"token": phones[mitra.session.uid], "platform": "android"}).status == 200
    client = new_client()
    key = f"mulai-{uuid.uuid4().hex}"

    outage("pubsub")
    asked = client.post("pairing_request", {"free_trial": True}, idempotency_key=key)
    assert (asked.status, asked.body["status"]) == (200, "searching"), asked.body
    request_id = asked.body["request_id"]
    again = client.post("pairing_request", {"free_trial": True}, idempotency_key=key)
    assert (again.status, again.body["request_id"]) == (200, request_id)
    with halo_db.transaction() as tx:
        blast = tx.all(
            """SELECT id, published_at FROM outbox
               WHERE destination = 'pairing-requested' AND payload -> 'data' ->> 'request_id' = :r""",
            {"r": request_id},
        )
        offers_while_down = tx.scalar(
            "SELECT count(*) FROM pairing_offers WHERE request_id = CAST(:r AS uuid)", {"r": request_id}
        )
    assert [row["published_at"] for row in blast] == [None], "the blast waits in the outbox"
    assert offers_while_down == 0

    bring_back(stack, "pubsub")
    listeners = {uid: watches(Watch.collection(f"mitras/{uid}/offers")) for uid in phones}

    def every_mitra_sees_the_offer() -> bool:
        return all(f"mitras/{uid}/offers/{request_id}" in listener.latest for uid, listener in listeners.items())

    catch_up(stack, halo_db, "pairing-requested", every_mitra_sees_the_offer)

    with halo_db.transaction() as tx:
        offered = tx.all(
            """SELECT m.firebase_uid, o.status FROM pairing_offers o JOIN mitras m ON m.id = o.mitra_id
               WHERE o.request_id = CAST(:r AS uuid)""",
            {"r": request_id},
        )
        blasts = tx.scalar(
            """SELECT count(*) FROM outbox
               WHERE destination = 'pairing-requested' AND payload -> 'data' ->> 'request_id' = :r""",
            {"r": request_id},
        )
    assert sorted((row["firebase_uid"], row["status"]) for row in offered) == sorted((uid, "offered") for uid in phones)
    assert blasts == 1
    # The offer's push went through the restarted Pub/Sub as well: once per phone.
    catch_up(stack, halo_db, "notify", lambda: all(pushes(stack, token) for token in phones.values()))
    time.sleep(1)
    assert {token: pushes(stack, token) for token in phones.values()} == dict.fromkeys(phones.values(), 1)

    winner, loser = mitras
    assert winner.post("pairing_accept", {"request_id": request_id}).status == 200
    assert loser.post("pairing_accept", {"request_id": request_id}).error_code == "already_taken"


def cut_connections(halo_db: Database) -> int:
    """What a PostgreSQL restart or failover does to the gateway: every one of its connections is gone."""
    with halo_db.transaction() as tx:
        return len(
            tx.all(
                """SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                   WHERE application_name = 'halo-functions' AND datname = :db""",
                {"db": DATABASE},
            )
        )


def assert_clean(reply: Reply) -> None:
    """Either it worked, or it says so in the envelope and may be retried: never a 500."""
    if reply.status == 200:
        return
    assert reply.status == 503, (reply.status, reply.body)
    assert reply.body == {"error": {"code": "unavailable", "message": reply.body["error"]["message"]}}


def test_a_request_cut_off_from_postgresql_fails_cleanly_and_its_retry_lands_exactly_once(
    paired: Callable[..., Pair], new_client: Callable[..., App], halo_db: Database
) -> None:
    pair = paired()

    # The gateway's pooled connections die between two requests.
    assert cut_connections(halo_db) > 0
    first_try = str(uuid.uuid4())
    cut_off = send(pair.client, pair.session_id, "putus", first_try)
    assert_clean(cut_off)
    retry = send(pair.client, pair.session_id, "putus", first_try)
    assert retry.status == 200, retry.body
    if cut_off.status == 200:
        assert retry.body["message_id"] == cut_off.body["message_id"]

    # Connections cut again and again while messages are sent: each reply is clean, each retry lands once.
    stop = threading.Event()

    def keep_cutting() -> None:
        while not stop.is_set():
            cut_connections(halo_db)
            time.sleep(0.02)

    cutter = threading.Thread(target=keep_cutting, daemon=True)
    statuses: list[int] = []
    client_message_ids = [first_try]
    cutter.start()
    try:
        for n in range(12):
            client_message_id = str(uuid.uuid4())
            client_message_ids.append(client_message_id)
            app = pair.client if n % 2 == 0 else pair.mitra
            for _ in range(40):
                reply = send(app, pair.session_id, f"pesan {n}", client_message_id)
                assert_clean(reply)
                statuses.append(reply.status)
                if reply.status == 200:
                    break
            else:
                pytest.fail(f"message {n} never got through")
    finally:
        stop.set()
        cutter.join()

    assert 503 in statuses, "the cuts reached requests in flight"
    stored = message_rows(halo_db, pair.session_id)
    assert [row["client_message_id"] for row in stored] == client_message_ids, "each message once, in order"
    assert [row["seq"] for row in stored] == list(range(1, len(client_message_ids) + 1))

    # The storm's last cut may have reached a connection already back in the pool: the first request after it may
    # be told to retry (503, the pool then dropped), as any app does; after that the gateway is whole again.
    after = [pair.client.get("client_profile")]
    while after[-1].status == 503 and len(after) < 5:
        after.append(pair.client.get("client_profile"))
    assert [reply.status for reply in after] in ([200], [503, 200]), after

    # An idempotent request: cut off, then retried with the same key, it starts exactly one search.
    client = new_client()
    key = f"mulai-{uuid.uuid4().hex}"
    cut_connections(halo_db)
    asked = client.post("pairing_request", {"free_trial": True}, idempotency_key=key)
    assert_clean(asked)
    again = client.post("pairing_request", {"free_trial": True}, idempotency_key=key)
    assert again.status == 200, again.body
    if asked.status == 200:
        assert again.body["request_id"] == asked.body["request_id"]
    assert client.session is not None
    with halo_db.transaction() as tx:
        requests_made = tx.scalar(
            """SELECT count(*) FROM pairing_requests r JOIN clients c ON c.id = r.client_id
               WHERE c.firebase_uid = :uid""",
            {"uid": client.session.uid},
        )
    assert requests_made == 1
