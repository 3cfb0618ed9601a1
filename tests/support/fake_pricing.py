"""Prices in memory: the promises of shared/adapters/postgres/pricing.py."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from shared.domain.pairing import trial_identities
from shared.domain.pricing import PricingTier
from tests.support.fake_pairing import TRIAL_KEY

if TYPE_CHECKING:
    from tests.support.fakes import FakeDatabase


def add_tier(
    db: FakeDatabase, tier_id: str, *, minutes: int, price: int, active: bool = True, sort_order: int = 0
) -> None:
    db.table("pricing_tiers")[tier_id] = {
        "id": tier_id,
        "duration_s": minutes * 60,
        "price": price,
        "active": active,
        "sort_order": sort_order,
    }


class FakePricingRepository:
    def __init__(self, db: FakeDatabase) -> None:
        self._db = db

    def active_tiers(self) -> list[PricingTier]:
        tiers: list[dict[str, Any]] = sorted(
            (t for t in self._db.table("pricing_tiers").values() if t["active"]),
            key=lambda t: (t["sort_order"], t["duration_s"]),
        )
        return [PricingTier(t["id"], t["duration_s"], t["price"]) for t in tiers]

    def free_trial_used(self, client_id: str) -> bool:
        """By this account (free_trials is keyed by client), or by another on its verified phone or email."""
        if client_id in self._db.table("free_trials"):
            return True
        client = self._db.table("clients").get(client_id, {})
        identities = trial_identities(client.get("phone"), client.get("email"), key=TRIAL_KEY)
        return any(identity in self._db.table("free_trial_identities") for identity in identities)
