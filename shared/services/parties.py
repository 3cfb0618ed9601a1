"""What feedback, notes, reports and blocks share: the caller's own session, and refusals as errors."""

from __future__ import annotations

from shared.domain.chat import Participant
from shared.domain.parties import Refused, SessionParties, takes_part
from shared.errors import Conflict, NotFound


def own_session(parties: SessionParties | None, caller: Participant) -> SessionParties:
    """The session, when the caller takes part in it (`shared.domain.parties.takes_part`); else 404, as for a
    session that does not exist."""
    if parties is None or not takes_part(parties, caller):
        raise NotFound("no such session")
    return parties


def refuse(refused: Refused | None) -> None:
    """409 with the refusal's code."""
    if refused is not None:
        raise conflict(refused)


def conflict(refused: Refused) -> Conflict:
    return Conflict(refused.message, code=refused.code)
