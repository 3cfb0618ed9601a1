"""The control center: live figures, mitras, clients, settings and prices, sessions, presence history.

Every change is written to audit_log with the admin's uid, the target, and the old and new values.
"""

from __future__ import annotations

from functions._http import Call, endpoint
from shared.adapters import runtime
from shared.adapters.db import Row
from shared.domain.roles import Role
from shared.schemas import Empty
from shared.schemas.admin import (
    AdminAccount,
    AdminAction,
    AdminClient,
    AdminMitra,
    AdminPage,
    AdminSession,
    ClientPage,
    ClientQuery,
    ConfigChange,
    ConfigView,
    CreateMitra,
    Dashboard,
    MitraAction,
    MitraLogQuery,
    MitraLogs,
    MitraPage,
    MitraQuery,
    RerouteSession,
    SessionPage,
    SessionQuery,
    SetMitraActive,
    SuspendClient,
    UpdateMitra,
)
from shared.services import admin_admins as admins
from shared.services import admin_config as settings
from shared.services import admin_dashboard as figures
from shared.services import admin_mitras as roster
from shared.services import admin_sessions as sessions
from shared.services import admin_users as clients

ADMIN = {Role.ADMIN}


@endpoint(get=Empty, roles=ADMIN, response=Dashboard)
def admin_dashboard(call: Call[Empty]) -> Dashboard:
    """Live figures: mitras online/busy/at capacity, searches, sessions, today's waits, no_mitra rate, revenue."""
    return Dashboard.model_validate(figures.figures(runtime.database()))


@endpoint(get=MitraQuery, post=MitraAction, roles=ADMIN, response=MitraPage, check_revoked=True)
def admin_mitras(call: Call[MitraQuery | MitraAction]) -> MitraPage:
    """GET: the roster (filter, search, pages). POST: create, update, deactivate or reactivate one mitra."""
    if isinstance(call.body, MitraAction):
        return MitraPage(mitras=[AdminMitra.model_validate(_change_mitra(call.caller.uid, call.body.root))])
    rows, cursor = roster.list_mitras(
        runtime.database(), presence=call.body.presence, active=call.body.active, search=call.body.q,
        cursor=call.body.cursor, limit=call.body.limit,
    )  # fmt: skip
    return MitraPage(mitras=[AdminMitra.model_validate(row) for row in rows], next_cursor=cursor)


def _change_mitra(admin_uid: str, action: CreateMitra | UpdateMitra | SetMitraActive) -> Row:
    if isinstance(action, CreateMitra):
        return roster.create(runtime.database(), admin_uid, phone=action.phone, display_name=action.display_name)
    if isinstance(action, UpdateMitra):
        assert action.display_name is not None
        return roster.rename(runtime.ports(), admin_uid, str(action.mitra_id), action.display_name)
    if action.action == "deactivate":
        return roster.deactivate(runtime.ports(), runtime.firebase_auth(), admin_uid, str(action.mitra_id))
    return roster.reactivate(runtime.database(), admin_uid, str(action.mitra_id))


@endpoint(get=ClientQuery, post=SuspendClient, roles=ADMIN, response=ClientPage, check_revoked=True)
def admin_users(call: Call[ClientQuery | SuspendClient]) -> ClientPage:
    """GET: clients, newest first (search, suspended filter, pages). POST: suspend or unsuspend one client."""
    body = call.body
    if isinstance(body, SuspendClient):
        if body.action == "suspend":
            row = clients.suspend(runtime.ports(), runtime.firebase_auth(), call.caller.uid, str(body.client_id),
                                  body.reason)  # fmt: skip
        else:
            row = clients.unsuspend(runtime.database(), call.caller.uid, str(body.client_id), body.reason)
        return ClientPage(clients=[AdminClient.model_validate(row)])
    rows, cursor = clients.list_clients(runtime.database(), search=body.q, suspended=body.suspended,
                                        cursor=body.cursor, limit=body.limit)  # fmt: skip
    return ClientPage(clients=[AdminClient.model_validate(row) for row in rows], next_cursor=cursor)


@endpoint(get=Empty, post=ConfigChange, roles=ADMIN, response=ConfigView, check_revoked=True)
def admin_config(call: Call[Empty | ConfigChange]) -> ConfigView:
    """GET: every setting with its version, and the pricing tiers. POST: change some; each change is audited."""
    if isinstance(call.body, ConfigChange):
        view = settings.change(
            runtime.database(), call.caller.uid, call.body.settings.model_dump(exclude_unset=True, mode="json"),
            [tier.model_dump() for tier in call.body.tiers],
        )  # fmt: skip
    else:
        view = settings.read(runtime.database())
    return ConfigView.model_validate(view)


@endpoint(get=SessionQuery, post=RerouteSession, roles=ADMIN, response=SessionPage, check_revoked=True)
def admin_sessions(call: Call[SessionQuery | RerouteSession]) -> SessionPage:
    """GET: sessions, newest first (status, mitra, client, Jakarta dates, pages). POST: reroute to another mitra."""
    body = call.body
    if isinstance(body, RerouteSession):
        row = sessions.reroute(runtime.ports(), call.caller.uid, str(body.session_id), str(body.mitra_id))
        return SessionPage(sessions=[AdminSession.model_validate(row)])
    rows, cursor = sessions.list_sessions(
        runtime.database(), status=body.status, mitra_id=_text(body.mitra_id), client_id=_text(body.client_id),
        first=body.from_date, last=body.to_date, cursor=body.cursor, limit=body.limit,
    )  # fmt: skip
    return SessionPage(sessions=[AdminSession.model_validate(row) for row in rows], next_cursor=cursor)


@endpoint(get=MitraLogQuery, roles=ADMIN, response=MitraLogs)
def admin_mitra_logs(call: Call[MitraLogQuery]) -> MitraLogs:
    """One mitra's online/offline transitions over Jakarta days, with the time online on each day."""
    history = roster.status_history(runtime.database(), str(call.body.mitra_id), call.body.from_date, call.body.to_date)
    return MitraLogs.model_validate(history)


def _text(value: object | None) -> str | None:
    return None if value is None else str(value)


@endpoint(get=Empty, post=AdminAction, roles=ADMIN, response=AdminPage, check_revoked=True)
def admin_admins(call: Call[Empty | AdminAction]) -> AdminPage:
    """GET: the admins. POST: grant the role to an email/password account, revoke another admin's, or set whether an
    admin is on duty (pushed crisis alerts)."""
    if isinstance(call.body, AdminAction):
        action = call.body.root
        if action.action == "grant":
            row = admins.grant(runtime.database(), runtime.firebase_auth(), call.caller.uid, action.email)
        elif action.action == "revoke":
            row = admins.revoke(runtime.database(), runtime.firebase_auth(), call.caller.uid, str(action.admin_id))
        else:
            row = admins.set_on_duty(runtime.database(), call.caller.uid, str(action.admin_id), action.on_duty)
        return AdminPage(admins=[AdminAccount.model_validate(row)])
    return AdminPage(admins=[AdminAccount.model_validate(row) for row in admins.list_admins(runtime.database())])
