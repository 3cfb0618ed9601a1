"""Feedback's SQL: one rating per closed session, edited in place; each mitra's average; the comments."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from shared.adapters.postgres.parties import session_parties
from shared.adapters.postgres.sql import Sql
from shared.domain.feedback import Comment, Feedback, MitraRating
from shared.domain.parties import SessionParties

_FEEDBACK = "session_id::text, mitra_id::text, rating, comment, created_at, updated_at"


class FeedbackRepository:
    def __init__(self, sql: Sql) -> None:
        self._sql = sql

    def parties(self, session_id: str) -> SessionParties | None:
        return session_parties(self._sql, session_id)

    def add_once(self, parties: SessionParties, *, rating: int, comment: str | None) -> Feedback | None:
        """The rule `shared.domain.feedback.FEEDBACK_EXISTS`: one feedback per session (the primary key); None
        when the session has one already (a concurrent first rating included)."""
        row = self._sql.one(
            f"""INSERT INTO session_feedback (session_id, client_id, mitra_id, rating, comment)
                VALUES (CAST(:session AS uuid), CAST(:client AS uuid), CAST(:mitra AS uuid), :rating, :comment)
                ON CONFLICT (session_id) DO NOTHING RETURNING {_FEEDBACK}""",
            {
                "session": parties.session_id,
                "client": parties.client_id,
                "mitra": parties.mitra_id,
                "rating": rating,
                "comment": comment,
            },
        )
        return Feedback(**row) if row else None

    def locked(self, session_id: str) -> Feedback | None:
        """The session's feedback, its row locked until the change ends: one edit at a time."""
        row = self._sql.one(
            f"SELECT {_FEEDBACK} FROM session_feedback WHERE session_id = CAST(:id AS uuid) FOR UPDATE",
            {"id": session_id},
        )
        return Feedback(**row) if row else None

    def edit(self, session_id: str, *, rating: int, comment: str | None) -> Feedback:
        row = self._sql.one(
            f"""UPDATE session_feedback SET rating = :rating, comment = :comment, updated_at = now()
                WHERE session_id = CAST(:id AS uuid) RETURNING {_FEEDBACK}""",
            {"id": session_id, "rating": rating, "comment": comment},
        )
        assert row is not None
        return Feedback(**row)

    def own(self, session_id: str) -> Feedback | None:
        row = self._sql.one(
            f"SELECT {_FEEDBACK} FROM session_feedback WHERE session_id = CAST(:id AS uuid)", {"id": session_id}
        )
        return Feedback(**row) if row else None

    def ratings(self, *, mitra_id: str | None, after: str | None, limit: int) -> list[MitraRating]:
        """Per mitra: how many ratings, their average, how many with a comment; by mitra id, after `after`."""
        rows = self._sql.all(
            """SELECT f.mitra_id::text, m.display_name AS mitra_name, count(*) AS ratings,
                      round(avg(f.rating), 2)::float AS average, count(f.comment) AS comments
               FROM session_feedback f JOIN mitras m ON m.id = f.mitra_id
               WHERE (CAST(:mitra AS uuid) IS NULL OR f.mitra_id = CAST(:mitra AS uuid))
                 AND (CAST(:after AS uuid) IS NULL OR f.mitra_id > CAST(:after AS uuid))
               GROUP BY f.mitra_id, m.display_name ORDER BY f.mitra_id LIMIT :limit""",
            {"mitra": mitra_id, "after": after, "limit": limit},
        )
        return [MitraRating(**row) for row in rows]

    def comments(self, *, mitra_id: str | None, after: tuple[datetime, str] | None, limit: int) -> list[Comment]:
        """Newest first (by when first given), after the keyset `after` (created_at, session_id)."""
        params: dict[str, Any] = {
            "mitra": mitra_id,
            "at": after[0] if after else None,
            "id": after[1] if after else None,
            "limit": limit,
        }
        rows = self._sql.all(
            """SELECT f.session_id::text, f.mitra_id::text, m.display_name AS mitra_name, f.rating, f.comment,
                      f.created_at, f.updated_at
               FROM session_feedback f JOIN mitras m ON m.id = f.mitra_id
               WHERE (CAST(:mitra AS uuid) IS NULL OR f.mitra_id = CAST(:mitra AS uuid))
                 AND (CAST(:at AS timestamptz) IS NULL
                      OR (f.created_at, f.session_id) < (CAST(:at AS timestamptz), CAST(:id AS uuid)))
               ORDER BY f.created_at DESC, f.session_id DESC LIMIT :limit""",
            params,
        )
        return [Comment(**row) for row in rows]
