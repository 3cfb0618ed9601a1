"""The quote as a story on the in-memory unit of work: tiers on sale in order, unused paid sessions, the free trial
once per client while it is offered. The same on PostgreSQL is proven by tests/e2e/test_billing.py and
tests/e2e/test_pairing.py."""

from __future__ import annotations

import pytest

from shared.domain.billing import Balance
from shared.services import pricing
from tests.support.fake_credits import add_paid_transaction
from tests.support.fake_pricing import add_tier
from tests.support.fakes import FakeDatabase, FakePorts, fake_ports, with_config


@pytest.fixture
def db() -> FakeDatabase:
    database = FakeDatabase()
    add_tier(database, "sesi-60", minutes=60, price=60000, sort_order=2)
    add_tier(database, "sesi-30", minutes=30, price=35000, sort_order=1)
    add_tier(database, "sesi-lama", minutes=45, price=40000, active=False)
    return database


@pytest.fixture
def ports(db: FakeDatabase) -> FakePorts:
    return fake_ports(db)


def test_a_new_client_sees_the_tiers_on_sale_and_the_free_trial(ports: FakePorts) -> None:
    quote = pricing.quote(ports, "c1")

    assert [(t.id, t.minutes, t.price) for t in quote.tiers] == [("sesi-30", 30, 35000), ("sesi-60", 60, 60000)]
    assert (quote.free_trial_available, quote.free_trial_minutes, quote.credits) == (True, 15, [])


def test_the_free_trial_is_once_per_client_and_only_while_offered(ports: FakePorts, db: FakeDatabase) -> None:
    db.table("free_trials")["c1"] = {"client_id": "c1"}
    assert pricing.quote(ports, "c1").free_trial_available is False
    assert pricing.quote(ports, "c2").free_trial_available is True

    with_config(db, free_trial_enabled=False)
    assert pricing.quote(ports, "c2").free_trial_available is False


def test_unused_paid_sessions_are_counted_per_tier(ports: FakePorts, db: FakeDatabase) -> None:
    with ports.uow() as uow:
        for transaction in ("t1", "t2", "t3"):
            add_paid_transaction(db, transaction, client_id="c1", tier_id="sesi-30", duration_s=1800)
            uow.credits.issue(transaction)
        uow.commit()

    assert pricing.quote(ports, "c1").credits == [Balance("sesi-30", 1800, 3)]
    assert pricing.quote(ports, "c2").credits == []
