"""A client's feedback on a closed session (`session_feedback`), and the control center's view of it
(`admin_feedback`, `admin_feedback_comments`)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import AfterValidator, Field

from shared.domain.feedback import COMMENT_MAX
from shared.schemas import Model, Reply
from shared.schemas.admin_paging import PageQuery
from shared.schemas.privacy import Reason


def said_something(text: str) -> str:
    if not text.strip():
        raise ValueError("more than blanks")
    return text


Comment = Annotated[str, Field(min_length=1, max_length=COMMENT_MAX), AfterValidator(said_something)]


class FeedbackQuery(Model):
    session_id: UUID


class GiveFeedback(Model):
    """`create`: the first rating of a closed session of the client's (a second is 409 `feedback_exists`).
    `edit`: replaces the rating and comment, within 24 hours of the first rating (then 409 `feedback_locked`)."""

    action: Literal["create", "edit"]
    session_id: UUID
    rating: int = Field(ge=1, le=5)
    comment: Comment | None = None


class SessionFeedback(Reply):
    """The client's own rating of the session. The mitra never sees it."""

    session_id: str
    rating: int
    # Null when none was given, or once the session's words were erased.
    comment: str | None
    created_at: datetime
    updated_at: datetime
    editable_until: datetime


class RatingsQuery(PageQuery):
    mitra_id: UUID | None = None


class MitraRating(Reply):
    mitra_id: str
    mitra_name: str
    ratings: int
    average: float
    comments: int


class RatingsPage(Reply):
    """Each rated mitra's average and counts, by mitra id; no comment and no session."""

    mitras: list[MitraRating]
    next_cursor: str | None = None


class CommentsQuery(PageQuery):
    """The comments are a client's words, so the admin says why (audited)."""

    mitra_id: UUID | None = None
    reason: Reason


class FeedbackComment(Reply):
    session_id: str
    mitra_id: str
    mitra_name: str
    rating: int
    comment: str | None
    created_at: datetime
    updated_at: datetime


class CommentsPage(Reply):
    """Ratings with their comments, newest first."""

    comments: list[FeedbackComment]
    next_cursor: str | None = None
