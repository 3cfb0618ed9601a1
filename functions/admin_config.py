"""The control center's settings and prices; every change is versioned and in the audit log with its old and new
value."""

from __future__ import annotations

from functions._http import Call, endpoint
from shared import bootstrap
from shared.domain.admin import TierPrice
from shared.domain.roles import Role
from shared.schemas import Empty
from shared.schemas.admin_config import ConfigChange, ConfigView
from shared.services.admin_config import change, read


@endpoint(get=Empty, post=ConfigChange, roles={Role.ADMIN}, response=ConfigView, check_revoked=True)
def admin_config(call: Call[Empty | ConfigChange]) -> ConfigView:
    """GET: every setting with its version, and the pricing tiers. POST: change some; each change is audited."""
    body = call.body
    if isinstance(body, ConfigChange):
        settings = body.settings.model_dump(exclude_unset=True, mode="json")
        tiers = [TierPrice(**tier.model_dump()) for tier in body.tiers]
        view = change(bootstrap.ports(), call.caller.uid, settings, tiers)
    else:
        view = read(bootstrap.ports())
    return ConfigView.model_validate(view, from_attributes=True)
