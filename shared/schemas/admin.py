"""The control center's request and response models."""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING, Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, RootModel, create_model, model_validator
from pydantic.fields import FieldInfo

from shared.domain.config import AppConfig
from shared.schemas import DisplayName, Model

# The same rule as the mitras table's CHECK.
E164 = r"^\+[1-9][0-9]{6,14}$"
Search = Annotated[str, Field(min_length=1, max_length=80, description="any part of a name, phone or email")]


class PageQuery(Model):
    cursor: str | None = Field(default=None, max_length=300)
    limit: int = Field(default=50, ge=1, le=200)


# -- admin_dashboard -------------------------------------------------------------------------------------------------


class MitraFigures(BaseModel):
    active: int
    online: int
    # Online with a fresh heartbeat and below capacity: would be offered a request now.
    available: int
    # At least one open (active or closing) session.
    busy: int
    at_capacity: int


class RequestFigures(BaseModel):
    total: int
    searching: int
    matched: int
    no_mitra: int
    cancelled: int


class Revenue(BaseModel):
    amount: int
    payments: int
    currency: str = "IDR"


class Dashboard(BaseModel):
    as_of: datetime
    # "Today" is this day in Jakarta.
    day: date
    mitras: MitraFigures
    clients_searching: int
    active_sessions: int
    closing_sessions: int
    sessions_today: int
    requests_today: RequestFigures
    median_wait_s_today: float | None = Field(description="request to match, over today's matched requests")
    no_mitra_rate_today: float | None = Field(description="no_mitra / today's requests that have ended")
    revenue_today: Revenue


# -- admin_mitras ----------------------------------------------------------------------------------------------------


class MitraQuery(PageQuery):
    presence: Literal["online", "offline"] | None = None
    active: bool | None = None
    q: Search | None = None


class AdminMitra(BaseModel):
    mitra_id: str
    display_name: str
    phone: str
    active: bool
    presence: str
    last_heartbeat_at: datetime | None
    open_sessions: int
    # Whether the mitra has signed in at least once (a Firebase account is linked).
    signed_in: bool
    created_at: datetime


class MitraPage(BaseModel):
    """GET: one page of the roster. POST: the mitra as the change left it (`next_cursor` null)."""

    mitras: list[AdminMitra]
    next_cursor: str | None = None


class CreateMitra(Model):
    action: Literal["create"]
    phone: str = Field(pattern=E164, description="E.164, e.g. +6281234567890")
    display_name: DisplayName


class UpdateMitra(Model):
    action: Literal["update"]
    mitra_id: UUID
    display_name: DisplayName | None = None

    @model_validator(mode="after")
    def _something_to_change(self) -> UpdateMitra:
        if self.display_name is None:
            raise ValueError("send display_name")
        return self


class SetMitraActive(Model):
    """Deactivation: offline at once, tokens revoked, open offers withdrawn; running sessions go on."""

    action: Literal["deactivate", "reactivate"]
    mitra_id: UUID


class MitraAction(RootModel[Annotated[CreateMitra | UpdateMitra | SetMitraActive, Field(discriminator="action")]]):
    pass


# -- admin_users -----------------------------------------------------------------------------------------------------


class ClientQuery(PageQuery):
    q: Search | None = None
    suspended: bool | None = None


class AdminClient(BaseModel):
    client_id: str
    display_name: str
    alias: str
    anonymous: bool
    phone: str | None
    email: str | None
    suspended_at: datetime | None
    created_at: datetime


class ClientPage(BaseModel):
    """GET: one page of clients. POST: the client as the change left it (`next_cursor` null)."""

    clients: list[AdminClient]
    next_cursor: str | None = None


class SuspendClient(Model):
    """Suspension: refused everywhere at once, tokens revoked, a searching request cancelled."""

    action: Literal["suspend", "unsuspend"]
    client_id: UUID
    # Kept in the audit log only.
    reason: str | None = Field(default=None, min_length=3, max_length=500)


# -- admin_config ----------------------------------------------------------------------------------------------------


