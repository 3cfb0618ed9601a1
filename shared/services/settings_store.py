"""Reading the control center's settings from PostgreSQL."""

from __future__ import annotations

from typing import Any

from shared.adapters.postgres.database import Tx
from shared.domain.config import AppConfig

# Every setting as one jsonb column, for a hot statement to carry along (then `config_from`): the settings cost no
# statement of their own, and are as fresh as the statement that reads them.
CONFIG_COLUMN = "(SELECT jsonb_object_agg(key, value) FROM app_config) AS config"


def load_config(tx: Tx) -> AppConfig:
    """pg8000 hands jsonb back already decoded."""
    return AppConfig.from_rows({row["key"]: row["value"] for row in tx.all("SELECT key, value FROM app_config")})


def config_from(column: dict[str, Any] | None) -> AppConfig:
    """The settings a statement carried in `CONFIG_COLUMN` (NULL when app_config is empty: every default)."""
    return AppConfig.from_rows(column or {})
