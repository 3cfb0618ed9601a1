"""The presence use cases as stories, on the in-memory unit of work (tests/support/fakes.py). The same on PostgreSQL:
tests/e2e/test_pairing.py (a mitra coming online mid-search, silence taking a mitra offline)."""

from __future__ import annotations

import pytest

from shared.domain.events import DocumentDelete, DocumentWrite
from shared.domain.presence import Presence, silent
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

    assert presence.heartbeat(ports, online) == "online"
    assert presence.heartbeat(ports, offline) == "offline"
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
    verdict = silent(online, now=now, grace_s=db.config.heartbeat_grace_s)
    assert [heard.mitra_id for heard in verdict] == [mitra]

    presence.heartbeat(ports, mitra)  # heard from after the verdict was reached

    with ports.uow() as uow:
        assert uow.presence.take_offline_unless_heard_since(verdict) == []
    assert db.table("mitras")[mitra]["presence"] == "online"
