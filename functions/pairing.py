"""Pairing ("Mulai Curhat"): request, blast, accept/decline, cancel, and the end of the search window."""

from __future__ import annotations

from pydantic import BaseModel

from functions._events import pubsub_handler
from functions._http import Call, endpoint
from functions._tasks import task_handler
from shared import bootstrap
from shared.domain.roles import Role
from shared.schemas import (
    PairingAcceptReply,
    PairingCancelReply,
    PairingDeclineReply,
    PairingRequestBody,
    PairingRequestReply,
    RequestRef,
)
from shared.services import pairing


class RequestEvent(BaseModel):
    request_id: str


class MitraEvent(BaseModel):
    mitra_id: str


@endpoint(post=PairingRequestBody, roles={Role.CLIENT}, response=PairingRequestReply, errors={404, 409, 429})
def pairing_request(call: Call[PairingRequestBody]) -> PairingRequestReply:
    """Ask every available mitra at once (with `mitra_id`, a past mitra alone first); with nobody available, search
    the window all the same or end `no_mitra` at once, as the setting `wait_when_nobody_online` says."""
    outcome = pairing.request_pairing(
        bootstrap.ports(),
        call.caller.participant().account_id,
        tier_id=call.body.tier_id,
        free_trial=call.body.free_trial,
        mitra_id=str(call.body.mitra_id) if call.body.mitra_id is not None else None,
        keyed=call.keyed,
    )
    return PairingRequestReply.model_validate(outcome, from_attributes=True)


@endpoint(post=RequestRef, roles={Role.CLIENT}, response=PairingCancelReply, errors={404, 409})
def pairing_cancel(call: Call[RequestRef]) -> PairingCancelReply:
    """Stop searching; every offer is withdrawn."""
    client_id = call.caller.participant().account_id
    ended = pairing.cancel(bootstrap.ports(), client_id, str(call.body.request_id), keyed=call.keyed)
    return PairingCancelReply.model_validate(ended, from_attributes=True)


@endpoint(post=RequestRef, roles={Role.MITRA}, response=PairingAcceptReply, errors={404, 409})
def pairing_accept(call: Call[RequestRef]) -> PairingAcceptReply:
    """Take the request: the first mitra wins the session, everyone else gets 409 already_taken; the winner asking
    again gets its session again."""
    mitra_id = call.caller.participant().account_id
    match = pairing.accept(bootstrap.ports(), mitra_id, str(call.body.request_id), keyed=call.keyed)
    return PairingAcceptReply.model_validate(match, from_attributes=True)


@endpoint(post=RequestRef, roles={Role.MITRA}, response=PairingDeclineReply, errors={404, 409})
def pairing_decline(call: Call[RequestRef]) -> PairingDeclineReply:
    """Hide this offer for the calling mitra only."""
    mitra_id = call.caller.participant().account_id
    declined = pairing.decline(bootstrap.ports(), mitra_id, str(call.body.request_id), keyed=call.keyed)
    return PairingDeclineReply.model_validate(declined, from_attributes=True)


@pubsub_handler(RequestEvent)
def on_pairing_requested(event: RequestEvent, _message_id: str) -> None:
    """The blast: offer the new request to every available mitra (idempotent under redelivery)."""
    pairing.blast(bootstrap.ports(), event.request_id)


@task_handler(RequestEvent)
def task_pairing_timeout(payload: RequestEvent) -> str:
    """The search window has passed: `no_mitra` unless someone accepted meanwhile."""
    return pairing.expire_search(bootstrap.ports(), payload.request_id)


@task_handler(RequestEvent)
def task_pairing_widen(payload: RequestEvent) -> str:
    """A past mitra's preference window has passed: the request is offered to everyone available."""
    return pairing.widen(bootstrap.ports(), payload.request_id)


@pubsub_handler(MitraEvent)
def on_mitra_slot_freed(event: MitraEvent, _message_id: str) -> None:
    """A session of this mitra closed: they are offered the searching requests they can take (idempotent)."""
    pairing.offer_freed_slot(bootstrap.ports(), event.mitra_id)
