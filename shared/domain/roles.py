"""Who may call what."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    CLIENT = "client"
    MITRA = "mitra"
    ADMIN = "admin"
