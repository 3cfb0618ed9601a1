"""Reading the control center's settings from PostgreSQL."""

from __future__ import annotations

from shared.adapters.db import Tx
from shared.domain.config import AppConfig


def load_config(tx: Tx) -> AppConfig:
    """pg8000 hands jsonb back already decoded."""
    return AppConfig.from_rows({row["key"]: row["value"] for row in tx.all("SELECT key, value FROM app_config")})
