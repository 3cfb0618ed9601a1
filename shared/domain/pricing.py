"""Prices: what a tier costs and how long it lasts, and what a client can buy now."""

from __future__ import annotations

from dataclasses import dataclass, field

from shared.domain.billing import Balance, CreditedBack, credit_back_cover


@dataclass(frozen=True)
class PricingTier:
    id: str
    duration_s: int
    price: int

    @property
    def minutes(self) -> int:
        """Whole minutes as shown to people; durations below a minute exist only in tests."""
        return self.duration_s // 60


@dataclass(frozen=True)
class Quote:
    """What the client app shows before "Mulai Curhat"."""

    tiers: list[PricingTier]
    free_trial_available: bool
    free_trial_minutes: int
    # Paid sessions the client has not used yet.
    credits: list[Balance]
    # The unused time of sessions an admin ended, credited back.
    credited_back: list[CreditedBack] = field(default_factory=list)
    # Credited-back rupiah not yet spent (shared.domain.billing.credit_back_cover spends it at checkout).
    credit_back_balance: int = 0

    def charge(self, tier: PricingTier) -> int:
        """What a checkout of the tier would charge through Xendit now."""
        return tier.price - credit_back_cover(self.credit_back_balance, tier.price)


def free_trial_available(*, offered: bool, used: bool) -> bool:
    """One free trial per client, while the operation offers it (setting `free_trial_enabled`)."""
    return offered and not used
