"""Crisis signals: the control center's alerts (the check behind every client message is on_chat_message)."""

from __future__ import annotations

from functions._http import Call, endpoint
from shared import bootstrap
from shared.domain.roles import Role
from shared.schemas.safety import AcknowledgeAlert, AdminAlert, AlertPage, AlertQuery
from shared.services import admin_alerts as alerts


@endpoint(get=AlertQuery, post=AcknowledgeAlert, roles={Role.ADMIN}, response=AlertPage, check_revoked=True)
def admin_alerts(call: Call[AlertQuery | AcknowledgeAlert]) -> AlertPage:
    """GET: crisis alerts, newest first (acknowledged or not, pages). POST: acknowledge one, with an optional note."""
    body = call.body
    if isinstance(body, AcknowledgeAlert):
        row = alerts.acknowledge(bootstrap.ports(), call.caller.uid, str(body.alert_id), body.note)
        return AlertPage(alerts=[AdminAlert.model_validate(row)])
    acknowledged = None if body.status is None else body.status == "acknowledged"
    rows, cursor = alerts.list_alerts(bootstrap.database(), acknowledged=acknowledged, cursor=body.cursor,
                                      limit=body.limit)  # fmt: skip
    return AlertPage(alerts=[AdminAlert.model_validate(row) for row in rows], next_cursor=cursor)
