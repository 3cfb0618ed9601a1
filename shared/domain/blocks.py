"""A client blocks a mitra, or a mitra blocks a client: the pair is never matched again. Neither is offered the
other's requests (the exclusion NOT_BLOCKED in shared/adapters/postgres/pairing.py's offers), and an accept of an
offer made before the block is refused (`BLOCKED`, `BlocksRepository.blocks_request`). Each side unblocks only its
own block; a block says nothing to the other side."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from shared.domain.accounts import name_for_mitra
from shared.domain.config import AnonymityMode
from shared.domain.parties import Refused
from shared.domain.roles import Role

BLOCKED = Refused("blocked", "this client and this mitra are not matched: one of them blocked the other")


@dataclass(frozen=True)
class Block:
    block_id: str
    session_id: str
    blocked_by: str
    # The other side as the blocker is shown them: a mitra's name, or a client as the anonymity mode shows them.
    other_name: str
    created_at: datetime


@dataclass(frozen=True)
class BlockOnFile:
    block_id: str
    session_id: str
    blocked_by: str
    mitra_name: str
    client_name: str
    anonymous: bool
    alias_number: int
    created_at: datetime


@dataclass(frozen=True)
class BlockOnRecord:
    """A block as the control center sees it: both sides by id and name (the client's own name: admins see it)."""

    block_id: str
    session_id: str
    blocked_by: str
    client_id: str
    client_name: str
    mitra_id: str
    mitra_name: str
    created_at: datetime


def as_shown(block: BlockOnFile, role: Role, mode: AnonymityMode) -> Block:
    """A block as its maker lists it: a client sees the mitra's name, a mitra sees the client as offers and sessions
    show them (`shared.domain.accounts.name_for_mitra`)."""
    if role is Role.CLIENT:
        name = block.mitra_name
    else:
        name = name_for_mitra(
            display_name=block.client_name, anonymous=block.anonymous, alias_number=block.alias_number, mode=mode
        )
    return Block(
        block_id=block.block_id,
        session_id=block.session_id,
        blocked_by=block.blocked_by,
        other_name=name,
        created_at=block.created_at,
    )
