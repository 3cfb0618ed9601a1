"""Prices' SQL: the tiers on sale, and whether a client has had their free trial."""

from __future__ import annotations

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
        return bool(
            self._sql.scalar(
                "SELECT EXISTS (SELECT 1 FROM free_trials WHERE client_id = CAST(:id AS uuid))", {"id": client_id}
            )
        )
