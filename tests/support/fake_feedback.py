"""Feedback in memory: the promises of shared/adapters/postgres/feedback.py (one feedback per session)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from shared.domain.feedback import Comment, Feedback, MitraRating
from shared.domain.parties import SessionParties
from tests.support.fake_parties import session_parties

if TYPE_CHECKING:
    from tests.support.fakes import FakeDatabase

Row = dict[str, Any]
_FIELDS = ("session_id", "mitra_id", "rating", "comment", "created_at", "updated_at")


class FakeFeedbackRepository:
    def __init__(self, db: FakeDatabase) -> None:
        self._db = db

    def _rows(self) -> dict[Any, Row]:
        return self._db.table("session_feedback")

    def parties(self, session_id: str) -> SessionParties | None:
        return session_parties(self._db, session_id)

    def add_once(self, parties: SessionParties, *, rating: int, comment: str | None) -> Feedback | None:
        if parties.session_id in self._rows():
            return None
        self._rows()[parties.session_id] = {
            "session_id": parties.session_id,
            "client_id": parties.client_id,
            "mitra_id": parties.mitra_id,
            "rating": rating,
            "comment": comment,
            "created_at": self._db.now,
            "updated_at": self._db.now,
        }
        return self._feedback(self._rows()[parties.session_id])

    def locked(self, session_id: str) -> Feedback | None:
        return self.own(session_id)

    def edit(self, session_id: str, *, rating: int, comment: str | None) -> Feedback:
        row = self._rows()[session_id]
        row.update(rating=rating, comment=comment, updated_at=self._db.now)
        return self._feedback(row)

    def own(self, session_id: str) -> Feedback | None:
        row = self._rows().get(session_id)
        return self._feedback(row) if row else None

    def ratings(self, *, mitra_id: str | None, after: str | None, limit: int) -> list[MitraRating]:
        mitras: dict[str, list[Row]] = {}
        for row in self._rows().values():
            mitras.setdefault(row["mitra_id"], []).append(row)
        return [
            MitraRating(
                mitra_id=mitra,
                mitra_name=self._db.table("mitras")[mitra]["display_name"],
                ratings=len(rows),
                average=round(sum(r["rating"] for r in rows) / len(rows), 2),
                comments=sum(r["comment"] is not None for r in rows),
            )
            for mitra, rows in sorted(mitras.items())
            if (mitra_id is None or mitra == mitra_id) and (after is None or mitra > after)
        ][:limit]

    def comments(self, *, mitra_id: str | None, after: tuple[datetime, str] | None, limit: int) -> list[Comment]:
        newest_first = sorted(self._rows().values(), key=lambda r: (r["created_at"], r["session_id"]), reverse=True)
        return [
            Comment(
                session_id=r["session_id"],
                mitra_id=r["mitra_id"],
                mitra_name=self._db.table("mitras")[r["mitra_id"]]["display_name"],
                rating=r["rating"],
                comment=r["comment"],
                created_at=r["created_at"],
                updated_at=r["updated_at"],
            )
            for r in newest_first
            if (mitra_id is None or r["mitra_id"] == mitra_id)
            and (after is None or (r["created_at"], r["session_id"]) < after)
        ][:limit]

    @staticmethod
    def _feedback(row: Row) -> Feedback:
        return Feedback(**{key: row[key] for key in _FIELDS})
