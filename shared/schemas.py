"""Request and response models of the HTTP functions; the OpenAPI document is generated from these."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, model_validator

from shared.domain.accounts import InvalidName, clean_display_name


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


def _display_name(value: str) -> str:
    try:
        return clean_display_name(value)
    except InvalidName as exc:
        raise ValueError(str(exc)) from exc


DisplayName = Annotated[str, AfterValidator(_display_name)]


class ClientRegister(Model):
    display_name: DisplayName
    # After a 409 account_exists and a fresh sign-in: take the existing profile over.
    force: bool = False


class ClientProfileUpdate(Model):
    display_name: DisplayName | None = None
    anonymous: bool | None = None

    @model_validator(mode="after")
    def _something_to_change(self) -> ClientProfileUpdate:
        if self.display_name is None and self.anonymous is None:
            raise ValueError("send display_name and/or anonymous")
        return self


class ClientProfile(BaseModel):
    client_id: str
    display_name: str
    anonymous: bool
    # What mitras see when anonymity applies.
    alias: str
    phone: str | None
    email: str | None
    created_at: datetime


class MitraProfile(BaseModel):
    mitra_id: str
    display_name: str
    phone: str
    presence: str
