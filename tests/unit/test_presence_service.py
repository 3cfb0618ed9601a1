"""The presence use cases as stories, on the in-memory unit of work (tests/support/fakes.py). The same on PostgreSQL:
tests/e2e/test_pairing.py (a mitra coming online mid-search, silence taking a mitra offline)."""

from __future__ import annotations

import pytest

from shared.domain.config import AppConfig
from shared.domain.events import DocumentDelete, DocumentWrite
from shared.domain.presence import Pace, Presence, pace, silent
from shared.errors import NotFound
from shared.services import pairing, presence
from tests.support.fake_pairing import add_client, add_mitra, uid
from tests.support.fakes import FakeDatabase, FakePorts, fake_ports, with_config


@pytest.fixture
def db() -> FakeDatabase:
    return FakeDatabase()


@pytest.fixture
def ports(db: FakeDatabase) -> FakePorts:
    return fake_ports(db)


def _logged(db: FakeDatabase, mitra_id: str) -> list[tuple[str, str, str]]:
    rows = db.table("mitra_status_logs").values()
    return [(r["from_status"], r["to_status"], r["reason"]) for r in rows if r["mitra_id"] == mitra_id]


def _searching(ports: FakePorts, db: FakeDatabase) -> str:
    request_id = pairing.request_pairing(ports, add_client(db), tier_id=None, free_trial=True).request_id
    pairing.blast(ports, request_id)
    return request_id


def test_going_online_offers_every_request_still_searching_at_once(ports: FakePorts, db: FakeDatabase) -> None:
    add_mitra(db)
    requests = [_searching(ports, db), _searching(ports, db)]
    late = add_mitra(db, online=False)
    written = len(ports.documents.written)

    change = presence.set_status(ports, late, Presence.ONLINE)

    assert (change.status, change.changed) == ("online", True)
    offers = [d for d in ports.documents.written[written:] if d.paths[0].startswith("mitras/")]
    assert all(isinstance(offer, DocumentWrite) for offer in offers)
    assert [offer.paths for offer in offers] == [(f"mitras/{uid(db, 'mitras', late)}/offers/{r}",) for r in requests]
    assert _logged(db, late) == [("offline", "online", "manual")]


def test_saying_online_again_is_no_transition_and_offers_nothing_twice(ports: FakePorts, db: FakeDatabase) -> None:
    mitra = add_mitra(db)
    _searching(ports, db)
    written = len(ports.documents.written)

    change = presence.set_status(ports, mitra, Presence.ONLINE)

    assert (change.status, change.changed) == ("online", False)
    assert _logged(db, mitra) == []
    assert ports.documents.written[written:] == []


def test_going_offline_withdraws_every_open_offer(ports: FakePorts, db: FakeDatabase) -> None:
    mitra = add_mitra(db)
    requests = [_searching(ports, db), _searching(ports, db)]

    presence.set_status(ports, mitra, Presence.OFFLINE)

    (withdrawn,) = [d for d in ports.documents.written if isinstance(d, DocumentDelete)]
    assert sorted(withdrawn.paths) == sorted(f"mitras/{uid(db, 'mitras', mitra)}/offers/{r}" for r in requests)
    assert _logged(db, mitra) == [("online", "offline", "manual")]
    assert {o["status"] for o in db.table("pairing_offers").values()} == {"withdrawn"}


def test_only_an_active_mitra_has_a_presence(ports: FakePorts, db: FakeDatabase) -> None:
    with pytest.raises(NotFound):
        presence.set_status(ports, add_mitra(db, active=False), Presence.ONLINE)


def test_a_heartbeat_keeps_an_online_mitra_online_and_tells_an_offline_one(ports: FakePorts, db: FakeDatabase) -> None:
    online, offline = add_mitra(db, heard_s_ago=20), add_mitra(db, online=False)

    assert presence.heartbeat(ports, online) == presence.Beat(Presence.ONLINE, next_heartbeat_s=30)
    assert presence.heartbeat(ports, offline) == presence.Beat(Presence.OFFLINE, next_heartbeat_s=None)
    assert db.table("mitras")[online]["last_heartbeat_at"] == db.now
    assert db.table("mitras")[offline]["presence"] == "offline"


