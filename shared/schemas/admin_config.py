"""The control center's settings and prices (`admin_config`)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field, create_model, model_validator
from pydantic.fields import FieldInfo

from shared.domain.config import AppConfig
from shared.schemas import Model, Reply


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


class SettingVersion(Reply):
    version: int
    updated_at: datetime | None
    updated_by: str | None


class TierView(Reply):
    id: str
    duration_s: int
    price: int
    active: bool
    sort_order: int


class ConfigView(Reply):
    settings: AppConfig
    versions: dict[str, SettingVersion]
    tiers: list[TierView]
