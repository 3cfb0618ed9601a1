"""The pairing use cases as stories, on the in-memory unit of work (tests/support/fakes.py): no database, no emulators.
The same rules on PostgreSQL are proven by tests/e2e/test_pairing.py, tests/integration/test_pairing_race.py and
tests/integration/test_pairing_perf_paths.py."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from shared.domain.events import DocumentDelete, DocumentWrite
from shared.domain.pairing import RequestStatus
from shared.errors import Conflict, InvalidRequest, NotFound, RateLimited, Unavailable
from shared.services import pairing, projector
from tests.support.fake_credits import add_paid_transaction
from tests.support.fake_idempotency import keyed
from tests.support.fake_pairing import UniqueViolation, add_client, add_mitra, add_tier, uid
from tests.support.fakes import FakeDatabase, FakePorts, fake_ports, with_config


@pytest.fixture
def db() -> FakeDatabase:
    return FakeDatabase()


@pytest.fixture
def ports(db: FakeDatabase) -> FakePorts:
    return fake_ports(db)


def _ask(ports: FakePorts, client_id: str, *, key: str | None = None, tier_id: str | None = None) -> str:
    body = {"tier_id": tier_id, "free_trial": tier_id is None}
    call = keyed("pairing_request", body, key, caller_uid=client_id) if key else None
    outcome = pairing.request_pairing(ports, client_id, tier_id=tier_id, free_trial=tier_id is None, keyed=call)
    return outcome.request_id


def _searching(ports: FakePorts, db: FakeDatabase, client_id: str | None = None) -> str:
    """A request asked for and blasted, as the `pairing-requested` message would."""
    request_id = _ask(ports, client_id or add_client(db))
    pairing.blast(ports, request_id)
    return request_id


def _pushes(ports: FakePorts) -> list[dict[str, object]]:
    return [json.loads(data) for topic, data, _ in ports.publisher.published if topic == "notify"]


def _offer_paths(db: FakeDatabase, request_id: str, mitra_ids: list[str]) -> tuple[str, ...]:
    return tuple(sorted(f"mitras/{uid(db, 'mitras', m)}/offers/{request_id}" for m in mitra_ids))


# -- the client asks ---------------------------------------------------------------------------------------------------


def test_a_request_searches_with_its_blast_and_its_timer_once_someone_is_available(
    ports: FakePorts, db: FakeDatabase
) -> None:
    add_mitra(db)
    client = add_client(db)

    outcome = pairing.request_pairing(ports, client, tier_id=None, free_trial=True)

    assert outcome.status == "searching"
    assert outcome.search_deadline == db.now + timedelta(seconds=db.config.pairing_search_window_s)
    (document,) = ports.documents.written
    assert document.paths == (f"pairing_requests/{outcome.request_id}",)
    assert isinstance(document, DocumentWrite) and document.data["status"] == "searching"
    assert [(topic, json.loads(data)) for topic, data, _ in ports.publisher.published] == [
        ("pairing-requested", {"request_id": outcome.request_id})
    ]
    (timeout,) = ports.tasks.created.values()
    assert (timeout.handler, timeout.at) == ("task_pairing_timeout", outcome.search_deadline)
    assert db.pending() == []


def test_nobody_available_means_no_mitra_at_once_and_no_search_when_so_configured(
    ports: FakePorts, db: FakeDatabase
) -> None:
    with_config(db, wait_when_nobody_online=False)
    add_mitra(db, online=False)
    add_mitra(db, heard_s_ago=db.config.heartbeat_grace_s + 1)  # online by its word, silent too long
    add_mitra(db, active=False)

    outcome = pairing.request_pairing(ports, add_client(db), tier_id=None, free_trial=True)

    assert outcome.status == "no_mitra"
    assert ports.publisher.published == [] and ports.tasks.created == {}


def test_one_open_request_per_client_and_a_retry_gets_the_first(ports: FakePorts, db: FakeDatabase) -> None:
    add_mitra(db)
    client = add_client(db)
    first = _ask(ports, client, key="tap-1")

    assert _ask(ports, client, key="tap-1") == first
    with pytest.raises(Conflict) as refused:
        _ask(ports, client, key="tap-2")
    assert (refused.value.code, refused.value.details) == ("request_open", {"request_id": first})


def test_a_client_in_a_session_may_not_ask_again(ports: FakePorts, db: FakeDatabase) -> None:
    mitra = add_mitra(db)
    client = add_client(db)
    match = pairing.accept(ports, mitra, _searching(ports, db, client))

    with pytest.raises(Conflict) as refused:
        _ask(ports, client)
    assert (refused.value.code, refused.value.details) == ("session_open", {"session_id": match.session_id})


def test_asking_faster_than_the_hourly_limit_is_told_when_to_retry(ports: FakePorts, db: FakeDatabase) -> None:
    with_config(db, pairing_requests_per_hour=2, wait_when_nobody_online=False)
    client = add_client(db)
    _ask(ports, client)
    db.tick(600)
    _ask(ports, client)
    db.tick(600)

    with pytest.raises(RateLimited) as limited:
        _ask(ports, client)
    assert limited.value.retry_after_s == 2400  # the first leaves the hour 40 minutes from now
    db.tick(2400)
    assert pairing.request_pairing(ports, client, tier_id=None, free_trial=True)


def test_the_free_trial_is_used_once_a_session_starts_and_kept_when_a_search_ends_without_one(
    ports: FakePorts, db: FakeDatabase
) -> None:
    mitra = add_mitra(db)
    client = add_client(db)
    pairing.cancel(ports, client, _searching(ports, db, client))
    ended = _ask(ports, client)
    db.tick(db.config.pairing_search_window_s)
    assert pairing.expire_search(ports, ended) == "no_mitra"

    pairing.accept(ports, mitra, _searching(ports, db, client))
    db.tables["sessions"].clear()  # the session is over

    with pytest.raises(Conflict) as refused:
        _ask(ports, client)
    assert refused.value.code == "free_trial_unavailable"


def test_the_free_trial_s_primary_key_refuses_a_second_trial_session(ports: FakePorts, db: FakeDatabase) -> None:
    mitra = add_mitra(db)
    client = add_client(db)
    request_id = _searching(ports, db, client)
    db.tables["free_trials"] = {client: {"session_id": "earlier"}}  # as if a trial had started meanwhile

    with pytest.raises(UniqueViolation, match="free_trials_pkey"):
        pairing.accept(ports, mitra, request_id)
    assert db.tables["sessions"] == {}, "the whole change is refused"
    assert db.tables["pairing_requests"][request_id]["status"] == "searching"


def test_switching_the_free_trial_off_refuses_it(ports: FakePorts, db: FakeDatabase) -> None:
    with_config(db, free_trial_enabled=False)

    with pytest.raises(Conflict) as refused:
        _ask(ports, add_client(db))
    assert refused.value.code == "free_trial_unavailable"


def test_a_paid_tier_holds_a_credit_that_the_session_uses_or_the_search_gives_back(
    ports: FakePorts, db: FakeDatabase
) -> None:
    mitra = add_mitra(db)
    client = add_client(db)
    add_tier(db, "sesi-30")
    with pytest.raises(Conflict) as unpaid:
        _ask(ports, client, tier_id="sesi-30")
    assert (unpaid.value.code, unpaid.value.details["tier_id"]) == ("payment_required", "sesi-30")
    for transaction_id in ("t1", "t2"):
        add_paid_transaction(db, transaction_id, client_id=client, tier_id="sesi-30", duration_s=1800)
        with ports.uow() as uow:
            uow.credits.issue(transaction_id)
            uow.commit()
    credits = db.tables["session_credits"]

    cancelled = _ask(ports, client, tier_id="sesi-30")
    assert credits["t1"]["status"] == "reserved"
    pairing.cancel(ports, client, cancelled)
    assert credits["t1"]["status"] == "available", "the search ended without a session: the credit is back"

    request_id = _ask(ports, client, tier_id="sesi-30")
    pairing.blast(ports, request_id)
    match = pairing.accept(ports, mitra, request_id)

    assert match.ends_at == db.now + timedelta(seconds=1800), "the length the credit bought"
    assert credits["t1"]["status"] == "consumed" and credits["t2"]["status"] == "available"


def test_a_retired_tier_without_a_credit_is_unknown(ports: FakePorts, db: FakeDatabase) -> None:
    add_tier(db, "sesi-lama", active=False)

    with pytest.raises(InvalidRequest):
        _ask(ports, add_client(db), tier_id="sesi-lama")


# -- the blast ---------------------------------------------------------------------------------------------------------


def test_the_blast_offers_every_available_mitra_in_one_write_and_one_push(ports: FakePorts, db: FakeDatabase) -> None:
    with_config(db, max_concurrent_clients=1)
    available = [add_mitra(db), add_mitra(db, heard_s_ago=10)]
    busy = add_mitra(db)
    pairing.accept(ports, busy, _searching(ports, db))
    add_mitra(db, online=False)
    add_mitra(db, heard_s_ago=db.config.heartbeat_grace_s + 1)
    request_id = _ask(ports, add_client(db, display_name="Sari"))
    written = len(ports.documents.written)

    assert pairing.blast(ports, request_id) == 2

    offers, count = ports.documents.written[written:]
    assert isinstance(offers, DocumentWrite) and isinstance(count, DocumentWrite)
    assert (count.paths, count.data) == ((f"pairing_requests/{request_id}",), {"offered_count": 2})
    assert offers.paths == _offer_paths(db, request_id, available)
    assert offers.data["client_name"].startswith("Bestie #"), "anonymity: an alias by default"
    assert offers.data["status"] == "offered"
    push = _pushes(ports)[-1]
    assert push["dedup_key"] == f"offer:{request_id}"
    assert sorted(push["recipients"]) == sorted(uid(db, "mitras", m) for m in available)  # type: ignore[arg-type]


def test_a_redelivered_blast_offers_and_pushes_nothing_twice(ports: FakePorts, db: FakeDatabase) -> None:
    add_mitra(db)
    request_id = _searching(ports, db)
    written, published = len(ports.documents.written), len(ports.publisher.published)

    assert pairing.blast(ports, request_id) == 0
    assert (len(ports.documents.written), len(ports.publisher.published)) == (written, published)


def test_a_blast_for_a_request_that_ended_offers_nothing(ports: FakePorts, db: FakeDatabase) -> None:
    add_mitra(db)
    client = add_client(db)
    request_id = _ask(ports, client)
    pairing.cancel(ports, client, request_id)

    assert pairing.blast(ports, request_id) == 0
    assert db.tables.get("pairing_offers", {}) == {}


# -- a mitra answers ---------------------------------------------------------------------------------------------------


def test_the_first_accept_wins_and_the_session_starts_with_its_timers(ports: FakePorts, db: FakeDatabase) -> None:
    mitras = [add_mitra(db, name=f"Mitra {n}") for n in range(3)]
    client = add_client(db)
    request_id = _searching(ports, db, client)
    written = len(ports.documents.written)

    match = pairing.accept(ports, mitras[0], request_id)
    with pytest.raises(Conflict) as lost:
        pairing.accept(ports, mitras[1], request_id)

    assert lost.value.code == "already_taken"
    withdrawn, request, session = ports.documents.written[written:]
    assert isinstance(withdrawn, DocumentDelete)
    assert tuple(sorted(withdrawn.paths)) == _offer_paths(db, request_id, mitras), "every offer goes, the winner's too"
    assert request.data["status"] == "matched" and request.data["session_id"] == match.session_id
    assert session.data["participant_uids"] == [uid(db, "clients", client), uid(db, "mitras", mitras[0])]
    assert session.data["status"] == "active" and session.data["mitra_name"] == "Mitra 0"
    assert _pushes(ports)[-1]["data"] == {"type": "matched", "request_id": request_id, "session_id": match.session_id}
    timers = [t for t in ports.tasks.created.values() if t.payload.get("session_id") == match.session_id]
    assert [(t.handler, t.at) for t in timers] == [
        ("task_session_warning", match.ends_at - timedelta(seconds=db.config.session_warning_s)),
        ("task_session_expire", match.ends_at),
    ]
    assert {o["status"] for o in db.tables["pairing_offers"].values()} == {"accepted", "withdrawn"}
    assert db.pending() == []


def test_a_mitra_at_capacity_cannot_accept_and_is_not_offered_more(ports: FakePorts, db: FakeDatabase) -> None:
    with_config(db, max_concurrent_clients=1)
    mitra = add_mitra(db)
    first, second = _searching(ports, db), _searching(ports, db)

    pairing.accept(ports, mitra, first)
    with pytest.raises(Conflict) as full:
        pairing.accept(ports, mitra, second)

    assert full.value.code == "capacity_reached"
    with_config(db, wait_when_nobody_online=False)
    later = pairing.request_pairing(ports, add_client(db), tier_id=None, free_trial=True)
    assert later.status == "no_mitra", "a mitra at capacity is not available"


def test_decline_hides_the_offer_for_that_mitra_only(ports: FakePorts, db: FakeDatabase) -> None:
    first, second = add_mitra(db), add_mitra(db)
    request_id = _searching(ports, db)

    pairing.decline(ports, first, request_id)
    pairing.decline(ports, first, request_id)  # again: nothing more

    deletes = [d for d in ports.documents.written if isinstance(d, DocumentDelete)]
    assert [d.paths for d in deletes] == [_offer_paths(db, request_id, [first])]
    with pytest.raises(Conflict) as declined:
        pairing.accept(ports, first, request_id)
    assert declined.value.code == "offer_declined"
    assert pairing.accept(ports, second, request_id).request_id == request_id


def test_an_offer_nobody_made_cannot_be_answered(ports: FakePorts, db: FakeDatabase) -> None:
    request_id = _searching(ports, db)
    stranger = add_mitra(db)

    with pytest.raises(NotFound):
        pairing.accept(ports, stranger, request_id)
    with pytest.raises(NotFound):
        pairing.decline(ports, stranger, request_id)


def test_an_accept_after_the_search_ended_finds_it_closed(ports: FakePorts, db: FakeDatabase) -> None:
    mitra = add_mitra(db)
    client = add_client(db)
    request_id = _searching(ports, db, client)
    pairing.cancel(ports, client, request_id)

    with pytest.raises(Conflict) as late:
        pairing.accept(ports, mitra, request_id)
    assert late.value.code == "request_closed"


def test_an_outage_after_the_accept_commits_leaves_its_events_to_the_retry_task(
    ports: FakePorts, db: FakeDatabase
) -> None:
    mitras = [add_mitra(db), add_mitra(db)]
    request_id = _searching(ports, db)
    ports.documents.refuse = True

    match = pairing.accept(ports, mitras[0], request_id)

    # the withdrawn offers, the request, the session, the client's push, the two timers: one insert at commit
    pending = db.pending()
    assert len(pending) == 6
    assert [type(row.event).__name__ for row in pending][-2:] == ["TaskRequest", "TaskRequest"]
    (retry,) = [t for t in ports.tasks.created.values() if t.handler == projector.RETRY_HANDLER]
    assert retry.payload == {"ids": [row.outbox_id for row in pending]}
    ports.documents.refuse = False
    assert projector.project(ports, ids=retry.payload["ids"]).published == 6
    timers = {t.handler for t in ports.tasks.created.values() if t.payload.get("session_id") == match.session_id}
    assert timers == {"task_session_warning", "task_session_expire"}


# -- the search ends ---------------------------------------------------------------------------------------------------


def test_cancel_withdraws_every_offer_and_a_matched_request_cannot_be_cancelled(
    ports: FakePorts, db: FakeDatabase
) -> None:
    mitras = [add_mitra(db), add_mitra(db)]
    client = add_client(db)
    request_id = _searching(ports, db, client)

    assert pairing.cancel(ports, client, request_id).status == "cancelled"
    assert pairing.cancel(ports, client, request_id).status == "cancelled", "cancelling again changes nothing"
    deletes = [d for d in ports.documents.written if isinstance(d, DocumentDelete)]
    assert [tuple(sorted(d.paths)) for d in deletes] == [_offer_paths(db, request_id, mitras)]

    matched = _searching(ports, db, client)
    pairing.accept(ports, mitras[0], matched)
    with pytest.raises(Conflict) as refused:
        pairing.cancel(ports, client, matched)
    assert refused.value.code == "request_matched"
    with pytest.raises(NotFound):
        pairing.cancel(ports, add_client(db), matched)


def test_the_search_window_ends_in_no_mitra_once_and_not_before(ports: FakePorts, db: FakeDatabase) -> None:
    mitra = add_mitra(db)
    client = add_client(db)
    request_id = _searching(ports, db, client)

    db.tick(db.config.pairing_search_window_s - 5)
    with pytest.raises(Unavailable):
        pairing.expire_search(ports, request_id)
    db.tick(4.5)  # a timer firing a little early still ends it

    assert pairing.expire_search(ports, request_id) == "no_mitra"
    assert pairing.expire_search(ports, request_id) == "stale", "a redelivered timer does nothing"
    assert _pushes(ports)[-1]["data"] == {"type": "no_mitra", "request_id": request_id}
    assert db.tables["pairing_offers"][(request_id, mitra)]["status"] == "withdrawn"


def test_ending_a_search_inside_another_change_tells_the_client(ports: FakePorts, db: FakeDatabase) -> None:
    """As the control center's suspension does, inside its own unit of work."""
    add_mitra(db)
    client = add_client(db)
    request_id = _searching(ports, db, client)

    with ports.uow() as uow:
        assert pairing.end_search(uow, request_id, RequestStatus.CANCELLED)
        assert not pairing.end_search(uow, request_id, RequestStatus.NO_MITRA), "a request ends once"
        committed = uow.commit()

    assert [type(row.event).__name__ for row in committed] == ["DocumentDelete", "DocumentWrite"]
    assert db.tables["pairing_requests"][request_id]["status"] == "cancelled"
