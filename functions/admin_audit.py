"""The control center's audit log reader: who did what, when, to what, and how often each admin read what."""

from __future__ import annotations

from functions._http import Call, endpoint
from shared import bootstrap
from shared.domain.roles import Role
from shared.schemas.admin_audit import AuditEntry, AuditPage, AuditQuery
from shared.services.admin_audit import list_entries


@endpoint(get=AuditQuery, roles={Role.ADMIN}, response=AuditPage, check_revoked=True)
def admin_audit(call: Call[AuditQuery]) -> AuditPage:
    """The audit log, newest first: filter by actor, action, target and Jakarta days (both included), page by
    cursor. An admin's reads are one entry per function and hour with their count; reading the log is counted too."""
    body = call.body
    entries, cursor = list_entries(
        bootstrap.ports(),
        actor_uid=body.actor_uid,
        action=body.action,
        target=body.target,
        first=body.from_date,
        last=body.to_date,
        cursor=body.cursor,
        limit=body.limit,
    )
    return AuditPage(entries=[AuditEntry.model_validate(e, from_attributes=True) for e in entries], next_cursor=cursor)
