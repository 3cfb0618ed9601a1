"""The control center's settings and prices: read them all, change some, every change versioned and audited."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from typing import Any, Protocol

from pydantic import ValidationError

from shared.domain import admin
from shared.domain.admin import ListedTier, StoredSetting, TierPrice
from shared.domain.config import AppConfig
from shared.errors import InvalidRequest
from shared.services.ports import Ports
from shared.services.unit_of_work import UnitOfWork


class AdminConfigRepository(Protocol):
    """What the control center's settings need from storage (shared/adapters/postgres/admin_config.py)."""

    def settings(self, *, lock: bool = False) -> dict[str, StoredSetting]: ...

    def set_setting(self, key: str, value: Any, *, admin_uid: str) -> int: ...

    def tiers(self) -> list[ListedTier]: ...

    def lock_tier(self, tier_id: str) -> TierPrice | None: ...

    def save_tier(self, tier: TierPrice) -> None: ...


def read(ports: Ports) -> dict[str, Any]:
    with ports.uow() as uow:
        return _view(uow)


def change(ports: Ports, admin_uid: str, settings: dict[str, Any], tiers: Sequence[TierPrice]) -> dict[str, Any]:
    """`settings` holds only the keys to change, each already checked against AppConfig's types and ranges; each key
    whose value really changes (`shared.domain.admin.changed_settings`) gets version + 1 and an audit row with its
    old and new value, as does each tier that changes, in one transaction."""
    with ports.uow() as uow:
        stored = uow.admin_config.settings(lock=True)
        current = _config(stored).model_dump(mode="json")
        _check_together(current, settings)
        for key, value in admin.changed_settings(stored, settings).items():
            version = uow.admin_config.set_setting(key, value, admin_uid=admin_uid)
            uow.audit.record(
                actor_uid=admin_uid,
                actor_role="admin",
                action="config.set",
                target=key,
                old={"value": current[key], "version": version - 1},
                new={"value": value, "version": version},
            )
        for tier in tiers:
            _set_tier(uow, admin_uid, tier)
        view = _view(uow)
        uow.commit()
    return view


def _check_together(current: dict[str, Any], settings: dict[str, Any]) -> None:
    """Each value was checked on its own when the request was parsed; this checks the settings as a whole."""
    try:
        AppConfig.model_validate({**current, **settings})
    except ValidationError as exc:
        fields = [
            {"field": ".".join(["settings", *map(str, error["loc"])]), "problem": error["msg"]}
            for error in exc.errors()
        ]
        raise InvalidRequest("these settings do not go together", fields=fields) from exc


def _set_tier(uow: UnitOfWork, admin_uid: str, tier: TierPrice) -> None:
    before = uow.admin_config.lock_tier(tier.id)
    if not admin.tier_changed(before, tier):
        return
    uow.admin_config.save_tier(tier)
    uow.audit.record(
        actor_uid=admin_uid,
        actor_role="admin",
        action="pricing_tier.set",
        target=tier.id,
        old=asdict(before) if before else None,
        new=asdict(tier),
    )


def _config(stored: dict[str, StoredSetting]) -> AppConfig:
    return AppConfig.from_rows({key: setting.value for key, setting in stored.items()})


def _view(uow: UnitOfWork) -> dict[str, Any]:
    stored = uow.admin_config.settings()
    return {
        "settings": _config(stored),
        "versions": {key: admin.version_of(stored.get(key)) for key in AppConfig.model_fields},
        "tiers": uow.admin_config.tiers(),
    }
