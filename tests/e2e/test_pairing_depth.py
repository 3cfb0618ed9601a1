"""Pairing that never leaves a client waiting for nothing (issue 24), end to end through the gateway, with the apps'
Firestore listeners: waiting when nobody is online, re-offers (coming back online, a freed slot), a mitra's own
capacity set by an admin, the client's standing (offered_count, estimated_wait_s), and the same mitra again."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime

import pytest

from emulators.simulator import App, Watch
from shared.adapters.postgres.database import Database
from tests.support.people import Pair, account_id, client_id_of, pair_up, uid_of

pytestmark = [pytest.mark.needs_gcloud, pytest.mark.usefixtures("quiet_world")]

Docs = dict[str, dict[str, object]]


def _offered(request_id: str) -> Callable[[Docs], bool]:
    return lambda docs: any(path.endswith(f"/offers/{request_id}") for path in docs)


def _not_offered(request_id: str) -> Callable[[Docs], bool]:
    return lambda docs: not _offered(request_id)(docs)


def _request(client: App, body: dict[str, object] | None = None) -> dict[str, object]:
    reply = client.post("pairing_request", body or {"free_trial": True})
    assert reply.status == 200, reply.body
    assert reply.body["status"] == "searching"
    return reply.body


def _field(path: str, name: str, value: object) -> Callable[[Docs], bool]:
    return lambda docs: docs.get(path, {}).get(name) == value


def _end_and_close(pair: Pair, watches: Callable[[Watch], Watch]) -> None:
    """The client ends the session early; with no goodbye window it closes at once."""
    session = watches(Watch.document(f"sessions/{pair.session_id}"))
    assert pair.client.post("session_end", {"session_id": pair.session_id}).status == 200
    session.wait_for(_field(f"sessions/{pair.session_id}", "status", "closed"), timeout=20)


def test_with_nobody_online_the_request_waits_and_the_first_mitra_online_is_offered_it(
    new_client: Callable[..., App], new_mitra: Callable[..., App], watches: Callable[[Watch], Watch]
) -> None:
    client = new_client()
    asked = _request(client)
    request_id = str(asked["request_id"])
    path = f"pairing_requests/{request_id}"
    document = watches(Watch.document(path))
    standing = document.wait_for(_field(path, "offered_count", 0))[path]
    assert standing["status"] == "searching" and "estimated_wait_s" in standing

    late = new_mitra(online=False)
    offers = watches(Watch.collection(f"mitras/{uid_of(late)}/offers"))
    assert late.post("mitra_set_status", {"status": "online"}).status == 200

    offers.wait_for(_offered(request_id))
    document.wait_for(_field(path, "offered_count", 1))
    assert late.post("pairing_accept", {"request_id": request_id}).status == 200
    document.wait_for(_field(path, "status", "matched"))


def test_a_mitra_back_online_is_offered_again_what_was_withdrawn_when_they_left(
    new_client: Callable[..., App], new_mitra: Callable[..., App], watches: Callable[[Watch], Watch]
) -> None:
    mitra = new_mitra()
    offers = watches(Watch.collection(f"mitras/{uid_of(mitra)}/offers"))
    request_id = str(_request(new_client())["request_id"])
    offers.wait_for(_offered(request_id))

    assert mitra.post("mitra_set_status", {"status": "offline"}).status == 200
    offers.wait_for(_not_offered(request_id))
    assert mitra.post("mitra_set_status", {"status": "online"}).status == 200

    offers.wait_for(_offered(request_id))
    assert mitra.post("pairing_accept", {"request_id": request_id}).status == 200


def test_an_admin_sets_a_mitra_s_own_capacity_shown_audited_and_checked(
    admin: App, new_mitra: Callable[..., App], halo_db: Database
) -> None:
    mitra_id = account_id(halo_db, new_mitra())

    def update(value: object) -> dict[str, object]:
        reply = admin.post("admin_mitras", {"action": "update", "mitra_id": mitra_id, "max_concurrent_clients": value})
        assert reply.status == 200, reply.body
        return dict(reply.body["mitras"][0])

    assert update(2)["max_concurrent_clients"] == 2
    listed = admin.get("admin_mitras", presence="online", limit=200)
    assert {m["mitra_id"]: m["max_concurrent_clients"] for m in listed.body["mitras"]}[mitra_id] == 2
    assert update(None)["max_concurrent_clients"] is None, "null: the global setting again"
    for bad in (0, 21, "two"):
        refused = admin.post("admin_mitras", {"action": "update", "mitra_id": mitra_id, "max_concurrent_clients": bad})
        assert (refused.status, refused.error_code) == (400, "invalid_request")
        assert "max_concurrent_clients" in str(refused.body)
    with halo_db.transaction() as tx:
        audited = tx.all(
            """SELECT old_value, new_value FROM audit_log
               WHERE action = 'mitra.update' AND target = :m ORDER BY id""",
            {"m": mitra_id},
        )
    assert [(a["old_value"], a["new_value"]) for a in audited] == [
        ({"max_concurrent_clients": None}, {"max_concurrent_clients": 2}),
        ({"max_concurrent_clients": 2}, {"max_concurrent_clients": None}),
    ]


def test_a_mitra_at_their_capacity_loses_open_offers_and_is_offered_again_when_a_slot_frees(
    admin: App,
    new_client: Callable[..., App],
    new_mitra: Callable[..., App],
    app_config: Callable[..., None],
    halo_db: Database,
    watches: Callable[[Watch], Watch],
) -> None:
    app_config(max_concurrent_clients=3, goodbye_window_s=0, early_end_client=True)
    mitra = new_mitra()
    mitra_id = account_id(halo_db, mitra)
    reply = admin.post("admin_mitras", {"action": "update", "mitra_id": mitra_id, "max_concurrent_clients": 1})
    assert reply.status == 200, reply.body
    offers = watches(Watch.collection(f"mitras/{uid_of(mitra)}/offers"))
    pair = pair_up(new_client(), mitra, {"free_trial": True})
    witness = new_mitra("Mitra Saksi")
    witnessed = watches(Watch.collection(f"mitras/{uid_of(witness)}/offers"))
    waiting = str(_request(new_client())["request_id"])

    witnessed.wait_for(_offered(waiting))  # the blast is one change: it has offered everyone it would
    with halo_db.transaction() as tx:
        offer = tx.scalar(
            "SELECT status FROM pairing_offers WHERE request_id = CAST(:r AS uuid) AND mitra_id = CAST(:m AS uuid)",
            {"r": waiting, "m": mitra_id},
        )
    assert offer is None, "full at their own 1 (under the global 3): not offered"

    _end_and_close(pair, watches)

    offers.wait_for(_offered(waiting), timeout=20)
    assert mitra.post("pairing_accept", {"request_id": waiting}).status == 200


def test_reaching_capacity_withdraws_the_mitra_s_other_open_offers(
    new_client: Callable[..., App],
    new_mitra: Callable[..., App],
    app_config: Callable[..., None],
    watches: Callable[[Watch], Watch],
) -> None:
    app_config(max_concurrent_clients=1, goodbye_window_s=0, early_end_client=True)
    mitra = new_mitra()
    offers = watches(Watch.collection(f"mitras/{uid_of(mitra)}/offers"))
    client = new_client()
    first = str(_request(client)["request_id"])
    second = str(_request(new_client())["request_id"])
    offers.wait_for(lambda docs: _offered(first)(docs) and _offered(second)(docs))

    assert mitra.post("pairing_accept", {"request_id": first}).status == 200

    offers.wait_for(_not_offered(second))
    _end_and_close(Pair(client, mitra, _session_of(client, first, watches), first), watches)
    offers.wait_for(_offered(second), timeout=20)


def _session_of(client: App, request_id: str, watches: Callable[[Watch], Watch]) -> str:
    path = f"pairing_requests/{request_id}"
    document = watches(Watch.document(path)).wait_for(lambda docs: bool(docs.get(path, {}).get("session_id")))
    return str(document[path]["session_id"])


def test_the_same_mitra_again_is_offered_the_request_alone_first_then_everyone(
    new_client: Callable[..., App],
    new_mitra: Callable[..., App],
    app_config: Callable[..., None],
    halo_db: Database,
    watches: Callable[[Watch], Watch],
) -> None:
    app_config(preferred_mitra_first_s=5, pairing_search_window_s=60)
    client, before = new_client(), new_mitra("Mitra Dulu")
    _had_session(halo_db, client_id_of(halo_db, client), account_id(halo_db, before))
    other = new_mitra("Mitra Lain")
    before_offers = watches(Watch.collection(f"mitras/{uid_of(before)}/offers"))
    other_offers = watches(Watch.collection(f"mitras/{uid_of(other)}/offers"))

    # The app learns the mitra's id from the client's own session list, as it would to offer "the same mitra again".
    listed = client.get("sessions_list")
    assert listed.status == 200, listed.body
    past = [s["mitra_id"] for s in listed.body["sessions"]]
    assert past == [account_id(halo_db, before)]
    asked = client.post("pairing_request", {"free_trial": True, "mitra_id": past[0]})
    assert asked.status == 200, asked.body
    request_id = str(asked.body["request_id"])
    until = datetime.fromisoformat(str(asked.body["preferred_mitra_until"]))

    before_offers.wait_for(_offered(request_id))
    other_offers.wait_for(_offered(request_id), timeout=20)
    with halo_db.transaction() as tx:
        offered_at = tx.scalar(
            """SELECT offered_at FROM pairing_offers
               WHERE request_id = CAST(:r AS uuid) AND mitra_id = CAST(:m AS uuid)""",
            {"r": request_id, "m": account_id(halo_db, other)},
        )
    assert offered_at.timestamp() >= until.timestamp() - 1, "everyone else only once the preference window ended"
    path = f"pairing_requests/{request_id}"
    watches(Watch.document(path)).wait_for(_field(path, "offered_count", 2))


def _had_session(db: Database, client_id: str, mitra_id: str) -> None:
    """A session between them that closed an hour ago, as an earlier pairing left it."""
    with db.transaction() as tx:
        tx.execute(
            """WITH earlier AS (
                   INSERT INTO pairing_requests (client_id, status, kind, duration_s, search_deadline, mitra_id,
                                                 created_at, ended_at)
                   VALUES (CAST(:c AS uuid), 'matched', 'free_trial', 900, now() - interval '2 hours',
                           CAST(:m AS uuid), now() - interval '2 hours', now() - interval '2 hours')
                   RETURNING id)
               INSERT INTO sessions (request_id, client_id, mitra_id, kind, status, started_at, ends_at, closed_at)
               SELECT id, CAST(:c AS uuid), CAST(:m AS uuid), 'free_trial', 'closed', now() - interval '2 hours',
                      now() - interval '105 minutes', now() - interval '100 minutes'
               FROM earlier""",
            {"c": client_id, "m": mitra_id},
        )


def test_asking_for_a_mitra_one_never_had_is_refused(
    new_client: Callable[..., App], new_mitra: Callable[..., App], halo_db: Database
) -> None:
    stranger = account_id(halo_db, new_mitra())

    refused = new_client().post("pairing_request", {"free_trial": True, "mitra_id": stranger})
    unknown = new_client().post("pairing_request", {"free_trial": True, "mitra_id": str(uuid.uuid4())})
    garbled = new_client().post("pairing_request", {"free_trial": True, "mitra_id": "someone"})

    assert (refused.status, refused.error_code) == (409, "not_a_past_mitra")
    assert (unknown.status, unknown.error_code) == (409, "not_a_past_mitra")
    assert (garbled.status, garbled.error_code) == (400, "invalid_request")
    assert "mitra_id" in str(garbled.body)


def test_the_estimated_wait_is_the_median_of_recent_matches(
    new_client: Callable[..., App], halo_db: Database, watches: Callable[[Watch], Watch]
) -> None:
    history = client_id_of(halo_db, new_client("Riwayat"))
    with halo_db.transaction() as tx:
        ids = tx.all(
            """INSERT INTO pairing_requests (client_id, status, kind, duration_s, search_deadline, created_at, ended_at)
               SELECT CAST(:c AS uuid), 'matched', 'free_trial', 900, now(),
                      now() - make_interval(secs => 120 + n % 2), now()
               FROM generate_series(1, 50) AS n
               RETURNING id""",
            {"c": history},
        )
    try:
        asked = _request(new_client())
        path = f"pairing_requests/{asked['request_id']}"
        assert asked["estimated_wait_s"] in (120, 121)
        watches(Watch.document(path)).wait_for(_field(path, "estimated_wait_s", asked["estimated_wait_s"]))
    finally:
        with halo_db.transaction() as tx:
            tx.execute("DELETE FROM pairing_requests WHERE id = ANY(:ids)", {"ids": [row["id"] for row in ids]})
