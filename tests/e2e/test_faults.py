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
from datetime import timedelta
from typing import Any

import pytest
import requests

from emulators.process import ManagedProcess
from emulators.simulator import App, Reply, Watch
from emulators.stack import DATABASE, LocalStack
from shared.adapters.postgres.database import Database
from tests.support.people import Pair, pair_up, pay_checkout

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
            signed = {"Authorization": f"Bearer {stack.caller_token('task_project_outbox')}"}
            url = f"{stack.functions_url}/task_project_outbox"
            requests.post(url, json={"ids": pending}, headers=signed, timeout=30)
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
    # Every row ends published. A retry the stack's own Cloud Tasks started during the outage may still be between
    # its documents (which the listener already has) and the commit that marks its rows: wait for the marks.
    drained = f"sessions/{pair.session_id}/%"
    catch_up(stack, halo_db, drained, lambda: pending_outbox(halo_db, drained) == [])


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
            # Seldom enough that a loaded machine (a new backend takes tens of ms to start) still lets a retry
            # through within its tries; messages go on until a cut has reached one in flight (below).
            time.sleep(0.05)

    cutter = threading.Thread(target=keep_cutting, daemon=True)
    statuses: list[int] = []
    client_message_ids = [first_try]
    cutter.start()
    try:
        # At least 12 messages, and more (at most 60, within each side's messages_per_minute) until a cut has
        # reached a request in flight: how soon one does depends on the machine's speed, not on the code.
        n = 0
        while n < 12 or (503 not in statuses and n < 60):
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
            n += 1
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


def pushes_of_type(stack: LocalStack, token: str, kind: str) -> int:
    reply = requests.get(f"http://127.0.0.1:{stack.ports.fcm}/_sink/messages", params={"token": token}, timeout=10)
    return sum(1 for m in reply.json()["messages"] if m["message"].get("data", {}).get("type") == kind)


def pending_tasks(halo_db: Database) -> list[dict[str, Any]]:
    with halo_db.transaction() as tx:
        return tx.all(
            """SELECT id, payload ->> 'task_id' AS task_id, attempts FROM outbox
               WHERE kind = 'task' AND published_at IS NULL ORDER BY id"""
        )


