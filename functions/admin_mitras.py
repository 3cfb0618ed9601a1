"""The control center's roster of mitras: listing, creating, renaming, deactivating, and presence history. Every
change is in the audit log with its old and new value."""

from __future__ import annotations

from functions._http import Call, endpoint
from shared import bootstrap
from shared.domain.admin import MitraOnRoster
from shared.domain.roles import Role
from shared.schemas.admin_mitras import (
    AdminMitra,
    AdminMitraRelink,
    CreateMitra,
    DecideRelink,
    MitraAction,
    MitraLogQuery,
    MitraLogs,
    MitraPage,
    MitraQuery,
    RelinkPage,
    RelinkQuery,
    SetMitraActive,
    UpdateMitra,
)
from shared.services.admin_mitras import (
    create,
    deactivate,
    decide_relink,
    list_mitras,
    list_relinks,
    reactivate,
    rename,
    set_capacity,
    status_history,
)


@endpoint(
    get=MitraQuery, post=MitraAction, roles={Role.ADMIN}, response=MitraPage, check_revoked=True, errors={404, 409}
)
def admin_mitras(call: Call[MitraQuery | MitraAction]) -> MitraPage:
    """GET: the roster (filter, search, pages). POST: create, update, deactivate or reactivate one mitra."""
    body = call.body
    if isinstance(body, MitraAction):
        changed = _change(call.caller.uid, body.root)
        return MitraPage(mitras=[AdminMitra.model_validate(changed, from_attributes=True)])
    mitras, cursor = list_mitras(
        bootstrap.ports(),
        presence=body.presence,
        active=body.active,
        search=body.q,
        cursor=body.cursor,
        limit=body.limit,
    )
    return MitraPage(mitras=[AdminMitra.model_validate(m, from_attributes=True) for m in mitras], next_cursor=cursor)


def _change(admin_uid: str, action: CreateMitra | UpdateMitra | SetMitraActive) -> MitraOnRoster:
    ports = bootstrap.ports()
    if isinstance(action, CreateMitra):
        return create(ports, admin_uid, phone=action.phone, display_name=action.display_name)
    mitra_id = str(action.mitra_id)
    if isinstance(action, UpdateMitra):
        changed = None
        if action.display_name is not None:
            changed = rename(ports, admin_uid, mitra_id, action.display_name)
        if "max_concurrent_clients" in action.model_fields_set:
            changed = set_capacity(ports, admin_uid, mitra_id, action.max_concurrent_clients)
        assert changed is not None
        return changed
    if action.action == "deactivate":
        return deactivate(ports, bootstrap.firebase_auth(), bootstrap.identities(), admin_uid, mitra_id)
    return reactivate(ports, admin_uid, mitra_id)


@endpoint(get=MitraLogQuery, roles={Role.ADMIN}, response=MitraLogs, errors={404})
def admin_mitra_logs(call: Call[MitraLogQuery]) -> MitraLogs:
    """One mitra's online/offline transitions over Jakarta days, with the time online on each day."""
    body = call.body
    history = status_history(bootstrap.ports(), str(body.mitra_id), body.from_date, body.to_date)
    return MitraLogs.model_validate(history, from_attributes=True)


@endpoint(
    get=RelinkQuery, post=DecideRelink, roles={Role.ADMIN}, response=RelinkPage, check_revoked=True, errors={404, 409}
)
def admin_mitra_relinks(call: Call[RelinkQuery | DecideRelink]) -> RelinkPage:
    """GET: mitras' phones signing in from another Firebase account, newest first. POST: approve or refuse one."""
    body = call.body
    if isinstance(body, DecideRelink):
        decided = decide_relink(
            bootstrap.ports(),
            bootstrap.firebase_auth(),
            bootstrap.identities(),
            call.caller.uid,
            str(body.relink_id),
            approve=body.action == "approve",
            note=body.note,
        )
        return RelinkPage(relinks=[AdminMitraRelink.model_validate(decided, from_attributes=True)])
    relinks, cursor = list_relinks(bootstrap.ports(), status=body.status, cursor=body.cursor, limit=body.limit)
    return RelinkPage(
        relinks=[AdminMitraRelink.model_validate(r, from_attributes=True) for r in relinks], next_cursor=cursor
    )
