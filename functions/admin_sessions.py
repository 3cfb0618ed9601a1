"""The control center's sessions: finding them, reading one's conversation (a reason given, audited), rerouting
a running one to another mitra and ending one (both audited)."""

from __future__ import annotations

from functions._http import Call, endpoint
from shared import bootstrap
from shared.domain.roles import Role
from shared.schemas.admin_sessions import (
    AdminSession,
    AdminSessionEnded,
    AdminTranscriptQuery,
    EndSession,
    RerouteSession,
    SessionPage,
    SessionQuery,
)
from shared.schemas.chat import Message, SessionSummary, Transcript
from shared.services.admin_sessions import end_session, list_sessions, reroute, transcript


@endpoint(
    get=SessionQuery,
    post=RerouteSession,
    roles={Role.ADMIN},
    response=SessionPage,
    check_revoked=True,
    errors={404, 409},
)
def admin_sessions(call: Call[SessionQuery | RerouteSession]) -> SessionPage:
    """GET: sessions, newest first (status, mitra, client, Jakarta dates, pages). POST: reroute to another mitra."""
    body = call.body
    if isinstance(body, RerouteSession):
        moved = reroute(bootstrap.ports(), call.caller.uid, str(body.session_id), str(body.mitra_id))
        return SessionPage(sessions=[AdminSession.model_validate(moved, from_attributes=True)])
    sessions, cursor = list_sessions(
        bootstrap.ports(),
        status=body.status,
        mitra_id=str(body.mitra_id) if body.mitra_id else None,
        client_id=str(body.client_id) if body.client_id else None,
        first=body.from_date,
        last=body.to_date,
        cursor=body.cursor,
        limit=body.limit,
    )
    return SessionPage(
        sessions=[AdminSession.model_validate(s, from_attributes=True) for s in sessions], next_cursor=cursor
    )


@endpoint(get=AdminTranscriptQuery, roles={Role.ADMIN}, response=Transcript, check_revoked=True, errors={404})
def admin_session_transcript(call: Call[AdminTranscriptQuery]) -> Transcript:
    """One session's whole conversation. `reason` (1-500 characters) says why; the read is audited with it."""
    session, messages = transcript(bootstrap.ports(), call.caller.uid, str(call.body.session_id), call.body.reason)
    return Transcript(
        session=SessionSummary.model_validate(session), messages=[Message.model_validate(m) for m in messages]
    )


@endpoint(post=EndSession, roles={Role.ADMIN}, response=AdminSessionEnded, check_revoked=True, errors={404, 409})
def admin_session_end(call: Call[EndSession]) -> AdminSessionEnded:
    """End an active session: both sides see `close_reason` admin and are pushed; with `goodbye` the goodbye window
    applies, without it the session is closed at once; with `credit_unused` the unused share of what the client paid
    is credited back to them. Without `goodbye`, a session in its goodbye window is closed at once too. Audited
    (`session.end`) with the reason. A closed session (or a closing one asked with `goodbye`) is 409
    `session_not_active`; a repeat with the same Idempotency-Key gets the first answer."""
    body = call.body
    ended = end_session(
        bootstrap.ports(),
        call.caller.uid,
        str(body.session_id),
        reason=body.reason,
        goodbye=body.goodbye,
        credit_unused=body.credit_unused,
        keyed=call.keyed,
    )
    return AdminSessionEnded.model_validate(ended, from_attributes=True)
