"""A client's feedback on a closed session (`shared.domain.feedback`), and the control center's view of it: each
mitra's average, and the comments read with a reason (audited). No function gives a mitra an individual rating."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Protocol

from shared.domain import feedback as rules
from shared.domain.chat import Participant
from shared.domain.feedback import Comment, Feedback, MitraRating
from shared.domain.parties import SessionParties
from shared.domain.roles import Role
from shared.errors import NotFound
from shared.services.admin_paging import keyset, page, read_cursor
from shared.services.parties import conflict, own_session, refuse
from shared.services.ports import Ports


class FeedbackRepository(Protocol):
    """What feedback needs from storage (shared/adapters/postgres/feedback.py)."""

    def parties(self, session_id: str) -> SessionParties | None: ...

    def add_once(self, parties: SessionParties, *, rating: int, comment: str | None) -> Feedback | None: ...

    def locked(self, session_id: str) -> Feedback | None: ...

    def edit(self, session_id: str, *, rating: int, comment: str | None) -> Feedback: ...

    def own(self, session_id: str) -> Feedback | None: ...

    def ratings(self, *, mitra_id: str | None, after: str | None, limit: int) -> list[MitraRating]: ...

    def comments(self, *, mitra_id: str | None, after: tuple[datetime, str] | None, limit: int) -> list[Comment]: ...


def give(ports: Ports, client: Participant, session_id: str, *, rating: int, comment: str | None) -> Feedback:
    """Once per session: a second, different rating is refused (409 `feedback_exists`; the first is edited
    instead); the same rating and comment again is a repeat, answered the rating on file."""
    with ports.uow() as uow:
        parties = _client_session(uow.feedback.parties(session_id), client)
        refuse(rules.may_rate(parties))
        given = uow.feedback.add_once(parties, rating=rating, comment=comment)
        if given is None:
            first = uow.feedback.own(session_id)
            if first is None or not rules.repeats(first, rating=rating, comment=comment):
                raise conflict(rules.FEEDBACK_EXISTS)
            return first
        uow.commit()
    return given


def edit(ports: Ports, client: Participant, session_id: str, *, rating: int, comment: str | None) -> Feedback:
    """Within 24 hours of the first rating (`shared.domain.feedback.may_edit`): the rating and the comment are
    replaced (no comment clears it)."""
    with ports.uow() as uow:
        parties = _client_session(uow.feedback.parties(session_id), client)
        refuse(rules.may_rate(parties))
        given = uow.feedback.locked(session_id)
        if given is None:
            raise NotFound("this session has no rating yet")
        refuse(rules.may_edit(given.created_at, parties.now))
        edited = uow.feedback.edit(session_id, rating=rating, comment=comment)
        uow.commit()
    return edited


def own(ports: Ports, client: Participant, session_id: str) -> Feedback:
    with ports.uow() as uow:
        _client_session(uow.feedback.parties(session_id), client)
        given = uow.feedback.own(session_id)
    if given is None:
        raise NotFound("this session has no rating yet")
    return given


# -- the control center ------------------------------------------------------------------------------------------------


def ratings(
    ports: Ports, *, mitra_id: str | None, cursor: str | None, limit: int
) -> tuple[list[MitraRating], str | None]:
    """Each rated mitra's average and counts, no comment and no session: ordered by mitra id."""
    after = read_cursor(cursor, uuid.UUID)
    with ports.uow(one_statement=True) as uow:
        rows = uow.feedback.ratings(mitra_id=mitra_id, after=str(after[0]) if after else None, limit=limit + 1)
    return page(rows, limit, "mitra_id")


def comments(
    ports: Ports, admin_uid: str, *, mitra_id: str | None, reason: str, cursor: str | None, limit: int
) -> tuple[list[Comment], str | None]:
    """Ratings with their comments (a client's words), newest first: the read, the admin and their reason are in
    the audit log (`feedback.comments_read`), committed before the comments are handed out."""
    with ports.uow() as uow:
        rows = uow.feedback.comments(
            mitra_id=mitra_id, after=keyset(cursor, datetime.fromisoformat, uuid.UUID), limit=limit + 1
        )
        shown, next_cursor = page(rows, limit, "created_at", "session_id")
        uow.audit.record(
            actor_uid=admin_uid,
            actor_role="admin",
            action="feedback.comments_read",
            target=mitra_id or "all",
            old=None,
            new={"reason": reason, "comments": len(shown)},
        )
        uow.commit()
    return shown, next_cursor


def _client_session(parties: SessionParties | None, client: Participant) -> SessionParties:
    """Only the session's client rates it (a mitra is told there is no such session)."""
    if client.role is not Role.CLIENT:
        raise NotFound("no such session")
    return own_session(parties, client)
