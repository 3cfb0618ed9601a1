"""The control center's roster of mitras: listing, creating, renaming, deactivating, and presence history.

Every change is written to audit_log with the admin's uid, the target, and the old and new values.
"""

from __future__ import annotations

from functions._http import Call, endpoint
from shared import bootstrap
from shared.adapters.postgres.database import Row
from shared.domain.roles import Role
from shared.schemas.admin import (
    AdminMitra,
    CreateMitra,
    MitraAction,
    MitraLogQuery,
    MitraLogs,
    MitraPage,
    MitraQuery,
    SetMitraActive,
    UpdateMitra,
)
from shared.services import admin_mitras as roster


@endpoint(get=MitraQuery, post=MitraAction, roles={Role.ADMIN}, response=MitraPage, check_revoked=True)
def admin_mitras(call: Call[MitraQuery | MitraAction]) -> MitraPage:
    """GET: the roster (filter, search, pages). POST: create, update, deactivate or reactivate one mitra."""
    if isinstance(call.body, MitraAction):
        return MitraPage(mitras=[AdminMitra.model_validate(_change_mitra(call.caller.uid, call.body.root))])
    rows, cursor = roster.list_mitras(
        bootstrap.database(), presence=call.body.presence, active=call.body.active, search=call.body.q,
        cursor=call.body.cursor, limit=call.body.limit,
    )  # fmt: skip
    return MitraPage(mitras=[AdminMitra.model_validate(row) for row in rows], next_cursor=cursor)


def _change_mitra(admin_uid: str, action: CreateMitra | UpdateMitra | SetMitraActive) -> Row:
    if isinstance(action, CreateMitra):
        return roster.create(bootstrap.database(), admin_uid, phone=action.phone, display_name=action.display_name)
    if isinstance(action, UpdateMitra):
        assert action.display_name is not None
        return roster.rename(bootstrap.ports(), admin_uid, str(action.mitra_id), action.display_name)
    if action.action == "deactivate":
        return roster.deactivate(
            bootstrap.ports(), bootstrap.firebase_auth(), bootstrap.identities(), admin_uid, str(action.mitra_id)
        )
    return roster.reactivate(bootstrap.database(), admin_uid, str(action.mitra_id))


@endpoint(get=MitraLogQuery, roles={Role.ADMIN}, response=MitraLogs)
def admin_mitra_logs(call: Call[MitraLogQuery]) -> MitraLogs:
    """One mitra's online/offline transitions over Jakarta days, with the time online on each day."""
    history = roster.status_history(
        bootstrap.database(), str(call.body.mitra_id), call.body.from_date, call.body.to_date
    )
    return MitraLogs.model_validate(history)
