"""Prices the client app shows before "Mulai Curhat"."""

from __future__ import annotations

from functions._http import Call, endpoint
from shared import bootstrap
from shared.domain.roles import Role
from shared.schemas import CreditBalance, CreditedBack, Empty, FreeTrial, PricingQuote, Tier
from shared.services import pricing


@endpoint(get=Empty, roles={Role.CLIENT}, response=PricingQuote)
def pricing_quote(call: Call[Empty]) -> PricingQuote:
    """Active pricing tiers, the client's unused paid sessions, and whether the free trial is still available."""
    found = pricing.quote(bootstrap.ports(), call.caller.participant().account_id)
    return PricingQuote(
        tiers=[
            Tier(id=t.id, minutes=t.minutes, duration_s=t.duration_s, price=t.price, charge=found.charge(t))
            for t in found.tiers
        ],
        free_trial=FreeTrial(available=found.free_trial_available, minutes=found.free_trial_minutes),
        credits=[
            CreditBalance(tier_id=c.tier_id, minutes=c.duration_s // 60, duration_s=c.duration_s, available=c.available)
            for c in found.credits
        ],
        credited_back=[
            CreditedBack(
                session_id=c.session_id,
                minutes=c.unused_s // 60,
                unused_s=c.unused_s,
                amount=c.amount,
                credited_at=c.created_at,
            )
            for c in found.credited_back
        ],
        credit_back_balance=found.credit_back_balance,
    )
