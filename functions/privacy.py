"""A client's data on request (export, deletion) and the retention of message texts."""

from __future__ import annotations

from pydantic import BaseModel

from functions._events import pubsub_handler
from functions._http import Call, endpoint
from shared import bootstrap
from shared.domain.roles import Role
from shared.schemas.privacy import ClientData, ClientDataQuery, DeleteClientData
from shared.services import privacy

# A scheduled sweep stops well before the function's timeout; the next run picks up the rest.
_SWEEP_BUDGET_S = 45


class RetentionTick(BaseModel):
    pass


@endpoint(get=ClientDataQuery, post=DeleteClientData, roles={Role.ADMIN}, response=ClientData, check_revoked=True)
def admin_client_data(call: Call[ClientDataQuery | DeleteClientData]) -> ClientData:
    """GET: everything held about one client, as JSON. POST: delete them (what remains is returned)."""
    client_id = str(call.body.client_id)
    if isinstance(call.body, DeleteClientData):
        data = privacy.delete(
            bootstrap.ports(), bootstrap.firebase_auth(), bootstrap.identities(), call.caller.uid, client_id
        )
    else:
        data = privacy.export(bootstrap.ports(), client_id)
    return ClientData.model_validate(data)


@pubsub_handler(RetentionTick)
def retention_sweep(_tick: RetentionTick, _message_id: str) -> None:
    """Scheduled daily: erase the message texts of sessions closed longer ago than `retention_days`."""
    privacy.retention_sweep(bootstrap.ports(), budget_s=_SWEEP_BUDGET_S)
