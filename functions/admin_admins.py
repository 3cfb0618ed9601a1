"""Who may run the control center: granting and revoking `role: admin`, and who is on duty (audited)."""

from __future__ import annotations

from functions._http import Call, endpoint
from shared import bootstrap
from shared.domain.admin import AdminOnFile
from shared.domain.roles import Role
from shared.schemas import Empty
from shared.schemas.admin_admins import AdminAccount, AdminAction, AdminPage, GrantAdmin, RevokeAdmin, SetOnDuty
from shared.services.admin_admins import grant, list_admins, revoke, set_on_duty


@endpoint(get=Empty, post=AdminAction, roles={Role.ADMIN}, response=AdminPage, check_revoked=True, errors={404, 409})
def admin_admins(call: Call[Empty | AdminAction]) -> AdminPage:
    """GET: the admins. POST: grant the role to an email/password account, revoke another admin's, or set whether an
    admin is on duty (pushed crisis alerts)."""
    if isinstance(call.body, AdminAction):
        admins = [_change(call.caller.uid, call.body.root)]
    else:
        admins = list_admins(bootstrap.ports())
    return AdminPage(admins=[AdminAccount.model_validate(a, from_attributes=True) for a in admins])


def _change(actor_uid: str, action: GrantAdmin | RevokeAdmin | SetOnDuty) -> AdminOnFile:
    ports = bootstrap.ports()
    if isinstance(action, GrantAdmin):
        return grant(ports, bootstrap.firebase_auth(), bootstrap.identities(), actor_uid, action.email)
    if isinstance(action, RevokeAdmin):
        return revoke(ports, bootstrap.firebase_auth(), bootstrap.identities(), actor_uid, str(action.admin_id))
    return set_on_duty(ports, actor_uid, str(action.admin_id), action.on_duty)
