"""The control center's accounts: clients (search, suspend) and admins (grant, revoke, on duty).

Every change is written to audit_log with the admin's uid, the target, and the old and new values.
"""

from __future__ import annotations

from functions._http import Call, endpoint
from shared import bootstrap
from shared.domain.roles import Role
from shared.schemas import Empty
from shared.schemas.admin import (
    AdminAccount,
    AdminAction,
    AdminClient,
    AdminPage,
    ClientPage,
    ClientQuery,
    SuspendClient,
)
from shared.services import admin_admins as admins
from shared.services import admin_users as clients


@endpoint(get=ClientQuery, post=SuspendClient, roles={Role.ADMIN}, response=ClientPage, check_revoked=True)
def admin_users(call: Call[ClientQuery | SuspendClient]) -> ClientPage:
    """GET: clients, newest first (search, suspended filter, pages). POST: suspend or unsuspend one client."""
    body = call.body
    if isinstance(body, SuspendClient):
        if body.action == "suspend":
            row = clients.suspend(bootstrap.ports(), bootstrap.firebase_auth(), bootstrap.identities(), call.caller.uid,
                                  str(body.client_id), reason=body.reason)  # fmt: skip
        else:
            row = clients.unsuspend(
                bootstrap.database(), bootstrap.identities(), call.caller.uid, str(body.client_id), body.reason
            )
        return ClientPage(clients=[AdminClient.model_validate(row)])
    rows, cursor = clients.list_clients(bootstrap.database(), search=body.q, suspended=body.suspended,
                                        cursor=body.cursor, limit=body.limit)  # fmt: skip
    return ClientPage(clients=[AdminClient.model_validate(row) for row in rows], next_cursor=cursor)


@endpoint(get=Empty, post=AdminAction, roles={Role.ADMIN}, response=AdminPage, check_revoked=True)
def admin_admins(call: Call[Empty | AdminAction]) -> AdminPage:
    """GET: the admins. POST: grant the role to an email/password account, revoke another admin's, or set whether an
    admin is on duty (pushed crisis alerts)."""
    if isinstance(call.body, AdminAction):
        action = call.body.root
        if action.action == "grant":
            row = admins.grant(
                bootstrap.database(), bootstrap.firebase_auth(), bootstrap.identities(), call.caller.uid, action.email
            )
        elif action.action == "revoke":
            row = admins.revoke(
                bootstrap.database(),
                bootstrap.firebase_auth(),
                bootstrap.identities(),
                call.caller.uid,
                str(action.admin_id),
            )
        else:
            row = admins.set_on_duty(bootstrap.database(), call.caller.uid, str(action.admin_id), action.on_duty)
        return AdminPage(admins=[AdminAccount.model_validate(row)])
    return AdminPage(admins=[AdminAccount.model_validate(row) for row in admins.list_admins(bootstrap.database())])