def test_the_sweep_takes_only_the_silent_offline_and_withdraws_their_offers(ports: FakePorts, db: FakeDatabase) -> None:
    with_config(db, heartbeat_grace_s=30)
    silent, chatty = add_mitra(db), add_mitra(db)
    request_id = _searching(ports, db)
    db.tick(20)
    presence.heartbeat(ports, chatty)
    db.tick(15)

    assert presence.sweep(ports) == 1

    assert (db.table("mitras")[silent]["presence"], db.table("mitras")[chatty]["presence"]) == ("offline", "online")
    assert _logged(db, silent) == [("online", "offline", "heartbeat_timeout")]
    assert db.table("pairing_offers")[(request_id, silent)]["status"] == "withdrawn"
    assert db.table("pairing_offers")[(request_id, chatty)]["status"] == "offered"
    assert presence.sweep(ports) == 0, "nothing is taken offline twice"


def test_a_heartbeat_after_the_sweep_s_verdict_keeps_the_mitra_online(ports: FakePorts, db: FakeDatabase) -> None:
    mitra = add_mitra(db, heard_s_ago=db.config.heartbeat_grace_s + 1)
    with ports.uow() as uow:
        now, online = uow.presence.online_heartbeats()
    verdict = silent(online, now=now)
    assert [heard.mitra_id for heard in verdict] == [mitra]

    presence.heartbeat(ports, mitra)  # heard from after the verdict was reached

    with ports.uow() as uow:
        assert uow.presence.take_offline_unless_heard_since(verdict) == []
    assert db.table("mitras")[mitra]["presence"] == "online"


@pytest.mark.parametrize(
    ("online", "interval_s", "grace_s"),
    [(0, 30, 90), (900, 30, 90), (901, 31, 93), (1_500, 50, 150), (5_000, 167, 501), (50_000, 1667, 5001)],
)
def test_the_pace_keeps_a_beat_every_third_of_the_grace_until_the_fleet_would_pass_its_rate(
    online: int, interval_s: int, grace_s: int
) -> None:
    config = AppConfig.from_rows({})  # grace 90 s, at most 30 heartbeats a second
    assert pace(online, config) == Pace(interval_s=interval_s, grace_s=grace_s)
    assert online / pace(online, config).interval_s <= config.heartbeats_per_s_max


def test_the_sweep_sets_the_pace_for_those_still_online_and_heartbeats_carry_it(
    ports: FakePorts, db: FakeDatabase
) -> None:
    with_config(db, heartbeats_per_s_max=1)  # so a few mitras are already many
    mitras = [add_mitra(db) for _ in range(40)]
    silent_one = add_mitra(db, heard_s_ago=db.config.heartbeat_grace_s + 1)

    assert presence.heartbeat(ports, mitras[0]).next_heartbeat_s == 30, "the seeded pace, before any sweep"
    assert presence.sweep(ports) == 1
    assert db.table("mitras")[silent_one]["presence"] == "offline"

    # 40 still online at one beat a second together: each beats every 40 s, heard from for three beats.
    beat = presence.heartbeat(ports, mitras[0])
    assert beat == presence.Beat(Presence.ONLINE, next_heartbeat_s=40)
    assert (db.table("mitras")[mitras[0]]["heard_until"] - db.now).total_seconds() == 120
    presence.set_status(ports, mitras[1], Presence.OFFLINE)
    presence.set_status(ports, mitras[1], Presence.ONLINE)
    assert (db.table("mitras")[mitras[1]]["heard_until"] - db.now).total_seconds() == 120, "going online too"


def test_a_mitra_told_a_long_interval_is_not_swept_when_the_pace_shortens(ports: FakePorts, db: FakeDatabase) -> None:
    with_config(db, heartbeats_per_s_max=1)
    mitras = [add_mitra(db) for _ in range(40)]
    presence.sweep(ports)
    told = presence.heartbeat(ports, mitras[0]).next_heartbeat_s
    assert told == 40
    for mitra in mitras[1:]:
        presence.set_status(ports, mitra, Presence.OFFLINE)
    presence.sweep(ports)  # one online now: the pace is back to a beat every 30 s, a grace of 90 s
    assert presence.heartbeat(ports, mitras[1]) == presence.Beat(Presence.OFFLINE, next_heartbeat_s=None)

    db.tick(100)  # past the new grace, within the lease the long interval gave (120 s)
    assert presence.sweep(ports) == 0
    assert db.table("mitras")[mitras[0]]["presence"] == "online"
    db.tick(21)
    assert presence.sweep(ports) == 1, "the lease ran out"
