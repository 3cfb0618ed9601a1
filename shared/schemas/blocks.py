"""Blocks (`blocks`): a client blocks a mitra, a mitra blocks a client; the pair is never matched again."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import Field, RootModel

from shared.schemas import Model, Reply


class BlocksQuery(Model):
    """The caller's own blocks: nothing to name."""


class BlockFromSession(Model):
    """Block the other side of a session the caller took part in; blocking again answers the same block."""

    action: Literal["block"]
    session_id: UUID


class Unblock(Model):
    """Lift one of the caller's own blocks."""

    action: Literal["unblock"]
    block_id: UUID


class BlockAction(RootModel[Annotated[BlockFromSession | Unblock, Field(discriminator="action")]]):
    pass


class Block(Reply):
    block_id: str
    session_id: str
    blocked_by: Literal["client", "mitra"]
    # The other side as the caller is shown them: a mitra's name, or a client as offers and sessions show them.
    other_name: str
    created_at: datetime


class Blocks(Reply):
    """GET: the caller's blocks, newest first. POST: `block`: the block made (or found); `unblock`: none."""

    blocks: list[Block]
