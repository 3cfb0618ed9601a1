"""Crisis signals: the check behind every client message, and the control center's alerts."""

from __future__ import annotations

from uuid import UUID

from pydantic import BaseModel

from functions._events import pubsub_handler
from functions._http import Call, endpoint
from shared.adapters import runtime
from shared.domain.roles import Role
from shared.schemas.safety import AcknowledgeAlert, AdminAlert, AlertPage, AlertQuery
from shared.services import admin_alerts as alerts
from shared.services import safety


class SafetyCheck(BaseModel):
    message_id: UUID
    session_id: UUID


@pubsub_handler(SafetyCheck)
def on_safety_check(check: SafetyCheck, _message_id: str) -> None:
    """Check one client message against the crisis list; a hit alerts the on-duty admins and shows the hotline."""
    safety.check_message(runtime.ports(), message_id=str(check.message_id), session_id=str(check.session_id))


@endpoint(get=AlertQuery, post=AcknowledgeAlert, roles={Role.ADMIN}, response=AlertPage, check_revoked=True)
def admin_alerts(call: Call[AlertQuery | AcknowledgeAlert]) -> AlertPage:
    """GET: crisis alerts, newest first (acknowledged or not, pages). POST: acknowledge one, with an optional note."""
    body = call.body
    if isinstance(body, AcknowledgeAlert):
        row = alerts.acknowledge(runtime.ports(), call.caller.uid, str(body.alert_id), body.note)
        return AlertPage(alerts=[AdminAlert.model_validate(row)])
    acknowledged = None if body.status is None else body.status == "acknowledged"
    rows, cursor = alerts.list_alerts(runtime.database(), acknowledged=acknowledged, cursor=body.cursor,
                                      limit=body.limit)  # fmt: skip
    return AlertPage(alerts=[AdminAlert.model_validate(row) for row in rows], next_cursor=cursor)
