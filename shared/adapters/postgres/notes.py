"""A mitra's notes in SQL."""

from __future__ import annotations

from shared.adapters.postgres.parties import session_parties
from shared.adapters.postgres.sql import Sql
from shared.domain.notes import Note
from shared.domain.parties import SessionParties

_NOTE = "id::text AS note_id, session_id::text, mitra_id::text, text, created_at, updated_at"


class NotesRepository:
    def __init__(self, sql: Sql) -> None:
        self._sql = sql

    def parties(self, session_id: str) -> SessionParties | None:
        return session_parties(self._sql, session_id)

    def add(self, session_id: str, mitra_id: str, text: str) -> Note:
        row = self._sql.one(
            f"""INSERT INTO mitra_notes (session_id, mitra_id, text)
                VALUES (CAST(:session AS uuid), CAST(:mitra AS uuid), :text) RETURNING {_NOTE}""",
            {"session": session_id, "mitra": mitra_id, "text": text},
        )
        assert row is not None
        return Note(**row)

    def edit_own_if_kept(self, note_id: str, mitra_id: str, text: str) -> Note | None:
        """The rule `shared.domain.notes.NOTE_ERASED`: only the mitra's own note, and not once erased."""
        row = self._sql.one(
            f"""UPDATE mitra_notes SET text = :text, updated_at = now()
                WHERE id = CAST(:id AS uuid) AND mitra_id = CAST(:mitra AS uuid) AND text IS NOT NULL
                RETURNING {_NOTE}""",
            {"id": note_id, "mitra": mitra_id, "text": text},
        )
        return Note(**row) if row else None

    def note(self, note_id: str) -> Note | None:
        row = self._sql.one(f"SELECT {_NOTE} FROM mitra_notes WHERE id = CAST(:id AS uuid)", {"id": note_id})
        return Note(**row) if row else None

    def of_mitra(self, session_id: str, mitra_id: str) -> list[Note]:
        rows = self._sql.all(
            f"""SELECT {_NOTE} FROM mitra_notes
                WHERE session_id = CAST(:session AS uuid) AND mitra_id = CAST(:mitra AS uuid)
                ORDER BY created_at, id""",
            {"session": session_id, "mitra": mitra_id},
        )
        return [Note(**row) for row in rows]

    def of_session(self, session_id: str) -> list[Note]:
        rows = self._sql.all(
            f"SELECT {_NOTE} FROM mitra_notes WHERE session_id = CAST(:session AS uuid) ORDER BY created_at, id",
            {"session": session_id},
        )
        return [Note(**row) for row in rows]
