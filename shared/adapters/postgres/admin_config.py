"""The control center's settings and prices in SQL: each setting's value and version, the pricing tiers."""

from __future__ import annotations

import json
from typing import Any

from shared.adapters.postgres.sql import Sql
from shared.domain.admin import ListedTier, StoredSetting, TierPrice


class AdminConfigRepository:
    def __init__(self, sql: Sql) -> None:
        self._sql = sql

    def settings(self, *, lock: bool = False) -> dict[str, StoredSetting]:
        """Every stored setting by key (pg8000 hands jsonb back decoded). Locked, they stay so until the change
        ends: two admins' changes are versioned one after the other."""
        rows = self._sql.all(
            "SELECT key, value, version, updated_at, updated_by FROM app_config ORDER BY key"
            + (" FOR UPDATE" if lock else "")
        )
        return {row["key"]: StoredSetting(**row) for row in rows}

    def set_setting(self, key: str, value: Any, *, admin_uid: str) -> int:
        """The setting's new version: one more than before (`shared.domain.admin.changed_settings`)."""
        return int(
            self._sql.scalar(
                """INSERT INTO app_config (key, value, updated_by) VALUES (:key, CAST(:value AS jsonb), :by)
                   ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, version = app_config.version + 1,
                       updated_at = now(), updated_by = EXCLUDED.updated_by
                   RETURNING version""",
                {"key": key, "value": json.dumps(value), "by": admin_uid},
            )
        )

    def tiers(self) -> list[ListedTier]:
        rows = self._sql.all(
            "SELECT id, duration_s, price, active, sort_order FROM pricing_tiers ORDER BY sort_order, duration_s"
        )
        return [ListedTier(**row) for row in rows]

    def lock_tier(self, tier_id: str) -> TierPrice | None:
        row = self._sql.one(
            "SELECT id, duration_s, price, active FROM pricing_tiers WHERE id = :id FOR UPDATE", {"id": tier_id}
        )
        return TierPrice(**row) if row else None

    def save_tier(self, tier: TierPrice) -> None:
        """A new tier is listed last."""
        self._sql.execute(
            """INSERT INTO pricing_tiers (id, duration_s, price, active, sort_order)
               VALUES (:id, :duration_s, :price, :active,
                       (SELECT COALESCE(max(sort_order), 0) + 1 FROM pricing_tiers))
               ON CONFLICT (id) DO UPDATE SET duration_s = EXCLUDED.duration_s, price = EXCLUDED.price,
                   active = EXCLUDED.active, updated_at = now()""",
            {"id": tier.id, "duration_s": tier.duration_s, "price": tier.price, "active": tier.active},
        )
