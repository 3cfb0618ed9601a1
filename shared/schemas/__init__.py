"""Request and response models of the HTTP functions; the OpenAPI document is generated from these."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, RootModel, ValidationError, model_validator

from shared.domain import texts
from shared.domain.accounts import NAME_MAX, NAME_MIN, InvalidName, clean_display_name


def invalid_fields(exc: ValidationError) -> list[dict[str, str]]:
    """Each refused field of a body, by its dotted path, for a 400 `invalid_request`."""
    return [
        {"field": ".".join(str(part) for part in error["loc"]) or "body", "problem": error["msg"]}
        for error in exc.errors()
    ]


class Model(BaseModel):
    """A request body or query. Unknown fields are ignored, not refused: an older backend must keep serving a newer
    app that sends an optional field it does not know yet (docs/contract.md, Compatibility). The HTTP layer logs
    their names (`unknown_fields`), never their values. A misspelt required field is still a 400: it is missing."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=False, defer_build=True)


def unknown_fields(parsed: BaseModel, raw: object, prefix: str = "") -> list[str]:
    """The dotted names of what `raw` (the JSON object or query that `parsed` was validated from) carried that the
    model has no field for, nested objects and lists included."""
    if isinstance(parsed, RootModel):
        return _unknown_within(parsed.root, raw, prefix)
    if not isinstance(raw, dict):
        return []
    fields = type(parsed).model_fields
    known = {name: name for name in fields} | {field.alias: name for name, field in fields.items() if field.alias}
    found: list[str] = []
    for key, value in raw.items():
        name = known.get(key)
        if name is None:
            found.append(f"{prefix}{key}")
        else:
            found += _unknown_within(getattr(parsed, name, None), value, f"{prefix}{key}.")
    return found


def _unknown_within(parsed: object, raw: object, prefix: str) -> list[str]:
    if isinstance(parsed, BaseModel):
        return unknown_fields(parsed, raw, prefix)
    if isinstance(parsed, list | tuple) and isinstance(raw, list):
        return [
            name
            for index, (item, sent) in enumerate(zip(parsed, raw, strict=False))
            for name in _unknown_within(item, sent, f"{prefix}{index}.")
        ]
    return []


class Reply(BaseModel):
    """A reply body (or a part of one).

    Replies, request models (`Model`), Firestore documents and push payloads are built on first use (pydantic's
    `defer_build`): a cold instance builds the few its own function uses, not every model its modules define
    (`python -m bench cold_reply` shows the cost). Concurrent first uses are safe: pydantic builds under a lock."""

    model_config = ConfigDict(defer_build=True)


class Empty(Model):
    pass


class ErrorBody(Reply):
    code: str
    message: str


class ErrorEnvelope(Reply):
    error: ErrorBody


class Tier(Reply):
    id: str
    minutes: int
    duration_s: int
    price: int
    # What a checkout of this tier would charge through Xendit now: the price less the credited-back balance
    # (`PricingQuote.credit_back_balance`); 0 when the balance pays it whole.
    charge: int | None = None


class FreeTrial(Reply):
    available: bool
    minutes: int


class CreditBalance(Reply):
    """Paid sessions the client has not used yet: `pairing_request` with this `tier_id` uses one."""

    tier_id: str
    minutes: int
    duration_s: int
    available: int


class CreditedBack(Reply):
    """The unused time of a session an admin ended, credited back to the client (`admin_session_end` with
    `credit_unused`): its value in rupiah, pro rata of what they paid. It adds to `credit_back_balance`, which the
    next `billing_checkout` spends before Xendit."""

    session_id: str
    minutes: int
    unused_s: int
    amount: int
    credited_at: datetime


class PricingQuote(Reply):
    tiers: list[Tier]
    free_trial: FreeTrial
    credits: list[CreditBalance]
    credited_back: list[CreditedBack] = Field(default_factory=list)
    # Credited-back rupiah not yet spent: what was credited back, less what checkouts used, plus what came back
    # from checkouts that expired or were refunded.
    credit_back_balance: int = 0
    currency: str = "IDR"


def _display_name(value: str) -> str:
    try:
        return clean_display_name(value)
    except InvalidName as exc:
        raise ValueError(str(exc)) from exc


def _locale(value: str) -> str:
    if not texts.is_locale(value):
        raise ValueError(f"one of {', '.join(texts.locales())}")
    return value


