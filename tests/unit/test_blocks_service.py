"""Blocks as stories on the in-memory unit of work: a client blocks a mitra (or a mitra a client) from a session
they shared, and the pair is never offered to each other again; an offer made before the block cannot be accepted;
each side lists and lifts only its own blocks. The same on PostgreSQL: tests/e2e/test_reports_blocks.py."""

from __future__ import annotations

import pytest

from shared.domain.chat import Participant
from shared.domain.roles import Role
from shared.errors import Conflict, NotFound
from shared.services import blocks, pairing
from tests.support.fake_chat import add_session
from tests.support.fake_pairing import add_client, add_mitra, uid
from tests.support.fakes import FakeDatabase, FakePorts, fake_ports, with_config

SESSION = "5e551011-0000-4000-8000-000000000001"


@pytest.fixture
def db() -> FakeDatabase:
    return FakeDatabase()


@pytest.fixture
def ports(db: FakeDatabase) -> FakePorts:
    return fake_ports(db)


def _shared_a_session(db: FakeDatabase, client: str, mitra: str) -> None:
    add_session(db, SESSION, client=db.table("clients")[client], mitra=db.table("mitras")[mitra], status="closed")


def _as(db: FakeDatabase, role: Role, account_id: str) -> Participant:
    return Participant(role, account_id, uid(db, "clients" if role is Role.CLIENT else "mitras", account_id))


def _offered(ports: FakePorts, db: FakeDatabase, client: str) -> set[str]:
    request_id = pairing.request_pairing(ports, client, tier_id=None, free_trial=True).request_id
    pairing.blast(ports, request_id)
    return {mitra for (request, mitra) in db.table("pairing_offers") if request == request_id}


def test_a_client_s_block_keeps_that_mitra_from_their_requests_until_lifted(ports: FakePorts, db: FakeDatabase) -> None:
    client, blocked, other = add_client(db), add_mitra(db, name="Anisa"), add_mitra(db, name="Budi")
    _shared_a_session(db, client, blocked)

    made = blocks.block(ports, _as(db, Role.CLIENT, client), SESSION)

    assert (made.blocked_by, made.other_name, made.session_id) == ("client", "Anisa", SESSION)
    assert blocks.block(ports, _as(db, Role.CLIENT, client), SESSION).block_id == made.block_id, "again: the same"
    assert _offered(ports, db, client) == {other}
    with ports.uow() as uow:
        assert uow.pairing.offer_searching_requests_to(blocked, uow.settings.load()) == [], (
            "coming online offers no blocked request"
        )

    assert blocks.unblock(ports, _as(db, Role.CLIENT, client), made.block_id)
    assert not blocks.unblock(ports, _as(db, Role.CLIENT, client), made.block_id), "a repeat changes nothing"

    assert blocks.own(ports, _as(db, Role.CLIENT, client)) == []
    pairing.cancel(ports, client, next(iter(db.table("pairing_requests"))))
    assert _offered(ports, db, client) == {blocked, other}


def test_a_mitra_s_block_refuses_an_accept_of_an_offer_made_before_it(ports: FakePorts, db: FakeDatabase) -> None:
    client, mitra = add_client(db), add_mitra(db)
    _shared_a_session(db, client, mitra)
    request_id = pairing.request_pairing(ports, client, tier_id=None, free_trial=True).request_id
    pairing.blast(ports, request_id)

    made = blocks.block(ports, _as(db, Role.MITRA, mitra), SESSION)

    assert made.other_name == "Bestie #1000", "a mitra sees the client as the anonymity mode shows them"
    with pytest.raises(Conflict) as refused:
        pairing.accept(ports, mitra, request_id)
    assert refused.value.code == "blocked"
    assert db.table("pairing_requests")[request_id]["status"] == "searching"


