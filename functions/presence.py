"""Mitra presence: online/offline, heartbeats, and the sweep that notices silence."""

from __future__ import annotations

from pydantic import BaseModel

from functions._events import pubsub_handler
from functions._http import Call, endpoint
from shared import bootstrap
from shared.domain.presence import Presence
from shared.domain.roles import Role
from shared.schemas import Empty, HeartbeatReply, MitraStatus, MitraStatusChange
from shared.services import presence


class SweepTick(BaseModel):
    pass


@endpoint(post=MitraStatusChange, roles={Role.MITRA}, response=MitraStatus, errors={404, 409})
def mitra_set_status(call: Call[MitraStatusChange]) -> MitraStatus:
    """Go online (and be offered every request still searching) or offline (open offers are withdrawn)."""
    mitra_id = call.caller.participant().account_id
    change = presence.set_status(bootstrap.ports(), mitra_id, Presence(call.body.status), keyed=call.keyed)
    return MitraStatus.model_validate(change, from_attributes=True)


@endpoint(post=Empty, roles={Role.MITRA}, response=HeartbeatReply)
def mitra_heartbeat(call: Call[Empty]) -> HeartbeatReply:
    """Keep an online mitra online; `next_heartbeat_s` says when to beat next. `offline` in the reply means the app
    must go online again."""
    beat = presence.heartbeat(bootstrap.ports(), call.caller.participant().account_id)
    return HeartbeatReply.model_validate(beat, from_attributes=True)


@pubsub_handler(SweepTick)
def presence_sweep(_tick: SweepTick, _message_id: str) -> None:
    """Scheduled: mitras silent past their lease go offline (`heartbeat_timeout`); the heartbeats' pace is set."""
    presence.sweep(bootstrap.ports())
