"""Who may run the control center (`admin_admins`)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import Field, RootModel

from shared.schemas import Model, Reply


class AdminAccount(Reply):
    admin_id: str
    email: str
    created_at: datetime
    created_by: str | None
    on_duty: bool  # pushed when a client's message raises a crisis signal


class AdminPage(Reply):
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
