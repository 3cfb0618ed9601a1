"""A session's two sides, as what happens after a session (feedback, notes) and safety between people (reports,
blocks) read it: who may write about a session, and when a session's words are gone for good.

Read by `shared/adapters/postgres/parties.py`'s `session_parties` (one statement, shared by those areas)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from shared.domain.accounts import client_sees_session
from shared.domain.chat import Participant
from shared.domain.roles import Role


@dataclass(frozen=True)
class Refused:
    """A change the rules refuse: `code` is the contract's 409 error code."""

    code: str
    message: str


@dataclass(frozen=True)
class SessionParties:
    session_id: str
    status: str
    client_id: str
    mitra_id: str
    client_uid: str | None
    mitra_uid: str | None
    alias_number: int
    started_at: datetime
    closed_at: datetime | None
    # The client's `history_from` (a takeover hides the sessions before it from the client's login).
    history_from: datetime | None
    # The session's texts were erased (retention, or the client's deletion): no new words join them.
    erased: bool
    # The database's clock, read with the rest.
    now: datetime


SESSION_ERASED = Refused("session_erased", "this session's words were erased; nothing more can be written about it")


def takes_part(parties: SessionParties, caller: Participant) -> bool:
    """The session's client (who reads it: `shared.domain.accounts.client_sees_session`) or its mitra. Anyone
    else is told there is no such session."""
    if caller.role is Role.CLIENT:
        return parties.client_id == caller.account_id and client_sees_session(
            started_at=parties.started_at, history_from=parties.history_from
        )
    return caller.role is Role.MITRA and parties.mitra_id == caller.account_id


def may_write_about(parties: SessionParties) -> Refused | None:
    """Words about a session whose own words are erased would outlive them: refused."""
    return SESSION_ERASED if parties.erased else None
