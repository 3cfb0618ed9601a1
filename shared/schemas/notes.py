"""A mitra's private notes on a session (`mitra_notes`), and an admin's audited read of them
(`admin_session_notes`)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import AfterValidator, Field, RootModel

from shared.domain.notes import NOTE_MAX
from shared.schemas import Model, Reply
from shared.schemas.feedback import said_something
from shared.schemas.privacy import Reason

NoteText = Annotated[str, Field(min_length=1, max_length=NOTE_MAX), AfterValidator(said_something)]


class NotesQuery(Model):
    session_id: UUID


class WriteNote(Model):
    """A new note on a session of the mitra's (in any state; refused once the session's words are erased)."""

    action: Literal["create"]
    session_id: UUID
    text: NoteText


class EditNote(Model):
    """The mitra's own note, its text replaced (an erased note stays erased: 409 `note_erased`)."""

    action: Literal["edit"]
    note_id: UUID
    text: NoteText


class NoteAction(RootModel[Annotated[WriteNote | EditNote, Field(discriminator="action")]]):
    pass


class Note(Reply):
    note_id: str
    session_id: str
    # Null once erased with the session's words.
    text: str | None
    created_at: datetime
    updated_at: datetime


class Notes(Reply):
    """Oldest first."""

    notes: list[Note]


class AdminNotesQuery(Model):
    """A session's notes, by every mitra who wrote one: the admin says why (audited)."""

    session_id: UUID
    reason: Reason


class AdminNote(Note):
    mitra_id: str


class AdminNotes(Reply):
    notes: list[AdminNote]
