"""What a client can buy now."""

from __future__ import annotations

from dataclasses import dataclass

from shared.adapters.postgres.database import Database, Tx
from shared.domain.pricing import PricingTier
from shared.services import credits
from shared.services.settings_store import load_config


@dataclass(frozen=True)
class Quote:
    tiers: list[PricingTier]
    free_trial_available: bool
    free_trial_minutes: int
    credits: list[credits.Balance]


def active_tiers(tx: Tx) -> list[PricingTier]:
    rows = tx.all("SELECT id, duration_s, price FROM pricing_tiers WHERE active ORDER BY sort_order, duration_s")
    return [PricingTier(**row) for row in rows]


def quote(db: Database, client_id: str) -> Quote:
    with db.transaction() as tx:
        config = load_config(tx)
        tiers = active_tiers(tx)
        trial_used = tx.scalar(
            "SELECT EXISTS (SELECT 1 FROM free_trials WHERE client_id = CAST(:id AS uuid))", {"id": client_id}
        )
        balances = credits.balances(tx, client_id)
    return Quote(
        tiers=tiers,
        free_trial_available=config.free_trial_enabled and not trial_used,
        free_trial_minutes=config.free_trial_minutes,
        credits=balances,
    )
