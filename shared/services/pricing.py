"""What a client can buy now: the tiers on sale, the paid sessions they have not used, and the free trial."""

from __future__ import annotations

from typing import Protocol

from shared.domain import pricing as rules
from shared.domain.pricing import PricingTier, Quote
from shared.services.ports import Ports


class PricingRepository(Protocol):
    """What pricing needs from storage (shared/adapters/postgres/pricing.py)."""

    def active_tiers(self) -> list[PricingTier]: ...

    def free_trial_used(self, client_id: str) -> bool: ...


def quote(ports: Ports, client_id: str) -> Quote:
    with ports.uow() as uow:
        config = uow.settings.load()
        tiers = uow.pricing.active_tiers()
        trial_used = uow.pricing.free_trial_used(client_id)
        balances = uow.credits.balances(client_id)
        credited_back = uow.credits.credited_back(client_id)
        credit_back_balance = uow.billing.credit_back_balance(client_id)
    return Quote(
        tiers=tiers,
        free_trial_available=rules.free_trial_available(offered=config.free_trial_enabled, used=trial_used),
        free_trial_minutes=config.free_trial_minutes,
        credits=balances,
        credited_back=credited_back,
        credit_back_balance=credit_back_balance,
    )
