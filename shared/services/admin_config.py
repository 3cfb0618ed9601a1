"""The control center's settings and prices: read them all, change some, every change versioned and audited."""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError

from shared.adapters.postgres.database import Database, Row, Tx
from shared.domain.config import AppConfig
from shared.errors import InvalidRequest
from shared.services import audit


def read(db: Database) -> dict[str, Any]:
    with db.transaction() as tx:
        return _view(tx)


def change(db: Database, admin_uid: str, settings: dict[str, Any], tiers: list[dict[str, Any]]) -> dict[str, Any]:
    """`settings` holds only the keys to change, already checked against AppConfig's types and ranges; each key
    whose value really changes gets version + 1 and an audit row (old and new value), in one transaction."""
    with db.transaction() as tx:
        rows = tx.all("SELECT key, value, version FROM app_config ORDER BY key FOR UPDATE")
        stored = {row["key"]: row for row in rows}
        current = AppConfig.from_rows({key: row["value"] for key, row in stored.items()}).model_dump(mode="json")
        _check_together(current, settings)
        for key, value in settings.items():
            if key not in stored or stored[key]["value"] != value:
                _set(tx, admin_uid, key, old=current[key], new=value)
        for tier in tiers:
            _set_tier(tx, admin_uid, tier)
        return _view(tx)


def _check_together(current: dict[str, Any], settings: dict[str, Any]) -> None:
    """Each value was checked on its own when the request was parsed; this checks the settings as a whole."""
    try:
        AppConfig.model_validate({**current, **settings})
    except ValidationError as exc:
        fields = [{"field": ".".join(["settings", *map(str, error["loc"])]), "problem": error["msg"]}
                  for error in exc.errors()]  # fmt: skip
        raise InvalidRequest("these settings do not go together", fields=fields) from exc


def _set(tx: Tx, admin_uid: str, key: str, *, old: Any, new: Any) -> None:
    version = tx.scalar(
        """INSERT INTO app_config (key, value, updated_by) VALUES (:key, CAST(:value AS jsonb), :by)
           ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, version = app_config.version + 1,
               updated_at = now(), updated_by = EXCLUDED.updated_by
           RETURNING version""",
        {"key": key, "value": json.dumps(new), "by": admin_uid},
    )
    audit.record(tx, actor_uid=admin_uid, actor_role="admin", action="config.set", target=key,
                 old={"value": old, "version": version - 1}, new={"value": new, "version": version})  # fmt: skip


def _set_tier(tx: Tx, admin_uid: str, tier: dict[str, Any]) -> None:
    before = tx.one(
        "SELECT id, duration_s, price, active FROM pricing_tiers WHERE id = :id FOR UPDATE", {"id": tier["id"]}
    )
    if before == tier:
        return
    tx.execute(
        """INSERT INTO pricing_tiers (id, duration_s, price, active, sort_order)
           VALUES (:id, :duration_s, :price, :active, (SELECT COALESCE(max(sort_order), 0) + 1 FROM pricing_tiers))
           ON CONFLICT (id) DO UPDATE SET duration_s = EXCLUDED.duration_s, price = EXCLUDED.price,
               active = EXCLUDED.active, updated_at = now()""",
        tier,
    )
    audit.record(tx, actor_uid=admin_uid, actor_role="admin", action="pricing_tier.set", target=tier["id"],
                 old=before, new=tier)  # fmt: skip


def _view(tx: Tx) -> dict[str, Any]:
    rows = tx.all("SELECT key, value, version, updated_at, updated_by FROM app_config")
    settings = AppConfig.from_rows({row["key"]: row["value"] for row in rows})
    stored: dict[str, Row] = {row["key"]: row for row in rows}
    versions = {
        key: {"version": stored[key]["version"], "updated_at": stored[key]["updated_at"],
              "updated_by": stored[key]["updated_by"]} if key in stored
        else {"version": 0, "updated_at": None, "updated_by": None}
        for key in AppConfig.model_fields
    }  # fmt: skip
    tiers = tx.all(
        "SELECT id, duration_s, price, active, sort_order FROM pricing_tiers ORDER BY sort_order, duration_s"
    )
    return {"settings": settings, "versions": versions, "tiers": tiers}