def test_each_side_sees_and_lifts_only_its_own_blocks(ports: FakePorts, db: FakeDatabase) -> None:
    with_config(db, anonymity_mode="client_choice")
    client, mitra, stranger = add_client(db, display_name="Sari"), add_mitra(db), add_client(db)
    _shared_a_session(db, client, mitra)
    by_client = blocks.block(ports, _as(db, Role.CLIENT, client), SESSION)
    by_mitra = blocks.block(ports, _as(db, Role.MITRA, mitra), SESSION)

    assert [b.block_id for b in blocks.own(ports, _as(db, Role.CLIENT, client))] == [by_client.block_id]
    assert [(b.block_id, b.other_name) for b in blocks.own(ports, _as(db, Role.MITRA, mitra))] == [
        (by_mitra.block_id, "Sari")
    ]
    assert not blocks.unblock(ports, _as(db, Role.MITRA, mitra), by_client.block_id), "another's block stays"
    with pytest.raises(NotFound):
        blocks.block(ports, _as(db, Role.CLIENT, stranger), SESSION)
    assert len(db.table("blocks")) == 2


# -- the control center ------------------------------------------------------------------------------------------------


def test_an_admin_lists_blocks_by_client_mitra_or_pair_in_pages(ports: FakePorts, db: FakeDatabase) -> None:
    client, other_client = add_client(db), add_client(db)
    mitra, other_mitra = add_mitra(db, name="Anisa"), add_mitra(db, name="Budi")
    made = []
    for n, (c, m, role) in enumerate(
        [(client, mitra, Role.CLIENT), (client, other_mitra, Role.MITRA), (other_client, mitra, Role.MITRA)]
    ):
        session = f"5e551011-0000-4000-8000-00000000001{n}"
        add_session(db, session, client=db.table("clients")[c], mitra=db.table("mitras")[m], status="closed")
        made.append(blocks.block(ports, _as(db, role, c if role is Role.CLIENT else m), session).block_id)

    def listed(**named: str | None) -> set[str]:
        found, cursor = blocks.on_record(ports, cursor=None, limit=50, **{"client_id": None, "mitra_id": None, **named})
        assert cursor is None
        return {b.block_id for b in found}

    assert listed(client_id=client) == {made[0], made[1]}
    assert listed(mitra_id=mitra) == {made[0], made[2]}
    assert listed(client_id=client, mitra_id=mitra) == {made[0]}
    assert listed() == set(made)
    first, cursor = blocks.on_record(ports, client_id=None, mitra_id=None, cursor=None, limit=2)
    rest, last = blocks.on_record(ports, client_id=None, mitra_id=None, cursor=cursor, limit=2)
    assert (len(first), len(rest), last) == (2, 1, None)
    assert {b.block_id for b in [*first, *rest]} == set(made), "every block once across the pages"
    (shown,) = [b for b in first + rest if b.block_id == made[1]]
    assert (shown.blocked_by, shown.client_id, shown.mitra_id, shown.mitra_name) == (
        "mitra",
        client,
        other_mitra,
        "Budi",
    )


def test_an_admin_lifts_a_block_whoever_made_it_audited_and_the_pair_is_offered_again(
    ports: FakePorts, db: FakeDatabase
) -> None:
    client, mitra = add_client(db), add_mitra(db, name="Anisa")
    _shared_a_session(db, client, mitra)
    made = blocks.block(ports, _as(db, Role.MITRA, mitra), SESSION)
    assert _offered(ports, db, client) == set()
    (asked,) = db.table("pairing_requests")
    pairing.cancel(ports, client, asked)

    lifted = blocks.lift(ports, "uid-admin", made.block_id, reason="salah tekan")

    assert lifted is not None and (lifted.block_id, lifted.blocked_by, lifted.mitra_id) == (
        made.block_id,
        "mitra",
        mitra,
    )
    assert blocks.own(ports, _as(db, Role.MITRA, mitra)) == [], "gone from its maker's list"
    assert [(a["action"], a["target"], a["new"]) for a in db.audit] == [
        ("block.lift", made.block_id, {"reason": "salah tekan"})
    ]
    assert blocks.lift(ports, "uid-admin", made.block_id, reason="salah tekan") is None, "a repeat changes nothing"
    assert len(db.audit) == 1, "and is not audited again"
    assert _offered(ports, db, client) == {mitra}
