"""The control center's blocks (`admin_blocks`): who blocked whom, and lifting a block."""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import Field

from shared.schemas import Model, Reply
from shared.schemas.admin_paging import PageQuery


class AdminBlocksQuery(PageQuery):
    """Blocks newest first: of one client, one mitra, both (the pair), or everyone when neither is named."""

    client_id: UUID | None = None
    mitra_id: UUID | None = None


class LiftBlock(Model):
    """Lift a block whoever made it; audited with the reason."""

    action: Literal["lift"]
    block_id: UUID
    # Kept in the audit log: why the control center overrode a person's choice.
    reason: str = Field(min_length=3, max_length=500)


class AdminBlock(Reply):
    block_id: str
    # The session it was made from.
    session_id: str
    blocked_by: Literal["client", "mitra"]
    client_id: str
    client_name: str
    mitra_id: str
    mitra_name: str
    created_at: datetime


class AdminBlocks(Reply):
    """GET: one page of blocks. POST `lift`: the block lifted now, or none when there was no such block (lifted
    already), which changes nothing (`next_cursor` null)."""

    blocks: list[AdminBlock]
    next_cursor: str | None = None
