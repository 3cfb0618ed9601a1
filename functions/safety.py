"""Crisis signals: the control center's alerts (the check behind every client message is on_chat_message)."""

from __future__ import annotations

from functions._http import Call, endpoint
from shared import bootstrap
from shared.domain.roles import Role
from shared.schemas.safety import AcknowledgeAlert, AdminAlert, AlertPage, AlertQuery
from shared.services import safety


@endpoint(
    get=AlertQuery, post=AcknowledgeAlert, roles={Role.ADMIN}, response=AlertPage, check_revoked=True, errors={404}
)
def admin_alerts(call: Call[AlertQuery | AcknowledgeAlert]) -> AlertPage:
    """GET: crisis alerts, newest first (acknowledged or not, pages). POST: acknowledge one, with an optional note."""
    body = call.body
    if isinstance(body, AcknowledgeAlert):
        alert = safety.acknowledge(bootstrap.ports(), call.caller.uid, str(body.alert_id), body.note)
        return AlertPage(alerts=[AdminAlert.model_validate(alert, from_attributes=True)])
    acknowledged = None if body.status is None else body.status == "acknowledged"
    alerts, cursor = safety.list_alerts(
        bootstrap.ports(), acknowledged=acknowledged, cursor=body.cursor, limit=body.limit
    )
    return AlertPage(alerts=[AdminAlert.model_validate(a, from_attributes=True) for a in alerts], next_cursor=cursor)
