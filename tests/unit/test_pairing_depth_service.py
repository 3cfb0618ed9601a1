"""Pairing that never leaves a client waiting for nothing (issue 24), as stories on the in-memory unit of work:
re-offers (coming online, a freed slot, an offer withdrawn and made again), capacity per mitra, the client's
standing (offered_count, estimated_wait_s), waiting when nobody is online, and the same mitra again. The same on
PostgreSQL and the emulators: tests/e2e/test_pairing_depth.py."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from shared.domain.events import DocumentDelete, DocumentWrite
from shared.domain.pairing import RequestStatus
from shared.domain.presence import Presence
from shared.errors import Conflict, Unavailable
from shared.services import admin_mitras, lifecycle, pairing, presence
from tests.support.fake_chat import add_session
from tests.support.fake_pairing import add_client, add_mitra, uid
from tests.support.fakes import FakeDatabase, FakePorts, fake_ports, with_config


@pytest.fixture
def db() -> FakeDatabase:
    return FakeDatabase()


@pytest.fixture
def ports(db: FakeDatabase) -> FakePorts:
    return fake_ports(db)


def _ask(ports: FakePorts, client_id: str, *, mitra_id: str | None = None) -> pairing.RequestOutcome:
    return pairing.request_pairing(ports, client_id, tier_id=None, free_trial=True, mitra_id=mitra_id)


def _searching(ports: FakePorts, db: FakeDatabase, client_id: str | None = None, **asked: str) -> str:
    request_id = _ask(ports, client_id or add_client(db), **asked).request_id
    pairing.blast(ports, request_id)
    return request_id


def _offer_path(db: FakeDatabase, mitra_id: str, request_id: str) -> str:
    return f"mitras/{uid(db, 'mitras', mitra_id)}/offers/{request_id}"


def _offered_now(ports: FakePorts, since: int) -> set[str]:
    """The offer documents written since the `since`-th write."""
    return {
        path
        for d in ports.documents.written[since:]
        if isinstance(d, DocumentWrite)
        for path in d.paths
        if "/offers/" in path
    }


def _withdrawn_now(ports: FakePorts, since: int) -> set[str]:
    return {path for d in ports.documents.written[since:] if isinstance(d, DocumentDelete) for path in d.paths}


def _request_writes(ports: FakePorts, request_id: str) -> list[dict[str, object]]:
    return [
        dict(d.data)
        for d in ports.documents.written
        if isinstance(d, DocumentWrite) and d.paths == (f"pairing_requests/{request_id}",)
    ]


def _pushes(ports: FakePorts) -> list[dict[str, object]]:
    return [json.loads(data) for topic, data, _ in ports.publisher.published if topic == "notify"]


def _past_session(db: FakeDatabase, client_id: str, mitra_id: str) -> None:
    """A closed session between them, as an earlier pairing left it."""
    session_id = f"5e551011-0000-4000-8000-{len(db.table('sessions')):012d}"
    db.table("sessions")[session_id] = {
        "id": session_id,
        "request_id": None,
        "client_id": client_id,
        "mitra_id": mitra_id,
        "status": "closed",
    }


# -- nobody online: the request waits its window -----------------------------------------------------------------------


def test_with_nobody_online_the_request_searches_and_the_first_mitra_to_come_online_is_offered_it(
    ports: FakePorts, db: FakeDatabase
) -> None:
    outcome = _ask(ports, add_client(db))
    assert outcome.status is RequestStatus.SEARCHING
    assert pairing.blast(ports, outcome.request_id) == 0
    (timer,) = ports.tasks.created.values()
    assert timer.at == outcome.search_deadline, "the search still ends at its deadline"

    late = add_mitra(db, online=False)
    written = len(ports.documents.written)
    presence.set_status(ports, late, Presence.ONLINE)

    assert _offered_now(ports, written) == {_offer_path(db, late, outcome.request_id)}
    assert _request_writes(ports, outcome.request_id)[-1] == {"offered_count": 1}
    db.tick(db.config.pairing_search_window_s)
    assert pairing.expire_search(ports, outcome.request_id) == "no_mitra"


# -- the client's standing ---------------------------------------------------------------------------------------------


def test_the_request_document_starts_with_nobody_offered_and_counts_as_offers_are_made(
    ports: FakePorts, db: FakeDatabase
) -> None:
    add_mitra(db)
    add_mitra(db)
    request_id = _searching(ports, db)

    opened, counted = _request_writes(ports, request_id)
    assert (opened["status"], opened["offered_count"], opened["estimated_wait_s"]) == ("searching", 0, None)
    assert counted == {"offered_count": 2}

    presence.set_status(ports, add_mitra(db, online=False), Presence.ONLINE)
    assert _request_writes(ports, request_id)[-1] == {"offered_count": 3}


def test_the_estimated_wait_is_the_median_of_recent_matches_and_null_with_too_little_history(
    ports: FakePorts, db: FakeDatabase
) -> None:
    with_config(db, max_concurrent_clients=20)
    mitra = add_mitra(db)
    waits = [10, 20, 30, 40]
    for wait in waits:
        presence.heartbeat(ports, mitra)  # heard from all along
        request_id = _searching(ports, db)
        db.tick(wait)
        pairing.accept(ports, mitra, request_id)
    assert _ask(ports, add_client(db)).estimated_wait_s is None, "4 matches are too little history"

    presence.heartbeat(ports, mitra)
    request_id = _searching(ports, db)
    db.tick(100)
    pairing.accept(ports, mitra, request_id)
    outcome = _ask(ports, add_client(db))

    assert outcome.estimated_wait_s == 30, "the median of 10, 20, 30, 40 and 100 seconds"
    assert _request_writes(ports, outcome.request_id)[0]["estimated_wait_s"] == 30


# -- capacity per mitra ------------------------------------------------------------------------------------------------


def test_a_mitra_s_own_capacity_overrides_the_global_one_for_offers_and_accepts(
    ports: FakePorts, db: FakeDatabase
) -> None:
    with_config(db, max_concurrent_clients=1)
    roomy = add_mitra(db, max_clients=2)
    pairing.accept(ports, roomy, _searching(ports, db))

    second = _searching(ports, db)
    assert _offer_path(db, roomy, second) in _offered_now(ports, 0), "one of two: still offered"
    pairing.accept(ports, roomy, second)

    with_config(db, max_concurrent_clients=3)
    db.table("mitras")[roomy]["max_concurrent_clients"] = 2
    third = _searching(ports, db)
    assert _offer_path(db, roomy, third) not in _offered_now(ports, 0), "full at their own 2, under the global 3"
    db.table("pairing_offers")[(third, roomy)] = {
        "request_id": third,
        "mitra_id": roomy,
        "status": "offered",
        "offered_at": db.now,
        "responded_at": None,
    }
    with pytest.raises(Conflict) as full:
        pairing.accept(ports, roomy, third)
    assert full.value.code == "capacity_reached"


def test_reaching_capacity_withdraws_the_mitra_s_other_offers_and_a_freed_slot_offers_them_again(
    ports: FakePorts, db: FakeDatabase
) -> None:
    mitra = add_mitra(db, max_clients=1)
    taken, waiting = _searching(ports, db), _searching(ports, db)

    written = len(ports.documents.written)
    pairing.accept(ports, mitra, taken)
    assert _offer_path(db, mitra, waiting) in _withdrawn_now(ports, written), "no offer they cannot accept"
    assert db.table("pairing_offers")[(waiting, mitra)]["status"] == "withdrawn"

    (session,) = (s for s in db.table("sessions").values() if s["request_id"] == taken)
    session["status"] = "closed"
    pushes = len(_pushes(ports))
    written = len(ports.documents.written)
    pairing.offer_freed_slot(ports, mitra)

    assert _offered_now(ports, written) == {_offer_path(db, mitra, waiting)}
    assert db.table("pairing_offers")[(waiting, mitra)]["status"] == "offered", "the withdrawn offer made again"
    (again,) = _pushes(ports)[pushes:]
    assert again["recipients"] == [uid(db, "mitras", mitra)]
    assert again["dedup_key"] != f"offer:{waiting}", "pushed again, not taken for the first push repeated"
    pairing.accept(ports, mitra, waiting)


def test_a_freed_slot_offers_nothing_to_a_mitra_still_full_or_offline(ports: FakePorts, db: FakeDatabase) -> None:
    full = add_mitra(db, max_clients=1)
    pairing.accept(ports, full, _searching(ports, db))
    gone = add_mitra(db, online=False)
    _searching(ports, db)
    written = len(ports.documents.written)

    pairing.offer_freed_slot(ports, full)
    pairing.offer_freed_slot(ports, gone)

    assert _offered_now(ports, written) == set()


def test_closing_a_session_announces_its_mitra_s_freed_slot(ports: FakePorts, db: FakeDatabase) -> None:
    session_id = "5e551011-0000-4000-8000-000000000009"
    add_session(
        db,
        session_id,
        client={"id": "c1", "firebase_uid": "uid-client", "display_name": "Sari"},
        mitra={"id": "m1", "firebase_uid": "uid-mitra", "display_name": "Mitra Anisa"},
        minutes=1,
    )
    with_config(db, goodbye_window_s=0)
    db.tick(60)
    lifecycle.expire(ports, session_id, 1)
    assert lifecycle.close(ports, session_id) == "closed"

    freed = [json.loads(data) for topic, data, _ in ports.publisher.published if topic == "mitra-slot-freed"]
    assert freed == [{"mitra_id": "m1"}]


def test_coming_back_online_revives_the_offers_withdrawn_when_going_offline(ports: FakePorts, db: FakeDatabase) -> None:
    mitra = add_mitra(db)
    request_id = _searching(ports, db)
    presence.set_status(ports, mitra, Presence.OFFLINE)
    assert db.table("pairing_offers")[(request_id, mitra)]["status"] == "withdrawn"

    db.tick(5)
    written = len(ports.documents.written)
    presence.set_status(ports, mitra, Presence.ONLINE)

    assert _offered_now(ports, written) == {_offer_path(db, mitra, request_id)}
    assert _pushes(ports)[-1]["dedup_key"] == f"offer:{request_id}:{db.now.isoformat()}"
    assert _request_writes(ports, request_id)[-1] == {"offered_count": 1}, "the same mitra counts once"


def test_a_declined_offer_is_not_made_again(ports: FakePorts, db: FakeDatabase) -> None:
    mitra = add_mitra(db)
    request_id = _searching(ports, db)
    pairing.decline(ports, mitra, request_id)
    presence.set_status(ports, mitra, Presence.OFFLINE)
    written = len(ports.documents.written)

    presence.set_status(ports, mitra, Presence.ONLINE)

    assert _offered_now(ports, written) == set()


def test_an_admin_sets_a_mitra_s_capacity_audited_and_offers_follow_it(ports: FakePorts, db: FakeDatabase) -> None:
    mitra = add_mitra(db)
    db.table("mitras")[mitra]["phone"] = "+6281200000001"
    pairing.accept(ports, mitra, _searching(ports, db))
    waiting = _searching(ports, db)

    written = len(ports.documents.written)
    lowered = admin_mitras.set_capacity(ports, "uid-admin", mitra, 1)
    assert lowered.max_concurrent_clients == 1
    assert _withdrawn_now(ports, written) == {_offer_path(db, mitra, waiting)}

    written = len(ports.documents.written)
    back = admin_mitras.set_capacity(ports, "uid-admin", mitra, None)
    assert back.max_concurrent_clients is None, "the global setting again"
    assert _offered_now(ports, written) == {_offer_path(db, mitra, waiting)}
    assert [(a["old"], a["new"]) for a in db.audit if a["action"] == "mitra.update"] == [
        ({"max_concurrent_clients": None}, {"max_concurrent_clients": 1}),
        ({"max_concurrent_clients": 1}, {"max_concurrent_clients": None}),
    ]


# -- the same mitra again ----------------------------------------------------------------------------------------------


def test_a_past_mitra_is_offered_the_request_alone_first_then_everyone(ports: FakePorts, db: FakeDatabase) -> None:
    with_config(db, preferred_mitra_first_s=60)
    client, before, other = add_client(db), add_mitra(db), add_mitra(db)
    _past_session(db, client, before)

    outcome = _ask(ports, client, mitra_id=before)
    assert outcome.preferred_mitra_until == db.now + timedelta(seconds=60)
    widen = ports.tasks.created[f"pairing-widen-{outcome.request_id}"]
    assert (widen.handler, widen.at) == ("task_pairing_widen", outcome.preferred_mitra_until)
    pairing.blast(ports, outcome.request_id)
    assert _offered_now(ports, 0) == {_offer_path(db, before, outcome.request_id)}

    late = add_mitra(db, online=False)
    presence.set_status(ports, late, Presence.ONLINE)
    assert _offer_path(db, late, outcome.request_id) not in _offered_now(ports, 0), "not during the window"

    db.tick(30)
    with pytest.raises(Unavailable):
        pairing.widen(ports, outcome.request_id)
    db.tick(30)
    written = len(ports.documents.written)
    assert pairing.widen(ports, outcome.request_id) == "offered 2"
    assert _offered_now(ports, written) == {
        _offer_path(db, other, outcome.request_id),
        _offer_path(db, late, outcome.request_id),
    }
    assert pairing.widen(ports, outcome.request_id) == "offered 0", "a repeated timer offers nothing twice"


def test_the_past_mitra_declining_sends_the_request_to_everyone_at_once(ports: FakePorts, db: FakeDatabase) -> None:
    client, before = add_client(db), add_mitra(db)
    add_mitra(db)
    _past_session(db, client, before)
    request_id = _searching(ports, db, client, mitra_id=before)

    pairing.decline(ports, before, request_id)

    blasts = [json.loads(data) for topic, data, _ in ports.publisher.published if topic == "pairing-requested"]
    assert blasts == [{"request_id": request_id}, {"request_id": request_id}]
    assert pairing.blast(ports, request_id) == 1, "everyone else, now"


def test_a_mitra_never_had_is_refused_and_nothing_is_reserved(ports: FakePorts, db: FakeDatabase) -> None:
    client, stranger = add_client(db), add_mitra(db)

    with pytest.raises(Conflict) as refused:
        _ask(ports, client, mitra_id=stranger)

    assert refused.value.code == "not_a_past_mitra"
    assert db.table("pairing_requests") == {}


@pytest.mark.parametrize("why", ["offline", "at_capacity", "refused_by_mitra"])
def test_a_past_mitra_who_cannot_take_it_now_means_everyone_at_once(
    ports: FakePorts, db: FakeDatabase, why: str
) -> None:
    client = add_client(db)
    before = add_mitra(db, online=why != "offline", max_clients=1)
    other = add_mitra(db)
    _past_session(db, client, before)
    if why == "at_capacity":
        pairing.accept(ports, before, _searching(ports, db))
    if why == "refused_by_mitra":
        db.table("blocks")["b1"] = {"id": "b1", "client_id": client, "mitra_id": before, "blocked_by": "mitra"}

    outcome = _ask(ports, client, mitra_id=before)
    written = len(ports.documents.written)
    pairing.blast(ports, outcome.request_id)

    assert outcome.preferred_mitra_until is None
    assert f"pairing-widen-{outcome.request_id}" not in ports.tasks.created
    assert _offer_path(db, other, outcome.request_id) in _offered_now(ports, written)
