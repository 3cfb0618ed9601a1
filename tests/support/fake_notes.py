"""A mitra's notes in memory: the promises of shared/adapters/postgres/notes.py."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from shared.domain.notes import Note
from shared.domain.parties import SessionParties
from tests.support.fake_parties import session_parties

if TYPE_CHECKING:
    from tests.support.fakes import FakeDatabase

Row = dict[str, Any]


class FakeNotesRepository:
    def __init__(self, db: FakeDatabase) -> None:
        self._db = db

    def _rows(self) -> dict[Any, Row]:
        return self._db.table("mitra_notes")

    def parties(self, session_id: str) -> SessionParties | None:
        return session_parties(self._db, session_id)

    def add(self, session_id: str, mitra_id: str, text: str) -> Note:
        note_id = str(uuid.uuid4())
        self._rows()[note_id] = {
            "id": note_id,
            "session_id": session_id,
            "mitra_id": mitra_id,
            "text": text,
            "created_at": self._db.now,
            "updated_at": self._db.now,
            "seq": self._db.next_id(),
        }
        return self._note(self._rows()[note_id])

    def edit_own_if_kept(self, note_id: str, mitra_id: str, text: str) -> Note | None:
        row = self._rows().get(note_id)
        if row is None or row["mitra_id"] != mitra_id or row["text"] is None:
            return None
        row.update(text=text, updated_at=self._db.now)
        return self._note(row)

    def note(self, note_id: str) -> Note | None:
        row = self._rows().get(note_id)
        return self._note(row) if row else None

    def of_mitra(self, session_id: str, mitra_id: str) -> list[Note]:
        return [n for n in self.of_session(session_id) if n.mitra_id == mitra_id]

    def of_session(self, session_id: str) -> list[Note]:
        rows = sorted(self._rows().values(), key=lambda r: r["seq"])
        return [self._note(r) for r in rows if r["session_id"] == session_id]

    @staticmethod
    def _note(row: Row) -> Note:
        return Note(
            note_id=row["id"],
            session_id=row["session_id"],
            mitra_id=row["mitra_id"],
            text=row["text"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
        )
