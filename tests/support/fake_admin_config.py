"""The control center's settings and prices in memory: the promises of shared/adapters/postgres/admin_config.py.
A setting changed here is what every other use case's `uow.settings.load()` reads next."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from shared.domain.admin import ListedTier, StoredSetting, TierPrice
from shared.domain.config import AppConfig

if TYPE_CHECKING:
    from tests.support.fakes import FakeDatabase


class FakeAdminConfigRepository:
    def __init__(self, db: FakeDatabase) -> None:
        self._db = db

    def settings(self, *, lock: bool = False) -> dict[str, StoredSetting]:
        return {key: StoredSetting(key=key, **row) for key, row in sorted(self._db.table("app_config").items())}

    def set_setting(self, key: str, value: Any, *, admin_uid: str) -> int:
        stored = self._db.table("app_config")
        version = stored[key]["version"] + 1 if key in stored else 1
        stored[key] = {"value": value, "version": version, "updated_at": self._db.now, "updated_by": admin_uid}
        self._db.config = AppConfig.from_rows({k: row["value"] for k, row in stored.items()})
        return int(version)

    def tiers(self) -> list[ListedTier]:
        tiers = sorted(self._db.table("pricing_tiers").values(), key=lambda t: (t["sort_order"], t["duration_s"]))
        return [ListedTier(t["id"], t["duration_s"], t["price"], t["active"], t["sort_order"]) for t in tiers]

    def lock_tier(self, tier_id: str) -> TierPrice | None:
        tier = self._db.table("pricing_tiers").get(tier_id)
        return TierPrice(tier["id"], tier["duration_s"], tier["price"], tier["active"]) if tier else None

    def save_tier(self, tier: TierPrice) -> None:
        tiers = self._db.table("pricing_tiers")
        sort_order = (
            tiers[tier.id]["sort_order"]
            if tier.id in tiers
            else max((t["sort_order"] for t in tiers.values()), default=0) + 1
        )
        tiers[tier.id] = {
            "id": tier.id,
            "duration_s": tier.duration_s,
            "price": tier.price,
            "active": tier.active,
            "sort_order": sort_order,
        }