Locale = Annotated[
    str,
    AfterValidator(_locale),
    Field(
        description="The language the backend writes in for this person: a file of shared/domain/texts "
        "(`id` Indonesian, the default; `en` English).",
        examples=["id", "en"],
    ),
]


DisplayName = Annotated[
    str,
    AfterValidator(_display_name),
    Field(
        description=f"{NAME_MIN}-{NAME_MAX} characters once trimmed (Unicode NFC), no control or invisible characters.",
        json_schema_extra={"x-max-length": NAME_MAX},
    ),
]


class ClientRegister(Model):
    display_name: DisplayName
    # After a 409 account_exists and a fresh sign-in: take the existing profile over.
    force: bool = False


class ClientProfileUpdate(Model):
    display_name: DisplayName | None = None
    anonymous: bool | None = None
    # Pushes to this client may show the beginning of a message (off by default: a lock screen is public).
    push_previews: bool | None = None
    locale: Locale | None = None

    @model_validator(mode="after")
    def _something_to_change(self) -> ClientProfileUpdate:
        if (self.display_name, self.anonymous, self.push_previews, self.locale) == (None, None, None, None):
            raise ValueError("send display_name, anonymous, push_previews and/or locale")
        return self


class ClientProfile(Reply):
    client_id: str
    display_name: str
    anonymous: bool
    # What mitras see when anonymity applies.
    alias: str
    phone: str | None
    email: str | None
    created_at: datetime
    # Whether this client's pushes show the beginning of a message (default off).
    push_previews: bool
    # Since a takeover by this login, sessions started before this are hidden from it until the previous login
    # confirms (`client_history_confirm`); null: every session of the profile is this login's.
    history_from: datetime | None
    # The language of this client's pushes, system messages and receipts (`id` until chosen).
    locale: str = "id"


class HistoryConfirmed(Reply):
    """The previous login confirmed: the new login reads the profile's conversations from before the takeover."""

    client_id: str
    confirmed: bool = True


class MitraLogin(Model):
    """Optional: the language of this mitra's pushes (kept until a later sign-in names another)."""

    locale: Locale | None = None


class MitraProfile(Reply):
    mitra_id: str
    display_name: str
    phone: str
    presence: str
    # The language of this mitra's pushes (`id` until chosen at `mitra_login`).
    locale: str = "id"


class MitraStatusChange(Model):
    status: Literal["online", "offline"]


class MitraStatus(Reply):
    status: Literal["online", "offline"]
    changed: bool


class HeartbeatReply(Reply):
    status: Literal["online", "offline"]
    next_heartbeat_s: int | None = Field(
        default=None,
        description="While online: send the next heartbeat within this many seconds (longer as more mitras are "
        "online; three missed beats take the mitra offline). Null when offline: go online again first.",
    )


class PairingRequestBody(Model):
    """Exactly one of `tier_id` (a paid tier, paid through billing_checkout first) or `free_trial: true`."""

    tier_id: str | None = Field(default=None, min_length=1, max_length=40)
    free_trial: bool = False
    mitra_id: UUID | None = Field(
        default=None,
        description="A mitra the client had a session with: offered the request alone for `preferred_mitra_first_s`, "
        "then everyone available; 409 `not_a_past_mitra` for any other mitra.",
    )

    @model_validator(mode="after")
    def _one_way_to_pay(self) -> PairingRequestBody:
        if (self.tier_id is None) == (not self.free_trial):
            raise ValueError("send either tier_id or free_trial: true")
        return self


class PairingRequestReply(Reply):
    request_id: str
    status: Literal["searching", "no_mitra"]
    search_deadline: datetime
    estimated_wait_s: int | None = Field(
        default=None,
        description="The median wait of recent matched requests at a similar hour; null: too little history.",
    )
    preferred_mitra_until: datetime | None = Field(
        default=None, description="Asked for a past mitra: offered to them alone until then."
    )


class RequestRef(Model):
    request_id: UUID


class PairingCancelReply(Reply):
    request_id: str
    status: str


class PairingAcceptReply(Reply):
    session_id: str
    request_id: str
    ends_at: datetime


class PairingDeclineReply(Reply):
    request_id: str
    status: Literal["declined"] = "declined"


class DeviceRegister(Model):
    token: str = Field(min_length=20, max_length=4096, pattern=r"^[A-Za-z0-9_:\-\.]+$")
    platform: Literal["android", "ios", "web"]


class DeviceRegistered(Reply):
    registered: bool = True
