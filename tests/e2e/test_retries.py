"""A retry gets the first answer, end to end: each state-changing app call is made, its reply "lost" (the call is
made again), and the second answer compared with the first, with and without an Idempotency-Key; the same key with
another body is 409 `idempotency_key_reused`; two copies of one keyed call sent at once make one change. Then the
abuse limits: checkouts per hour, free-trial churn, and the free trial bound to a verified email beyond the account.
docs/contract.md "Retries and idempotency" and "Abuse limits" are the contract."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from emulators.seed import ADMIN_EMAIL, ADMIN_PASSWORD
from emulators.simulator import App, AuthEmulator, Reply, Watch
from emulators.stack import LocalStack
from shared.adapters.postgres.database import Database
from tests.support.delivery import push_event
from tests.support.people import Pair, account_id, ok, uid_of

pytestmark = [pytest.mark.needs_gcloud, pytest.mark.usefixtures("quiet_world")]


def _count(db: Database, sql: str, **params: Any) -> int:
    with db.transaction() as tx:
        return int(tx.scalar(sql, params))


def _answered_again(app: App, function: str, body: dict[str, Any], *, key: str | None = None) -> Reply:
    """The call, its reply lost, the call again: the same status and the same body."""
    first = app.post(function, body, idempotency_key=key)
    again = app.post(function, body, idempotency_key=key)
    assert first.status == 200, (function, first.body)
    assert (again.status, again.body) == (first.status, first.body), function
    return first


def _at_once(app: App, function: str, body: dict[str, Any], *, key: str) -> Reply:
    """Two copies of one keyed call sent together (a retry racing the original): one answer for both."""
    with ThreadPoolExecutor(2) as pool:
        first, second = pool.map(lambda _: app.post(function, body, idempotency_key=key), range(2))
    assert first.status == 200, (function, first.body)
    assert (second.status, second.body) == (first.status, first.body), function
    return first


def _key_reused(app: App, function: str, body: dict[str, Any], *, key: str) -> None:
    refused = app.post(function, body, idempotency_key=key)
    assert (refused.status, refused.error_code) == (409, "idempotency_key_reused"), (function, refused.body)


def _key() -> str:
    return f"tap-{uuid.uuid4()}"


def _offered(client: App, mitras: list[App], body: dict[str, Any] | None = None) -> str:
    """The client asks; every given mitra sees the offer on its listener. The request's id."""
    watches = [Watch.collection(f"mitras/{uid_of(m)}/offers") for m in mitras]
    try:
        request = ok(client.post("pairing_request", body or {"free_trial": True}), "pairing_request")
        assert request["status"] == "searching", request
        for watch in watches:
            watch.wait_for(lambda docs: any(path.endswith(request["request_id"]) for path in docs), timeout=20)
    finally:
        for watch in watches:
            watch.close()
    return str(request["request_id"])


# -- pairing -----------------------------------------------------------------------------------------------------------


def test_the_mitra_who_won_asks_again_and_gets_its_session(
    new_client: Callable[..., App], new_mitra: Callable[..., App], halo_db: Database
) -> None:
    winner, loser = new_mitra("Mitra Menang"), new_mitra("Mitra Kalah")
    plain = _offered(new_client(), [winner, loser])
    keyed = _offered(new_client(), [winner])
    other = _offered(new_client(), [winner])
    key = _key()

    won = _answered_again(winner, "pairing_accept", {"request_id": plain})
    lost = loser.post("pairing_accept", {"request_id": plain})
    keyed_won = _at_once(winner, "pairing_accept", {"request_id": keyed}, key=key)
    again = winner.post("pairing_accept", {"request_id": keyed}, idempotency_key=key)
    _key_reused(winner, "pairing_accept", {"request_id": other}, key=key)

    assert set(won.body) == {"session_id", "request_id", "ends_at"}
    assert (lost.status, lost.error_code) == (409, "already_taken"), "the loser is still told it lost"
    assert (again.status, again.body) == (200, keyed_won.body)
    for request_id in (plain, keyed):
        sessions = _count(halo_db, "SELECT count(*) FROM sessions WHERE request_id = CAST(:r AS uuid)", r=request_id)
        assert sessions == 1
    status = _count(
        halo_db, "SELECT count(*) FROM pairing_requests WHERE id = CAST(:r AS uuid) AND status = 'searching'", r=other
    )
    assert status == 1, "the key refused for another request took nothing"


