"""Prices: what a tier costs and how long it lasts."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PricingTier:
    id: str
    duration_s: int
    price: int

    @property
    def minutes(self) -> int:
        """Whole minutes as shown to people; durations below a minute exist only in tests."""
        return self.duration_s // 60