def _every_setting_optional() -> type[BaseModel]:
    """AppConfig's fields with their types and ranges, each left out unless sent: AppConfig stays the one truth."""
    fields = {
        name: (field.annotation, FieldInfo.merge_field_infos(field, default=None))
        for name, field in AppConfig.model_fields.items()
    }
    model: type[BaseModel] = create_model(  # type: ignore[call-overload]
        "SettingsChange", __config__=ConfigDict(extra="forbid"), **fields
    )
    return model


if TYPE_CHECKING:
    SettingsChange = BaseModel
else:
    SettingsChange = _every_setting_optional()


class TierChange(Model):
    """A pricing tier, created or replaced. Credits already paid for keep what they bought."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{1,39}$")
    duration_s: int = Field(ge=300, le=14_400, multiple_of=60)
    price: int = Field(ge=1_000, le=10_000_000, description="IDR")
    active: bool


class ConfigChange(Model):
    settings: SettingsChange = Field(default_factory=SettingsChange)
    tiers: list[TierChange] = Field(default_factory=list, max_length=20)

    @model_validator(mode="after")
    def _something_to_change(self) -> ConfigChange:
        if not self.settings.model_fields_set and not self.tiers:
            raise ValueError("send settings and/or tiers")
        ids = [tier.id for tier in self.tiers]
        if len(ids) != len(set(ids)):
            raise ValueError("each tier once")
        return self


class SettingVersion(BaseModel):
    version: int
    updated_at: datetime | None
    updated_by: str | None


class TierView(BaseModel):
    id: str
    duration_s: int
    price: int
    active: bool
    sort_order: int


class ConfigView(BaseModel):
    settings: AppConfig
    versions: dict[str, SettingVersion]
    tiers: list[TierView]


# -- admin_sessions --------------------------------------------------------------------------------------------------


class SessionQuery(PageQuery):
    status: Literal["active", "closing", "closed"] | None = None
    mitra_id: UUID | None = None
    client_id: UUID | None = None
    from_date: date | None = Field(default=None, description="Jakarta day, included")
    to_date: date | None = Field(default=None, description="Jakarta day, included")


class AdminSession(BaseModel):
    session_id: str
    request_id: str
    status: str
    kind: str
    client_id: str
    client_name: str
    client_alias: str
    mitra_id: str
    mitra_name: str
    started_at: datetime
    ends_at: datetime
    closed_at: datetime | None
    messages: int


class SessionPage(BaseModel):
    """GET: one page of sessions. POST: the session as the reroute left it (`next_cursor` null)."""

    sessions: list[AdminSession]
    next_cursor: str | None = None


class RerouteSession(Model):
    """Move an active session to another available mitra: same session, same history, a new mitra."""

    action: Literal["reroute"]
    session_id: UUID
    mitra_id: UUID


# -- admin_mitra_logs ------------------------------------------------------------------------------------------------


class MitraLogQuery(Model):
    mitra_id: UUID
    from_date: date | None = Field(default=None, description="Jakarta day, included; default: 6 days before to_date")
    to_date: date | None = Field(default=None, description="Jakarta day, included; default: today")


class StatusChange(BaseModel):
    at: datetime
    from_status: str
    to_status: str
    reason: str


class OnlineDay(BaseModel):
    day: date
    online_s: int


class MitraLogs(BaseModel):
    mitra_id: str
    from_date: date
    to_date: date
    changes: list[StatusChange]
    online_by_day: list[OnlineDay]
    total_online_s: int


# -- admin_admins ----------------------------------------------------------------------------------------------------


class AdminAccount(BaseModel):
    admin_id: str
    email: str
    created_at: datetime
    created_by: str | None
    on_duty: bool  # pushed when a client's message raises a crisis signal


class AdminPage(BaseModel):
    admins: list[AdminAccount]


class GrantAdmin(Model):
    """Give the `admin` role to an existing email/password account (self-service sign-ups get no role)."""

    action: Literal["grant"]
    email: str = Field(min_length=3, max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class RevokeAdmin(Model):
    action: Literal["revoke"]
    admin_id: UUID


class SetOnDuty(Model):
    """Whether an admin is pushed crisis alerts (every admin still sees them in `admin_alerts`)."""

    action: Literal["set_on_duty"]
    admin_id: UUID
    on_duty: bool


class AdminAction(RootModel[Annotated[GrantAdmin | RevokeAdmin | SetOnDuty, Field(discriminator="action")]]):
    pass
