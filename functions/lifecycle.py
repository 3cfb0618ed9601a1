"""Session lifecycle: the timer's tasks, early end, goodbye notes, extensions."""

from __future__ import annotations

from pydantic import BaseModel

from functions._http import Call, endpoint
from functions._tasks import task_handler
from shared import bootstrap
from shared.domain.roles import Role
from shared.schemas.lifecycle import (
    ExtensionRequest,
    ExtensionRespond,
    ExtensionState,
    Goodbye,
    GoodbyeSent,
    SessionEnded,
    SessionRef,
)
from shared.services import lifecycle

PARTICIPANTS = {Role.CLIENT, Role.MITRA}


class TimerTask(BaseModel):
    session_id: str
    version: int


class CloseTask(BaseModel):
    session_id: str


class ExtensionTask(BaseModel):
    extension_id: str


@endpoint(post=SessionRef, roles=PARTICIPANTS, response=SessionEnded, errors={404, 409})
def session_end(call: Call[SessionRef]) -> SessionEnded:
    """End the session early (where the control center allows it for the caller's role); goodbyes follow."""
    session_id = str(call.body.session_id)
    ended = lifecycle.end_early(bootstrap.ports(), call.caller.participant(), session_id=session_id, keyed=call.keyed)
    return SessionEnded.model_validate(ended, from_attributes=True)


@endpoint(post=Goodbye, roles=PARTICIPANTS, response=GoodbyeSent, errors={404, 409})
def session_goodbye(call: Call[Goodbye]) -> GoodbyeSent:
    """One goodbye note per side, inside the goodbye window after the session's end."""
    sent = lifecycle.goodbye(
        bootstrap.ports(),
        call.caller.participant(),
        session_id=str(call.body.session_id),
        text=call.body.text,
        keyed=call.keyed,
    )
    return GoodbyeSent.model_validate(sent, from_attributes=True)


@endpoint(post=ExtensionRequest, roles={Role.CLIENT}, response=ExtensionState, errors={404, 409})
def extension_request(call: Call[ExtensionRequest]) -> ExtensionState:
    """Ask the mitra for more time (one pending request at a time)."""
    extension = lifecycle.request_extension(
        bootstrap.ports(),
        call.caller.participant(),
        session_id=str(call.body.session_id),
        tier_id=call.body.tier_id,
        keyed=call.keyed,
    )
    return ExtensionState.model_validate(extension, from_attributes=True)


@endpoint(post=ExtensionRespond, roles={Role.MITRA}, response=ExtensionState, errors={404, 409})
def extension_respond(call: Call[ExtensionRespond]) -> ExtensionState:
    """Accept (the client then pays) or reject an extension request."""
    extension = lifecycle.respond_extension(
        bootstrap.ports(),
        mitra_id=call.caller.participant().account_id,
        extension_id=str(call.body.extension_id),
        accept=call.body.accept,
        keyed=call.keyed,
    )
    return ExtensionState.model_validate(extension, from_attributes=True)


@task_handler(TimerTask)
def task_session_warning(task: TimerTask) -> str:
    """ "5 minutes left, extend?" — a system message and a push; stale after an extension."""
    return lifecycle.warn(bootstrap.ports(), task.session_id, task.version)


@task_handler(TimerTask)
def task_session_expire(task: TimerTask) -> str:
    """The session's time is up: closing, with the goodbye window; stale after an extension."""
    return lifecycle.expire(bootstrap.ports(), task.session_id, task.version)


@task_handler(CloseTask)
def task_session_close(task: CloseTask) -> str:
    """The goodbye window is over: closed."""
    return lifecycle.close(bootstrap.ports(), task.session_id)


@task_handler(ExtensionTask)
def task_extension_timeout(task: ExtensionTask) -> str:
    """The mitra did not answer in time: the request expires."""
    return lifecycle.expire_extension(bootstrap.ports(), task.extension_id)
