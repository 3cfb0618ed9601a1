"""The control center's settings and prices as stories on the in-memory unit of work (tests/support/fakes.py): each
real change versioned and audited, the same value again no change. The same through the gateway, and taking effect
for clients: tests/e2e/test_admin.py."""

from __future__ import annotations

import pytest

from shared.domain.admin import TierPrice
from shared.services import admin_config, pricing
from tests.support.fake_pricing import add_tier
from tests.support.fakes import FakeDatabase, FakePorts, fake_ports

ADMIN = "uid-admin"


@pytest.fixture
def db() -> FakeDatabase:
    database = FakeDatabase()
    add_tier(database, "sesi-30", minutes=30, price=35_000, sort_order=1)
    return database


@pytest.fixture
def ports(db: FakeDatabase) -> FakePorts:
    return fake_ports(db)


def test_every_setting_is_read_with_its_version(ports: FakePorts, db: FakeDatabase) -> None:
    view = admin_config.read(ports)

    assert view["settings"] == db.config
    assert view["versions"]["free_trial_minutes"] == {"version": 0, "updated_at": None, "updated_by": None}
    assert [tier.id for tier in view["tiers"]] == ["sesi-30"]


def test_a_change_is_versioned_audited_and_takes_effect(ports: FakePorts, db: FakeDatabase) -> None:
    view = admin_config.change(ports, ADMIN, {"free_trial_minutes": 20}, [])
    again = admin_config.change(ports, ADMIN, {"free_trial_minutes": 25}, [])

    assert view["settings"].free_trial_minutes == 20
    assert again["versions"]["free_trial_minutes"]["version"] == 2
    assert again["versions"]["free_trial_minutes"]["updated_by"] == ADMIN
    assert [(row["old"], row["new"]) for row in db.audit] == [
        ({"value": 15, "version": 0}, {"value": 20, "version": 1}),
        ({"value": 20, "version": 1}, {"value": 25, "version": 2}),
    ]
    assert pricing.quote(ports, "c1").free_trial_minutes == 25


def test_sending_the_same_value_changes_nothing(ports: FakePorts, db: FakeDatabase) -> None:
    admin_config.change(ports, ADMIN, {"free_trial_minutes": 20}, [])

    view = admin_config.change(ports, ADMIN, {"free_trial_minutes": 20}, [TierPrice("sesi-30", 1800, 35_000, True)])

    assert view["versions"]["free_trial_minutes"]["version"] == 1
    assert len(db.audit) == 1


def test_a_tier_is_repriced_or_added_last_and_audited(ports: FakePorts, db: FakeDatabase) -> None:
    repriced, added = TierPrice("sesi-30", 1800, 36_000, True), TierPrice("sesi-120", 7200, 120_000, True)

    view = admin_config.change(ports, ADMIN, {}, [repriced, added])

    assert [(tier.id, tier.price) for tier in view["tiers"]] == [("sesi-30", 36_000), ("sesi-120", 120_000)]
    assert [(row["target"], row["old"]) for row in db.audit] == [
        ("sesi-30", {"id": "sesi-30", "duration_s": 1800, "price": 35_000, "active": True}),
        ("sesi-120", None),
    ]
