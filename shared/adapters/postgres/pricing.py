"""Prices' SQL: the tiers on sale, and whether a client has had their free trial."""

from __future__ import annotations

from shared.adapters.postgres.pairing import FREE_TRIAL_USED, trial_key
from shared.adapters.postgres.sql import Sql
from shared.domain.pricing import PricingTier


class PricingRepository:
    def __init__(self, sql: Sql) -> None:
        self._sql = sql

    def active_tiers(self) -> list[PricingTier]:
        """In the order the control center set."""
        rows = self._sql.all(
            "SELECT id, duration_s, price FROM pricing_tiers WHERE active ORDER BY sort_order, duration_s"
        )
        return [PricingTier(**row) for row in rows]

    def free_trial_used(self, client_id: str) -> bool:
        """By this account, or by another on its verified phone number or email."""
        return bool(self._sql.scalar(f"SELECT {FREE_TRIAL_USED}", {"id": client_id, "trial_key": trial_key()}))
