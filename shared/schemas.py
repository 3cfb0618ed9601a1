"""Request and response models of the HTTP functions; the OpenAPI document is generated from these."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Model(BaseModel):
    """Unknown fields are refused so a typo in an app is a 400, not silently ignored."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)


class Empty(Model):
    pass


class ErrorBody(BaseModel):
    code: str
    message: str


class ErrorEnvelope(BaseModel):
    error: ErrorBody


class Tier(BaseModel):
    id: str
    minutes: int
    duration_s: int
    price: int


class FreeTrial(BaseModel):
    available: bool
    minutes: int


class PricingQuote(BaseModel):
    tiers: list[Tier]
    free_trial: FreeTrial
    currency: str = "IDR"
