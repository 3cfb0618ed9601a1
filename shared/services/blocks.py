"""A client blocks a mitra, a mitra blocks a client (`shared.domain.blocks`): from a session they shared; each lists
and lifts only their own blocks. The pairing offers leave blocked pairs out, and an accept refuses them."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Protocol

from shared.domain.blocks import Block, BlockOnFile, BlockOnRecord, as_shown
from shared.domain.chat import Participant
from shared.domain.parties import SessionParties
from shared.services.admin_paging import keyset, page
from shared.services.parties import own_session
from shared.services.ports import Ports


class BlocksRepository(Protocol):
    """What blocks need from storage (shared/adapters/postgres/blocks.py)."""

    def parties(self, session_id: str) -> SessionParties | None: ...

    def lock_mitra(self, mitra_id: str) -> None: ...

    def add_once(self, parties: SessionParties, blocked_by: str) -> str: ...

    def remove_own(self, block_id: str, blocked_by: str, account_id: str) -> bool: ...

    def of(self, blocked_by: str, account_id: str) -> list[BlockOnFile]: ...

    def blocks_request(self, request_id: str, mitra_id: str) -> bool: ...

    def on_record(
        self, *, client_id: str | None, mitra_id: str | None, after_block: tuple[datetime, str] | None, limit: int
    ) -> list[BlockOnRecord]: ...

    def remove(self, block_id: str) -> BlockOnRecord | None: ...


def block(ports: Ports, caller: Participant, session_id: str) -> Block:
    """The other side of the session, blocked by the caller; blocking again answers the same block."""
    with ports.uow() as uow:
        parties = own_session(uow.blocks.parties(session_id), caller)
        # Orders the block with the mitra's accepts (`PairingRepository.claim_offer` locks the same row): an accept
        # deciding now finishes first, a later one sees the block.
        uow.blocks.lock_mitra(parties.mitra_id)
        block_id = uow.blocks.add_once(parties, caller.role.value)
        blocked = next(b for b in uow.blocks.of(caller.role.value, caller.account_id) if b.block_id == block_id)
        mode = uow.settings.load().anonymity_mode
        uow.commit()
    return as_shown(blocked, caller.role, mode)


def unblock(ports: Ports, caller: Participant, block_id: str) -> bool:
    """Only the caller's own block; whether it was lifted now. Lifting a block that is not (or no longer) the
    caller's changes nothing and is not an error, so a repeat is answered as the first call."""
    with ports.uow() as uow:
        lifted = uow.blocks.remove_own(block_id, caller.role.value, caller.account_id)
        uow.commit()
    return lifted


def own(ports: Ports, caller: Participant) -> list[Block]:
    """The caller's blocks, newest first."""
    with ports.uow() as uow:
        blocks = uow.blocks.of(caller.role.value, caller.account_id)
        mode = uow.settings.load().anonymity_mode
    return [as_shown(b, caller.role, mode) for b in blocks]


# -- the control center ------------------------------------------------------------------------------------------------


def on_record(
    ports: Ports, *, client_id: str | None, mitra_id: str | None, cursor: str | None, limit: int
) -> tuple[list[BlockOnRecord], str | None]:
    """Blocks newest first, of one client, one mitra, both (the pair) or everyone; a page and the next one's cursor."""
    with ports.uow(one_statement=True) as uow:
        blocks = uow.blocks.on_record(
            client_id=client_id,
            mitra_id=mitra_id,
            after_block=keyset(cursor, datetime.fromisoformat, uuid.UUID),
            limit=limit + 1,
        )
    return page(blocks, limit, "created_at", "block_id")


def lift(ports: Ports, admin_uid: str, block_id: str, *, reason: str) -> BlockOnRecord | None:
    """An admin lifts a block (a mistaken one, or one an investigation found abusive): the pair may be offered to
    each other again from the next offer on. Audited with the reason. The block lifted now; None when there was none
    (lifted already, by its maker or another admin): a repeat changes nothing and records no audit row."""
    with ports.uow() as uow:
        lifted = uow.blocks.remove(block_id)
        if lifted is not None:
            uow.audit.record(
                actor_uid=admin_uid,
                actor_role="admin",
                action="block.lift",
                target=lifted.block_id,
                old={
                    "client_id": lifted.client_id,
                    "mitra_id": lifted.mitra_id,
                    "blocked_by": lifted.blocked_by,
                    "session_id": lifted.session_id,
                },
                new={"reason": reason},
            )
        uow.commit()
    return lifted
