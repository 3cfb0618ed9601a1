"""A mitra's private notes on a session of theirs: read only by that mitra, and by an admin who gives a reason
(audited). Personal data: erased with the client's data and by retention, as message texts are."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from shared.domain.parties import Refused

NOTE_MAX = 4000

NOTE_ERASED = Refused("note_erased", "this note was erased with the session's words")


@dataclass(frozen=True)
class Note:
    note_id: str
    session_id: str
    mitra_id: str
    # None once erased.
    text: str | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class NoteWritten:
    """What a keyed retry of a new note is answered again: the note's id (its text is read afresh, never kept with
    the key)."""

    note_id: str