def test_a_keyed_pairing_request_is_one_request_and_refuses_another_body(
    new_client: Callable[..., App], new_mitra: Callable[..., App], halo_db: Database
) -> None:
    new_mitra()
    client = new_client()
    key = _key()

    first = _at_once(client, "pairing_request", {"free_trial": True}, key=key)
    again = client.post("pairing_request", {"free_trial": True}, idempotency_key=key)
    _key_reused(client, "pairing_request", {"tier_id": "sesi-30"}, key=key)
    without_key = client.post("pairing_request", {"free_trial": True})

    assert first.body["status"] == "searching"
    assert (again.status, again.body) == (200, first.body)
    assert (without_key.status, without_key.error_code) == (409, "request_open"), "no key: a new request"
    assert without_key.body["error"]["request_id"] == first.body["request_id"]
    mine = "SELECT count(*) FROM pairing_requests WHERE client_id = CAST(:c AS uuid)"
    assert _count(halo_db, mine, c=account_id(halo_db, client)) == 1


def test_cancel_and_decline_asked_again_answer_as_the_first_time(
    new_client: Callable[..., App], new_mitra: Callable[..., App], halo_db: Database
) -> None:
    mitra = new_mitra()
    client, keyed_client = new_client(), new_client()
    plain = _offered(client, [mitra])
    keyed = _offered(keyed_client, [mitra])
    decline_key, cancel_key = _key(), _key()

    declined = _answered_again(mitra, "pairing_decline", {"request_id": plain})
    keyed_declined = _at_once(mitra, "pairing_decline", {"request_id": keyed}, key=decline_key)
    _key_reused(mitra, "pairing_decline", {"request_id": plain}, key=decline_key)
    cancelled = _answered_again(client, "pairing_cancel", {"request_id": plain})
    keyed_cancelled = _at_once(keyed_client, "pairing_cancel", {"request_id": keyed}, key=cancel_key)
    again = keyed_client.post("pairing_cancel", {"request_id": keyed}, idempotency_key=cancel_key)
    _key_reused(keyed_client, "pairing_cancel", {"request_id": plain}, key=cancel_key)

    assert declined.body == {"request_id": plain, "status": "declined"}
    assert keyed_declined.body == {"request_id": keyed, "status": "declined"}
    assert cancelled.body == {"request_id": plain, "status": "cancelled"}
    assert (
        (again.status, again.body) == (200, keyed_cancelled.body) == (200, {"request_id": keyed, "status": "cancelled"})
    )


# -- the session's life ------------------------------------------------------------------------------------------------


def test_session_end_and_goodbye_asked_again_answer_as_the_first_time(
    paired: Callable[..., Pair], app_config: Callable[..., None], halo_db: Database
) -> None:
    app_config(early_end_client=True, goodbye_window_s=120)
    plain, keyed = paired(), paired()
    end_key, goodbye_key = _key(), _key()
    closures = "SELECT count(*) FROM session_closures WHERE session_id = CAST(:s AS uuid)"
    goodbyes = "SELECT count(*) FROM chat_messages WHERE session_id = CAST(:s AS uuid) AND kind = 'goodbye'"

    ended = _answered_again(plain.client, "session_end", {"session_id": plain.session_id})
    keyed_ended = _at_once(keyed.client, "session_end", {"session_id": keyed.session_id}, key=end_key)
    _key_reused(keyed.client, "session_end", {"session_id": plain.session_id}, key=end_key)
    note = {"session_id": plain.session_id, "text": "Terima kasih, jaga diri ya"}
    said = _answered_again(plain.client, "session_goodbye", note)
    other_note = plain.client.post("session_goodbye", {**note, "text": "Satu lagi"})
    keyed_note = {"session_id": keyed.session_id, "text": "Sampai jumpa"}
    keyed_said = _at_once(keyed.client, "session_goodbye", keyed_note, key=goodbye_key)
    _key_reused(keyed.client, "session_goodbye", {**keyed_note, "text": "Dah"}, key=goodbye_key)

    assert ended.body == {"session_id": plain.session_id, "status": "closing"}
    assert keyed_ended.body == {"session_id": keyed.session_id, "status": "closing"}
    assert set(said.body) == set(keyed_said.body) == {"message_id", "seq", "created_at"}
    assert (other_note.status, other_note.error_code) == (409, "goodbye_already_sent")
    for pair in (plain, keyed):
        assert _count(halo_db, closures, s=pair.session_id) == 1
        assert _count(halo_db, goodbyes, s=pair.session_id) == 1


