"""Feedback on a closed session: the client rates it; the control center sees each mitra's average and reads the
comments with a reason (audited). No function gives a mitra an individual rating."""

from __future__ import annotations

from functions._http import Call, endpoint
from shared import bootstrap
from shared.domain.feedback import EDIT_WINDOW, Feedback
from shared.domain.roles import Role
from shared.schemas.feedback import (
    CommentsPage,
    CommentsQuery,
    FeedbackComment,
    FeedbackQuery,
    GiveFeedback,
    MitraRating,
    RatingsPage,
    RatingsQuery,
    SessionFeedback,
)
from shared.services import feedback


@endpoint(
    get=FeedbackQuery,
    post=GiveFeedback,
    roles={Role.CLIENT},
    response=SessionFeedback,
    errors={404, 409},
    tag="safety",
)
def session_feedback(call: Call[FeedbackQuery | GiveFeedback]) -> SessionFeedback:
    """GET: the client's own rating of a session. POST: Rates a closed session once (`create`: 1-5, an optional
    comment), or changes the rating within 24 hours of the first (`edit`)."""
    body = call.body
    client = call.caller.participant()
    if isinstance(body, GiveFeedback):
        give = feedback.give if body.action == "create" else feedback.edit
        given = give(bootstrap.ports(), client, str(body.session_id), rating=body.rating, comment=body.comment)
    else:
        given = feedback.own(bootstrap.ports(), client, str(body.session_id))
    return _shown(given)


@endpoint(get=RatingsQuery, roles={Role.ADMIN}, response=RatingsPage, check_revoked=True)
def admin_feedback(call: Call[RatingsQuery]) -> RatingsPage:
    """Each rated mitra's average rating and counts (no comment, no session), by mitra id, in pages."""
    body = call.body
    rows, cursor = feedback.ratings(
        bootstrap.ports(), mitra_id=str(body.mitra_id) if body.mitra_id else None, cursor=body.cursor, limit=body.limit
    )
    return RatingsPage(mitras=[MitraRating.model_validate(r, from_attributes=True) for r in rows], next_cursor=cursor)


@endpoint(get=CommentsQuery, roles={Role.ADMIN}, response=CommentsPage, check_revoked=True)
def admin_feedback_comments(call: Call[CommentsQuery]) -> CommentsPage:
    """Ratings with their comments (a client's words), newest first. `reason` (1-500 characters) says why; the read
    is audited with it."""
    body = call.body
    rows, cursor = feedback.comments(
        bootstrap.ports(),
        call.caller.uid,
        mitra_id=str(body.mitra_id) if body.mitra_id else None,
        reason=body.reason,
        cursor=body.cursor,
        limit=body.limit,
    )
    return CommentsPage(
        comments=[FeedbackComment.model_validate(r, from_attributes=True) for r in rows], next_cursor=cursor
    )


def _shown(given: Feedback) -> SessionFeedback:
    return SessionFeedback(
        session_id=given.session_id,
        rating=given.rating,
        comment=given.comment,
        created_at=given.created_at,
        updated_at=given.updated_at,
        editable_until=given.created_at + EDIT_WINDOW,
    )
