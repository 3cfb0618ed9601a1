"""The control center's clients: finding them, suspending and reinstating one (audited)."""

from __future__ import annotations

from functions._http import Call, endpoint
from shared import bootstrap
from shared.domain.roles import Role
from shared.schemas.admin_users import AdminClient, ClientPage, ClientQuery, SuspendClient
from shared.services.admin_users import list_clients, suspend, unsuspend


@endpoint(
    get=ClientQuery, post=SuspendClient, roles={Role.ADMIN}, response=ClientPage, check_revoked=True, errors={404}
)
def admin_users(call: Call[ClientQuery | SuspendClient]) -> ClientPage:
    """GET: clients, newest first (search, suspended filter, pages). POST: suspend or unsuspend one client."""
    body = call.body
    if isinstance(body, SuspendClient):
        client_id, ports, identities = str(body.client_id), bootstrap.ports(), bootstrap.identities()
        if body.action == "suspend":
            changed = suspend(
                ports, bootstrap.firebase_auth(), identities, call.caller.uid, client_id, reason=body.reason
            )
        else:
            changed = unsuspend(ports, identities, call.caller.uid, client_id, reason=body.reason)
        return ClientPage(clients=[AdminClient.model_validate(changed, from_attributes=True)])
    clients, cursor = list_clients(
        bootstrap.ports(), search=body.q, suspended=body.suspended, cursor=body.cursor, limit=body.limit
    )
    shown = [AdminClient.model_validate(client, from_attributes=True) for client in clients]
    return ClientPage(clients=shown, next_cursor=cursor)