def test_extension_request_and_answer_asked_again_answer_as_the_first_time(
    paired: Callable[..., Pair], short_tier: Callable[..., str], halo_db: Database
) -> None:
    plain, keyed = paired(), paired()
    tier, other_tier = short_tier(600), short_tier(900)
    request_key, respond_key = _key(), _key()
    extensions = "SELECT count(*) FROM session_extensions WHERE session_id = CAST(:s AS uuid)"

    asked = _answered_again(plain.client, "extension_request", {"session_id": plain.session_id, "tier_id": tier})
    other = plain.client.post("extension_request", {"session_id": plain.session_id, "tier_id": other_tier})
    body = {"session_id": keyed.session_id, "tier_id": tier}
    keyed_asked = _at_once(keyed.client, "extension_request", body, key=request_key)
    _key_reused(keyed.client, "extension_request", {**body, "tier_id": other_tier}, key=request_key)
    answer = {"extension_id": asked.body["extension_id"], "accept": True}
    accepted = _answered_again(plain.mitra, "extension_respond", answer)
    asked_again = plain.client.post("extension_request", {"session_id": plain.session_id, "tier_id": tier})
    changed_mind = plain.mitra.post("extension_respond", {**answer, "accept": False})
    keyed_answer = {"extension_id": keyed_asked.body["extension_id"], "accept": False}
    rejected = _at_once(keyed.mitra, "extension_respond", keyed_answer, key=respond_key)
    _key_reused(keyed.mitra, "extension_respond", {**keyed_answer, "accept": True}, key=respond_key)

    assert asked.body["status"] == "requested"
    assert (other.status, other.error_code) == (409, "extension_pending")
    assert accepted.body["status"] == "accepted"
    assert (asked_again.status, asked_again.body) == (200, asked.body), "the first answer, whatever the mitra did"
    assert (changed_mind.status, changed_mind.error_code) == (409, "extension_closed")
    assert rejected.body["status"] == "rejected"
    for pair in (plain, keyed):
        assert _count(halo_db, extensions, s=pair.session_id) == 1


# -- presence and devices ----------------------------------------------------------------------------------------------


def test_status_and_device_registration_asked_again_answer_as_the_first_time(
    new_mitra: Callable[..., App], new_client: Callable[..., App], halo_db: Database
) -> None:
    plain, keyed = new_mitra(online=False), new_mitra(online=False)
    status_key, device_key = _key(), _key()
    logs = "SELECT count(*) FROM mitra_status_logs WHERE mitra_id = CAST(:m AS uuid)"

    online = _answered_again(plain, "mitra_set_status", {"status": "online"})
    keyed_online = _at_once(keyed, "mitra_set_status", {"status": "online"}, key=status_key)
    _key_reused(keyed, "mitra_set_status", {"status": "offline"}, key=status_key)
    client = new_client()
    device = {"token": f"fcm-{uuid.uuid4().hex}{uuid.uuid4().hex}", "platform": "android"}
    registered = _answered_again(client, "devices_register", device)
    keyed_registered = _at_once(client, "devices_register", {**device, "platform": "ios"}, key=device_key)
    _key_reused(client, "devices_register", device, key=device_key)

    assert online.body == keyed_online.body == {"status": "online", "changed": True}
    assert registered.body == keyed_registered.body == {"registered": True}
    for mitra in (plain, keyed):
        assert _count(halo_db, logs, m=account_id(halo_db, mitra)) == 1, "one transition logged"


