"""Blocks: a client blocks a mitra, a mitra blocks a client, from a session they shared; never matched again."""

from __future__ import annotations

from functions._http import Call, endpoint
from shared import bootstrap
from shared.domain.roles import Role
from shared.schemas.blocks import Block, BlockAction, BlockFromSession, Blocks, BlocksQuery
from shared.services import blocks as blocking


@endpoint(
    get=BlocksQuery,
    post=BlockAction,
    roles={Role.CLIENT, Role.MITRA},
    response=Blocks,
    errors={404},
    tag="safety",
)
def blocks(call: Call[BlocksQuery | BlockAction]) -> Blocks:
    """GET: the caller's own blocks, newest first. POST: Blocks the other side of a session (`block`; again: the
    same block), or lifts one of the caller's own blocks (`unblock`)."""
    caller = call.caller.participant()
    if isinstance(call.body, BlockAction):
        action = call.body.root
        if isinstance(action, BlockFromSession):
            made = blocking.block(bootstrap.ports(), caller, str(action.session_id))
            return Blocks(blocks=[Block.model_validate(made, from_attributes=True)])
        blocking.unblock(bootstrap.ports(), caller, str(action.block_id))
        return Blocks(blocks=[])
    own = blocking.own(bootstrap.ports(), caller)
    return Blocks(blocks=[Block.model_validate(b, from_attributes=True) for b in own])
