"""Blocks: a client blocks a mitra, a mitra blocks a client, from a session they shared; never matched again. The
control center sees them all and may lift one (`admin_blocks`)."""

from __future__ import annotations

from functions._http import Call, endpoint
from shared import bootstrap
from shared.domain.roles import Role
from shared.schemas.admin_blocks import AdminBlock, AdminBlocks, AdminBlocksQuery, LiftBlock
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


@endpoint(
    get=AdminBlocksQuery, post=LiftBlock, roles={Role.ADMIN}, response=AdminBlocks, check_revoked=True, tag="safety"
)
def admin_blocks(call: Call[AdminBlocksQuery | LiftBlock]) -> AdminBlocks:
    """GET: blocks, newest first (of a client, a mitra, or a pair; pages). POST: lift a block, whoever made it
    (audited with the reason); lifting one already gone answers no block and changes nothing."""
    body = call.body
    if isinstance(body, LiftBlock):
        lifted = blocking.lift(bootstrap.ports(), call.caller.uid, str(body.block_id), reason=body.reason)
        return AdminBlocks(blocks=[] if lifted is None else [AdminBlock.model_validate(lifted, from_attributes=True)])
    found, cursor = blocking.on_record(
        bootstrap.ports(),
        client_id=str(body.client_id) if body.client_id else None,
        mitra_id=str(body.mitra_id) if body.mitra_id else None,
        cursor=body.cursor,
        limit=body.limit,
    )
    return AdminBlocks(blocks=[AdminBlock.model_validate(b, from_attributes=True) for b in found], next_cursor=cursor)