def test_the_idempotency_sweep_forgets_keys_past_their_day_however_often_it_runs(
    stack: LocalStack, new_mitra: Callable[..., App], halo_db: Database
) -> None:
    mitra = new_mitra(online=False)
    old, fresh = _key(), _key()
    ok(mitra.post("mitra_set_status", {"status": "online"}, idempotency_key=old), "mitra_set_status")
    ok(mitra.post("mitra_set_status", {"status": "online"}, idempotency_key=fresh), "mitra_set_status")
    with halo_db.transaction() as tx:
        tx.execute("UPDATE idempotency_keys SET created_at = now() - interval '25 hours' WHERE key = :k", {"k": old})

    with ThreadPoolExecutor(2) as pool:
        ticks = list(pool.map(lambda _: push_event(stack, "idempotency_sweep"), range(2)))
    ticks.append(push_event(stack, "idempotency_sweep"))

    assert [tick.status_code for tick in ticks] == [200, 200, 200]
    kept = "SELECT count(*) FROM idempotency_keys WHERE caller_uid = :uid"
    assert _count(halo_db, kept, uid=uid_of(mitra)) == 1
    assert _count(halo_db, "SELECT count(*) FROM idempotency_keys WHERE key = :k", k=fresh) == 1


# -- abuse limits ------------------------------------------------------------------------------------------------------


def test_checkouts_per_hour_are_limited_and_a_retry_is_not_counted(
    new_client: Callable[..., App], app_config: Callable[..., None]
) -> None:
    app_config(checkouts_per_hour=2)
    client = new_client()
    buy = {"tier_id": "sesi-30", "purpose": "session"}
    first_key = _key()

    first = _answered_again(client, "billing_checkout", buy, key=first_key)
    ok(client.post("billing_checkout", buy, idempotency_key=_key()), "billing_checkout")
    limited = client.post("billing_checkout", buy, idempotency_key=_key())
    retried = client.post("billing_checkout", buy, idempotency_key=first_key)

    assert (limited.status, limited.error_code) == (429, "rate_limited")
    assert 3500 < int(limited.headers["Retry-After"]) <= 3600
    assert limited.body["error"]["retry_after_s"] == int(limited.headers["Retry-After"])
    assert (retried.status, retried.body) == (200, first.body), "a retry of a checkout is that checkout"


def test_free_trial_searches_cancelled_too_often_are_refused_for_a_day(
    new_client: Callable[..., App], new_mitra: Callable[..., App], app_config: Callable[..., None]
) -> None:
    app_config(free_trial_cancels_per_day=2)
    mitra = new_mitra()
    client = new_client()
    for _ in range(2):
        request_id = _offered(client, [mitra])
        ok(client.post("pairing_cancel", {"request_id": request_id}), "pairing_cancel")

    limited = client.post("pairing_request", {"free_trial": True})

    assert (limited.status, limited.error_code) == (429, "rate_limited")
    assert 86_000 < int(limited.headers["Retry-After"]) <= 86_400


def test_a_new_account_on_the_same_verified_email_gets_no_second_free_trial(
    stack: LocalStack,
    auth: AuthEmulator,
    new_mitra: Callable[..., App],
    halo_db: Database,
) -> None:
    email = f"trial-{uuid.uuid4().hex[:10]}@example.com"
    first = App(stack.functions_url, auth.sign_in_with_google(email, "Sari"))
    ok(first.post("client_register", {"display_name": "Sari"}), "client_register")
    assert first.session is not None
    first.session.refresh()
    mitra = new_mitra()
    request_id = _offered(first, [mitra])
    session_id = ok(mitra.post("pairing_accept", {"request_id": request_id}), "pairing_accept")["session_id"]
    with halo_db.transaction() as tx:  # as the session timer would have left it
        tx.execute(
            "UPDATE sessions SET status = 'closed', closed_at = now() WHERE id = CAST(:s AS uuid)", {"s": session_id}
        )
    admin = App(stack.functions_url, auth.sign_in_with_email(ADMIN_EMAIL, ADMIN_PASSWORD))
    deleted = admin.post("admin_client_data", {"action": "delete", "client_id": account_id(halo_db, first)})
    assert deleted.status == 200, deleted.body

    again = App(stack.functions_url, auth.sign_in_with_google(email, "Sari Lagi"))
    registered = again.post("client_register", {"display_name": "Sari Lagi"})
    assert again.session is not None
    again.session.refresh()
    quote = again.get("pricing_quote")
    refused = again.post("pairing_request", {"free_trial": True})

    assert registered.status == 200, registered.body
    clients = "SELECT count(*) FROM clients WHERE firebase_uid = :uid AND deleted_at IS NULL"
    assert _count(halo_db, clients, uid=uid_of(again)) == 1, "a new account"
    assert quote.body["free_trial"]["available"] is False
    assert (refused.status, refused.error_code) == (409, "free_trial_unavailable")
