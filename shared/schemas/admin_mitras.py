"""The control center's roster of mitras (`admin_mitras`) and their presence history (`admin_mitra_logs`)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import Field, RootModel, model_validator

from shared.schemas import DisplayName, Model, Reply
from shared.schemas.admin_paging import PageQuery, Search

# The same rule as the mitras table's CHECK.
E164 = r"^\+[1-9][0-9]{6,14}$"


class MitraQuery(PageQuery):
    presence: Literal["online", "offline"] | None = None
    active: bool | None = None
    q: Search | None = None


class AdminMitra(Reply):
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
    max_concurrent_clients: int | None = Field(
        default=None, description="The mitra's own maximum of concurrent clients; null: the global setting."
    )


class MitraPage(Reply):
    """GET: one page of the roster. POST: the mitra as the change left it (`next_cursor` null)."""

    mitras: list[AdminMitra]
    next_cursor: str | None = None


class CreateMitra(Model):
    action: Literal["create"]
    phone: str = Field(pattern=E164, description="E.164, e.g. +6281234567890")
    display_name: DisplayName


class UpdateMitra(Model):
    """Send `display_name`, `max_concurrent_clients`, or both (each audited as its own change)."""

    action: Literal["update"]
    mitra_id: UUID
    display_name: DisplayName | None = None
    max_concurrent_clients: int | None = Field(
        default=None,
        ge=1,
        le=20,
        description="The mitra's own maximum of concurrent clients; null: back to the global setting.",
    )

    @model_validator(mode="after")
    def _something_to_change(self) -> UpdateMitra:
        if self.display_name is None and "max_concurrent_clients" not in self.model_fields_set:
            raise ValueError("send display_name or max_concurrent_clients")
        return self


class SetMitraActive(Model):
    """Deactivation: offline at once, tokens revoked, open offers withdrawn; running sessions go on."""

    action: Literal["deactivate", "reactivate"]
    mitra_id: UUID


class MitraAction(RootModel[Annotated[CreateMitra | UpdateMitra | SetMitraActive, Field(discriminator="action")]]):
    pass


class MitraLogQuery(Model):
    mitra_id: UUID
    from_date: date | None = Field(default=None, description="Jakarta day, included; default: 6 days before to_date")
    to_date: date | None = Field(default=None, description="Jakarta day, included; default: today")


class StatusChange(Reply):
    at: datetime
    from_status: str
    to_status: str
    reason: str


class OnlineDay(Reply):
    day: date
    online_s: int


class MitraLogs(Reply):
    mitra_id: str
    from_date: date
    to_date: date
    changes: list[StatusChange]
    online_by_day: list[OnlineDay]
    total_online_s: int


class RelinkQuery(PageQuery):
    status: Literal["pending", "approved", "refused"] | None = None


class AdminMitraRelink(Reply):
    """A sign-in asking to become a mitra's: the mitra's phone signed in from another Firebase account."""

    relink_id: str
    mitra_id: str
    mitra_name: str
    phone: str
    # The Firebase uid asking, and the one the mitra signed in with when it asked.
    firebase_uid: str
    previous_uid: str | None
    status: str
    requested_at: datetime
    decided_at: datetime | None
    decided_by: str | None
    note: str | None


class RelinkPage(Reply):
    """GET: one page of requests, newest first. POST: the request as the decision left it (`next_cursor` null)."""

    relinks: list[AdminMitraRelink]
    next_cursor: str | None = None


class DecideRelink(Model):
    """approve: the mitra signs in with the new account from its next `mitra_login`, the previous one is signed out
    everywhere; refuse: that sign-in stays refused (403 `relink_refused`)."""

    action: Literal["approve", "refuse"]
    relink_id: UUID
    note: str | None = Field(default=None, min_length=1, max_length=500)
