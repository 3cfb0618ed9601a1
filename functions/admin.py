"""The control center's operation: live figures, settings and prices, sessions (and rerouting one).

Every change is written to audit_log with the admin's uid, the target, and the old and new values. The roster of
mitras and the accounts (clients, admins) have modules of their own, so each instance imports only what its
function needs.
"""

from __future__ import annotations

from functions._http import Call, endpoint
from shared import bootstrap
from shared.domain.roles import Role
from shared.schemas import Empty
from shared.schemas.admin import (
    AdminSession,
    ConfigChange,
    ConfigView,
    Dashboard,
    RerouteSession,
    SessionPage,
    SessionQuery,
)
from shared.services import admin_config as settings
from shared.services import admin_dashboard as figures
from shared.services import admin_sessions as sessions


@endpoint(get=Empty, roles={Role.ADMIN}, response=Dashboard)
def admin_dashboard(call: Call[Empty]) -> Dashboard:
    """Live figures: mitras online/busy/at capacity, searches, sessions, today's waits, no_mitra rate, revenue."""
    return Dashboard.model_validate(figures.figures(bootstrap.database()))


@endpoint(get=Empty, post=ConfigChange, roles={Role.ADMIN}, response=ConfigView, check_revoked=True)
def admin_config(call: Call[Empty | ConfigChange]) -> ConfigView:
    """GET: every setting with its version, and the pricing tiers. POST: change some; each change is audited."""
    if isinstance(call.body, ConfigChange):
        view = settings.change(
            bootstrap.database(), call.caller.uid, call.body.settings.model_dump(exclude_unset=True, mode="json"),
            [tier.model_dump() for tier in call.body.tiers],
        )  # fmt: skip
    else:
        view = settings.read(bootstrap.database())
    return ConfigView.model_validate(view)


@endpoint(get=SessionQuery, post=RerouteSession, roles={Role.ADMIN}, response=SessionPage, check_revoked=True)
def admin_sessions(call: Call[SessionQuery | RerouteSession]) -> SessionPage:
    """GET: sessions, newest first (status, mitra, client, Jakarta dates, pages). POST: reroute to another mitra."""
    body = call.body
    if isinstance(body, RerouteSession):
        row = sessions.reroute(bootstrap.ports(), call.caller.uid, str(body.session_id), str(body.mitra_id))
        return SessionPage(sessions=[AdminSession.model_validate(row)])
    rows, cursor = sessions.list_sessions(
        bootstrap.database(), status=body.status, mitra_id=_text(body.mitra_id), client_id=_text(body.client_id),
        first=body.from_date, last=body.to_date, cursor=body.cursor, limit=body.limit,
    )  # fmt: skip
    return SessionPage(sessions=[AdminSession.model_validate(row) for row in rows], next_cursor=cursor)


def _text(value: object | None) -> str | None:
    return None if value is None else str(value)
