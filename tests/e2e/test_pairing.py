"""Pairing end to end: apps call functions through the gateway and watch Firestore as the real apps do."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from emulators.simulator import App, Watch
from emulators.stack import LocalStack
from shared.adapters.postgres.database import Database
from tests.support.people import uid_of

pytestmark = [pytest.mark.needs_gcloud, pytest.mark.usefixtures("quiet_world")]


def _offers(watch: Watch, request_id: str) -> Callable[[dict[str, dict[str, object]]], bool]:
    return lambda docs: any(path.endswith(f"/offers/{request_id}") for path in docs)


def _no_offer(request_id: str) -> Callable[[dict[str, dict[str, object]]], bool]:
    return lambda docs: not any(path.endswith(f"/offers/{request_id}") for path in docs)


def test_an_offer_reaches_every_available_mitra_and_exactly_one_wins(
    new_client: Callable[..., App],
    new_mitra: Callable[..., App],
    watches: Callable[[Watch], Watch],
    halo_db: Database,
) -> None:
    mitras = [new_mitra(f"Mitra {n}") for n in range(3)]
    offer_watches = [watches(Watch.collection(f"mitras/{uid_of(m)}/offers")) for m in mitras]
    client = new_client("Sari")

    reply = client.post("pairing_request", {"free_trial": True})

    assert reply.status == 200, reply.body
    assert reply.body["status"] == "searching"
    request_id = reply.body["request_id"]
    request_watch = watches(Watch.document(f"pairing_requests/{request_id}"))
    for watch in offer_watches:
        offer = watch.wait_for(_offers(watch, request_id))
        assert next(iter(offer.values()))["client_name"].startswith("Bestie #"), "anonymity: an alias by default"

    with ThreadPoolExecutor(2) as pool:
        replies = list(pool.map(lambda m: m.post("pairing_accept", {"request_id": request_id}), mitras[:2]))

    assert sorted(r.status for r in replies) == [200, 409], [r.body for r in replies]
    winner = next(r for r in replies if r.status == 200)
    loser = next(r for r in replies if r.status == 409)
    assert loser.error_code == "already_taken"
    matched = request_watch.wait_for(lambda docs: any(d.get("status") == "matched" for d in docs.values()))
    assert next(iter(matched.values()))["session_id"] == winner.body["session_id"]
    for watch in offer_watches:
        watch.wait_for(_no_offer(request_id))
    with halo_db.transaction() as tx:
        sessions = tx.scalar("SELECT count(*) FROM sessions WHERE request_id = CAST(:r AS uuid)", {"r": request_id})
    assert sessions == 1
    session_watch = watches(Watch.document(f"sessions/{winner.body['session_id']}"))
    session = next(iter(session_watch.wait_for(bool).values()))
    assert session["status"] == "active"
    assert set(session["participant_uids"]) == {
        uid_of(client),
        uid_of(mitras[0]) if replies[0].status == 200 else uid_of(mitras[1]),
    }
    assert client.get("pricing_quote").body["free_trial"]["available"] is False, (
        "the trial is used once a session starts"
    )


def test_nobody_available_means_no_mitra_at_once_when_so_configured(
    new_client: Callable[..., App], app_config: Callable[..., None]
) -> None:
    app_config(wait_when_nobody_online=False)  # by default the request waits its window (test_pairing_depth.py)
    reply = new_client().post("pairing_request", {"free_trial": True})

    assert (reply.status, reply.body["status"]) == (200, "no_mitra")


def test_one_open_request_per_client_and_idempotent_retries(
    new_client: Callable[..., App], new_mitra: Callable[..., App]
) -> None:
    new_mitra()
    client = new_client()

    first = client.post("pairing_request", {"free_trial": True}, idempotency_key="tap-1")
    retry = client.post("pairing_request", {"free_trial": True}, idempotency_key="tap-1")
    second = client.post("pairing_request", {"free_trial": True}, idempotency_key="tap-2")

    assert first.status == 200
    assert retry.body["request_id"] == first.body["request_id"]
    assert (second.status, second.error_code) == (409, "request_open")


@pytest.mark.parametrize(
    ("body", "field"),
    [({}, "body"), ({"free_trial": True, "tier_id": "sesi-30"}, "body"), ({"free_trial": "yes"}, "free_trial")],
)
def test_pairing_request_refuses_bad_input(new_client: Callable[..., App], body: dict[str, object], field: str) -> None:
    reply = new_client().post("pairing_request", body)

    assert (reply.status, reply.error_code) == (400, "invalid_request")
    assert field in [f["field"] for f in reply.body["error"]["fields"]]


def test_a_paid_tier_needs_payment_first(new_client: Callable[..., App]) -> None:
    reply = new_client().post("pairing_request", {"tier_id": "sesi-30"})

    assert (reply.status, reply.error_code) == (409, "payment_required")
    assert reply.body["error"]["checkout"] == "billing_checkout"


def test_cancel_withdraws_every_offer_and_keeps_the_trial(
    new_client: Callable[..., App], new_mitra: Callable[..., App], watches: Callable[[Watch], Watch]
) -> None:
    mitra = new_mitra()
    offers = watches(Watch.collection(f"mitras/{uid_of(mitra)}/offers"))
    client = new_client()
    request_id = client.post("pairing_request", {"free_trial": True}).body["request_id"]
    offers.wait_for(_offers(offers, request_id))

    cancelled = client.post("pairing_cancel", {"request_id": request_id})

    assert cancelled.body == {"request_id": request_id, "status": "cancelled"}
    offers.wait_for(_no_offer(request_id))
    late = mitra.post("pairing_accept", {"request_id": request_id})
    assert (late.status, late.error_code) == (409, "request_closed")
    assert client.get("pricing_quote").body["free_trial"]["available"] is True
    assert client.post("pairing_request", {"free_trial": True}).status == 200


def test_another_clients_request_cannot_be_cancelled(
    new_client: Callable[..., App], new_mitra: Callable[..., App]
) -> None:
    new_mitra()
    request_id = new_client().post("pairing_request", {"free_trial": True}).body["request_id"]

    reply = new_client().post("pairing_cancel", {"request_id": request_id})

    assert (reply.status, reply.error_code) == (404, "not_found")


def test_the_search_window_ends_in_no_mitra(
    new_client: Callable[..., App],
    new_mitra: Callable[..., App],
    app_config: Callable[..., None],
    watches: Callable[[Watch], Watch],
) -> None:
    app_config(pairing_search_window_s=5)
    mitra = new_mitra()
    offers = watches(Watch.collection(f"mitras/{uid_of(mitra)}/offers"))
    client = new_client()
    reply = client.post("pairing_request", {"free_trial": True})
    request_id = reply.body["request_id"]
    request_watch = watches(Watch.document(f"pairing_requests/{request_id}"))
    offers.wait_for(_offers(offers, request_id))

    ended = request_watch.wait_for(lambda docs: any(d.get("status") == "no_mitra" for d in docs.values()), timeout=15)

    assert ended
    offers.wait_for(_no_offer(request_id))
    assert client.get("pricing_quote").body["free_trial"]["available"] is True


def test_decline_hides_the_offer_for_that_mitra_only(
    new_client: Callable[..., App], new_mitra: Callable[..., App], watches: Callable[[Watch], Watch]
) -> None:
    first, second = new_mitra(), new_mitra()
    first_offers = watches(Watch.collection(f"mitras/{uid_of(first)}/offers"))
    second_offers = watches(Watch.collection(f"mitras/{uid_of(second)}/offers"))
    request_id = new_client().post("pairing_request", {"free_trial": True}).body["request_id"]
    second_offers.wait_for(_offers(second_offers, request_id))

    declined = first.post("pairing_decline", {"request_id": request_id})

    assert declined.body == {"request_id": request_id, "status": "declined"}
    first_offers.wait_for(_no_offer(request_id))
    assert _offers(second_offers, request_id)(second_offers.latest)
    assert first.post("pairing_accept", {"request_id": request_id}).error_code == "offer_declined"
    assert second.post("pairing_accept", {"request_id": request_id}).status == 200


def test_a_mitra_at_capacity_cannot_accept(
    new_client: Callable[..., App],
    new_mitra: Callable[..., App],
    app_config: Callable[..., None],
    watches: Callable[[Watch], Watch],
) -> None:
    app_config(max_concurrent_clients=1)
    mitra = new_mitra()
    offers = watches(Watch.collection(f"mitras/{uid_of(mitra)}/offers"))
    first = new_client().post("pairing_request", {"free_trial": True}).body["request_id"]
    second = new_client().post("pairing_request", {"free_trial": True}).body["request_id"]
    offers.wait_for(lambda docs: _offers(offers, first)(docs) and _offers(offers, second)(docs))

    assert mitra.post("pairing_accept", {"request_id": first}).status == 200
    full = mitra.post("pairing_accept", {"request_id": second})

    assert (full.status, full.error_code) == (409, "capacity_reached")
    app_config(wait_when_nobody_online=False)
    third = new_client().post("pairing_request", {"free_trial": True})
    assert third.body["status"] == "no_mitra", "a mitra at capacity is not available"


def test_a_mitra_coming_online_mid_search_is_offered_at_once(
    new_client: Callable[..., App], new_mitra: Callable[..., App], watches: Callable[[Watch], Watch]
) -> None:
    new_mitra()
    late = new_mitra(online=False)
    offers = watches(Watch.collection(f"mitras/{uid_of(late)}/offers"))
    request_id = new_client().post("pairing_request", {"free_trial": True}).body["request_id"]

    assert late.post("mitra_set_status", {"status": "online"}).body == {"status": "online", "changed": True}

    offers.wait_for(_offers(offers, request_id))


def test_silence_longer_than_the_grace_takes_a_mitra_offline(
    new_mitra: Callable[..., App], app_config: Callable[..., None], halo_db: Database
) -> None:
    app_config(heartbeat_grace_s=5)
    silent, chatty = new_mitra(), new_mitra()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        beat = chatty.post("mitra_heartbeat").body
        assert beat["status"] == "online" and beat["next_heartbeat_s"] >= 1, beat
        with halo_db.transaction() as tx:
            presence = tx.scalar("SELECT presence FROM mitras WHERE firebase_uid = :uid", {"uid": uid_of(silent)})
        if presence == "offline":
            break
        time.sleep(1)
    assert presence == "offline"
    assert silent.post("mitra_heartbeat").body == {"status": "offline", "next_heartbeat_s": None}
    with halo_db.transaction() as tx:
        reasons = tx.all(
            """SELECT l.from_status, l.to_status, l.reason FROM mitra_status_logs l JOIN mitras m ON m.id = l.mitra_id
               WHERE m.firebase_uid = :uid ORDER BY l.id""",
            {"uid": uid_of(silent)},
        )
        chatty_presence = tx.scalar("SELECT presence FROM mitras WHERE firebase_uid = :uid", {"uid": uid_of(chatty)})
    assert [(r["from_status"], r["to_status"], r["reason"]) for r in reasons] == [
        ("offline", "online", "manual"),
        ("online", "offline", "heartbeat_timeout"),
    ]
    assert chatty_presence == "online"


def test_heartbeats_are_paced_to_the_number_online_and_each_keeps_its_lease(
    new_mitra: Callable[..., App], app_config: Callable[..., None], halo_db: Database
) -> None:
    # A beat every 2 s (a third of the grace) while the online stay within one heartbeat a second together: four
    # online are then asked to beat every 4 s, heard from for three beats.
    app_config(heartbeat_grace_s=6, heartbeats_per_s_max=1)
    mitras = [new_mitra(f"Mitra Pace {n}") for n in range(4)]
    deadline = time.monotonic() + 30
    told: list[object] = []
    while time.monotonic() < deadline:
        # Every one beats each second (more often than asked: still served), until the sweep (every few seconds
        # on the local stack) has counted the four and the replies carry the longer interval.
        told = [mitra.post("mitra_heartbeat").body.get("next_heartbeat_s") for mitra in mitras]
        if told == [4] * 4:
            break
        time.sleep(1)
    assert told == [4] * 4
    with halo_db.transaction() as tx:
        leases = tx.all(
            """SELECT EXTRACT(epoch FROM heard_until - last_heartbeat_at)::int AS lease_s FROM mitras
               WHERE firebase_uid = ANY(CAST(:uids AS text[]))""",
            {"uids": [uid_of(mitra) for mitra in mitras]},
        )
    assert [row["lease_s"] for row in leases] == [12] * 4


def test_offers_reach_the_mitras_phone_by_push(
    stack: LocalStack, new_client: Callable[..., App], new_mitra: Callable[..., App]
) -> None:
    mitra = new_mitra()
    token = f"fcm-token-{uid_of(mitra)}-device-1"
    assert mitra.post("devices_register", {"token": token, "platform": "android"}).status == 200
    request_id = new_client().post("pairing_request", {"free_trial": True}).body["request_id"]

    sink = f"http://127.0.0.1:{stack.ports.fcm}/_sink/messages"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        messages = requests.get(sink, params={"token": token}, timeout=5).json()["messages"]
        if messages:
            break
        time.sleep(0.1)
    assert len(messages) == 1
    assert messages[0]["message"]["data"] == {"type": "pairing_offer", "request_id": request_id}


def test_opening_requests_faster_than_configured_is_429_with_retry_after(
    new_client: Callable[..., App], app_config: Callable[..., None]
) -> None:
    app_config(pairing_requests_per_hour=2, wait_when_nobody_online=False)
    client = new_client()
    for _ in range(2):
        assert client.post("pairing_request", {"free_trial": True}).body["status"] == "no_mitra"

    limited = client.post("pairing_request", {"free_trial": True})

    assert (limited.status, limited.error_code) == (429, "rate_limited")
    assert 1 <= int(limited.headers["Retry-After"]) <= 3600
