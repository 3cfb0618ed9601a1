"""A client's data on request (export, deletion), by an admin or by the client themself, and the retention of
message texts (docs/privacy.md)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from functions._events import pubsub_handler
from functions._http import Call, endpoint
from shared import bootstrap
from shared.domain.privacy import Requester
from shared.domain.roles import Role
from shared.schemas.privacy import ClientData, ClientDataQuery, DeleteClientData, DeleteOwnAccount, OwnDataQuery
from shared.services import privacy

# A scheduled sweep stops well before the function's timeout; the next run picks up the rest.
_SWEEP_BUDGET_S = 45


class RetentionTick(BaseModel):
    pass


@endpoint(
    get=ClientDataQuery,
    post=DeleteClientData,
    roles={Role.ADMIN},
    response=ClientData,
    check_revoked=True,
    errors={404, 409},
)
def admin_client_data(call: Call[ClientDataQuery | DeleteClientData]) -> ClientData:
    """GET: everything held about one client, as JSON (`reason` says why; audited). POST: delete them (what remains
    is returned)."""
    client_id = str(call.body.client_id)
    if isinstance(call.body, DeleteClientData):
        admin = Requester(call.caller.uid, "admin")
        data = privacy.delete(bootstrap.ports(), bootstrap.firebase_auth(), bootstrap.identities(), admin, client_id)
    else:
        admin = Requester(call.caller.uid, "admin", reason=call.body.reason)
        data = privacy.export(bootstrap.ports(), admin, client_id)
    return ClientData.model_validate(data)


@endpoint(get=OwnDataQuery, roles={Role.CLIENT}, response=ClientData, check_revoked=True, errors={404})
def client_data_export(call: Call[OwnDataQuery]) -> ClientData:
    """The signed-in client's own data, as JSON: the same export an admin makes for them (audited)."""
    data = privacy.export(bootstrap.ports(), Requester(call.caller.uid, "client"), _own(call))
    return ClientData.model_validate(data)


@endpoint(post=DeleteOwnAccount, roles={Role.CLIENT}, response=ClientData, check_revoked=True, errors={404, 409})
def client_account_delete(call: Call[DeleteOwnAccount]) -> ClientData:
    """The signed-in client deletes their account: the same deletion an admin makes for them (audited); refused
    (409 `client_busy`) during an open session or search. What remains is returned."""
    data = privacy.delete(
        bootstrap.ports(),
        bootstrap.firebase_auth(),
        bootstrap.identities(),
        Requester(call.caller.uid, "client"),
        _own(call),
    )
    return ClientData.model_validate(data)


def _own(call: Call[Any]) -> str:
    return call.caller.participant().account_id


@pubsub_handler(RetentionTick)
def retention_sweep(_tick: RetentionTick, _message_id: str) -> None:
    """Scheduled daily: erase the message texts of sessions closed longer ago than `retention_days` (and every copy
    of them), and purge published outbox rows older than a week."""
    privacy.retention_sweep(bootstrap.ports(), budget_s=_SWEEP_BUDGET_S)
