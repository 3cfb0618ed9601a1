"""A client's feedback on a closed session: a rating of 1-5 and an optional comment, given once and editable for
24 hours after. The mitra never sees an individual rating; the control center sees each mitra's average and count,
and reads the comments (personal data) with a reason, audited.

The rule PostgreSQL enforces: one feedback per session (`FeedbackRepository.add_once`, the table's primary key)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from shared.domain.parties import Refused, SessionParties, may_write_about

EDIT_WINDOW = timedelta(hours=24)
COMMENT_MAX = 1000

SESSION_NOT_CLOSED = Refused("session_not_closed", "a session is rated once it has closed")
FEEDBACK_EXISTS = Refused("feedback_exists", "this session is rated already; edit the rating instead")
FEEDBACK_LOCKED = Refused("feedback_locked", "a rating can be edited for 24 hours after it was given")


@dataclass(frozen=True)
class Feedback:
    session_id: str
    mitra_id: str
    rating: int
    comment: str | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class MitraRating:
    """One mitra's ratings, as the control center sees them."""

    mitra_id: str
    mitra_name: str
    ratings: int
    average: float
    comments: int


@dataclass(frozen=True)
class Comment:
    session_id: str
    mitra_id: str
    mitra_name: str
    rating: int
    comment: str | None
    created_at: datetime
    updated_at: datetime


def may_rate(parties: SessionParties) -> Refused | None:
    """Only a closed session is rated (the client's own session: `shared.domain.parties.takes_part`)."""
    if parties.status != "closed":
        return SESSION_NOT_CLOSED
    return may_write_about(parties)


def may_edit(first_given: datetime, now: datetime) -> Refused | None:
    """For `EDIT_WINDOW` after the rating was first given; then it stands."""
    return FEEDBACK_LOCKED if now - first_given > EDIT_WINDOW else None


def repeats(given: Feedback, *, rating: int, comment: str | None) -> bool:
    """A create that asks what is on file already is a retry of the first (its reply was lost), not a second
    rating."""
    return (given.rating, given.comment) == (rating, comment)