def test_while_cloud_tasks_is_down_money_pairing_and_extensions_answer_200_and_every_timer_fires_once_it_is_back(
    stack: LocalStack,
    new_client: Callable[..., App],
    new_mitra: Callable[..., App],
    short_tier: Callable[[int], str],
    app_config: Callable[..., None],
    halo_db: Database,
    watches: Callable[[Watch], Watch],
    outage: Callable[[str], None],
    quiet_world: None,
) -> None:
    """Cloud Tasks is called only after the commit (the outbox carries every timer): while it is down the changes
    that set timers answer 200, and once it is back the outbox sweep (every second here, every minute in production)
    creates the tasks that never were, each timer fires, and nothing happens twice."""
    app_config(extension_timeout_s=5, session_warning_s=5, goodbye_window_s=2, payment_expiry_s=60)
    session_tier, extra_tier = short_tier(20), short_tier(10)
    client, mitra = new_client(), new_mitra()
    device = f"fault-{uuid.uuid4().hex}"
    assert client.post("devices_register", {"token": device, "platform": "android"}).status == 200

    outage("tasks")
    unpaid = client.post("billing_checkout", {"tier_id": session_tier, "purpose": "session"})
    assert unpaid.status == 200, unpaid.body
    pay_checkout(client, halo_db, stack.ports.xendit, {"tier_id": session_tier, "purpose": "session"})
    pair = pair_up(client, mitra, {"tier_id": session_tier})  # pairing_accept answered 200
    session = watches(Watch.document(f"sessions/{pair.session_id}"))
    first_end = session.wait_for(lambda docs: bool(docs) and "ends_at" in next(iter(docs.values())))
    first_end_at = next(iter(first_end.values()))["ends_at"]
    asked = client.post("extension_request", {"session_id": pair.session_id, "tier_id": extra_tier})
    assert asked.status == 200, asked.body
    extension_id = asked.body["extension_id"]
    answered = mitra.post("extension_respond", {"extension_id": extension_id, "accept": True})
    assert (answered.status, answered.body["status"]) == (200, "accepted"), answered.body
    extension_paid = {"tier_id": extra_tier, "purpose": "extension", "extension_id": extension_id}
    pay_checkout(client, halo_db, stack.ports.xendit, extension_paid)  # the webhook applies it: version 2
    extended = session.wait_for(lambda docs: next(iter(docs.values())).get("version") == 2)
    ends_at = next(iter(extended.values()))["ends_at"]
    unanswered = client.post("extension_request", {"session_id": pair.session_id, "tier_id": extra_tier})
    assert unanswered.status == 200, unanswered.body

    waiting = {row["task_id"] for row in pending_tasks(halo_db)}
    expected = {
        f"payment-timeout-{unpaid.body['transaction_id']}",
        f"session-warning-{pair.session_id}-2",
        f"session-expire-{pair.session_id}-2",
        f"extension-timeout-{unanswered.body['extension_id']}",
    }
    assert expected <= waiting, f"committed, waiting in the outbox: {sorted(waiting)}"
    assert ends_at == first_end_at + timedelta(seconds=10)

    bring_back(stack, "tasks")

    # The unanswered extension times out, the session warns, ends at its time and closes after the goodbye window.
    session.wait_for(lambda docs: next(iter(docs.values())).get("extension", {}).get("status") == "expired", 30)
    closing = next(iter(session.wait_for(lambda docs: next(iter(docs.values()))["status"] == "closing", 40).values()))
    session.wait_for(lambda docs: next(iter(docs.values()))["status"] == "closed", 20)
    assert closing["close_reason"] == "expired"
    assert abs(closing["closing_at"] - ends_at) < timedelta(seconds=2), "the expiry fired at its time"
    assert closing["warning"]["version"] == 2
    # The checkout nobody paid expires when its payment timeout fires (payment_expiry_s after the checkout).
    payment = watches(Watch.document(f"payments/{unpaid.body['transaction_id']}"))
    payment.wait_for(lambda docs: next(iter(docs.values()), {}).get("status") == "expired", 75)

    with halo_db.transaction() as tx:
        closures = tx.scalar(
            "SELECT count(*) FROM session_closures WHERE session_id = CAST(:s AS uuid)", {"s": pair.session_id}
        )
        system_messages = tx.scalar(
            "SELECT count(*) FROM chat_messages WHERE session_id = CAST(:s AS uuid) AND kind = 'system'",
            {"s": pair.session_id},
        )
        version = tx.scalar("SELECT version FROM sessions WHERE id = CAST(:s AS uuid)", {"s": pair.session_id})
        transactions = tx.all(
            """SELECT t.purpose, t.status FROM customer_transactions t JOIN clients c ON c.id = t.client_id
               WHERE c.firebase_uid = :uid ORDER BY t.created_at""",
            {"uid": client.session.uid if client.session else ""},
        )
    assert closures == 1
    assert system_messages == 1, "one warning, for the version that was current"
    assert version == 2, "the extension applied once"
    assert [(row["purpose"], row["status"]) for row in transactions] == [
        ("session", "expired"),
        ("session", "paid"),
        ("extension", "paid"),
    ]
    assert pushes_of_type(stack, device, "session_warning") == 1
    assert not expected & {row["task_id"] for row in pending_tasks(halo_db)}, "every timer's task was created"


def assert_unavailable_with_retry_after(reply: Reply) -> None:
    assert reply.status == 503, (reply.status, reply.body)
    assert reply.body["error"]["code"] == "unavailable"
    assert int(reply.headers["Retry-After"]) >= 1


def test_postgresql_stopped_and_restarted_is_a_503_with_retry_after_never_a_500(
    stack: LocalStack, paired: Callable[..., Pair], new_client: Callable[..., App]
) -> None:
    pair = paired()
    waiting = new_client()  # registered before the outage; its first call after it finds nothing cached
    assert send(pair.client, pair.session_id, "sebelum", str(uuid.uuid4())).status == 200

    stack.postgres.stop()
    try:
        time.sleep(0.5)  # past the identity cache: every call below needs PostgreSQL
        down = [
            send(pair.client, pair.session_id, "saat mati", str(uuid.uuid4())),
            pair.mitra.get("sessions_list"),
            waiting.get("client_profile"),
            waiting.post("pairing_request", {"free_trial": True}),
        ]
    finally:
        stack.restart("postgres")

    for reply in down:
        assert_unavailable_with_retry_after(reply)
    # Back: a call may still draw a connection from before the restart once (503, the pool then emptied).
    after = [waiting.get("client_profile")]
    while after[-1].status == 503 and len(after) < 3:
        assert_unavailable_with_retry_after(after[-1])
        after.append(waiting.get("client_profile"))
    assert after[-1].status == 200, after
    again = str(uuid.uuid4())
    sent = [send(pair.client, pair.session_id, "sesudah", again)]
    while sent[-1].status == 503 and len(sent) < 3:
        sent.append(send(pair.client, pair.session_id, "sesudah", again))
    assert sent[-1].status == 200, sent
