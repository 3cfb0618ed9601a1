"""A mitra's private notes on a session of theirs; an admin reads a session's notes with a reason (audited)."""

from __future__ import annotations

from functions._http import Call, endpoint
from shared import bootstrap
from shared.domain.roles import Role
from shared.schemas.notes import AdminNote, AdminNotes, AdminNotesQuery, Note, NoteAction, Notes, NotesQuery, WriteNote
from shared.services import notes


@endpoint(get=NotesQuery, post=NoteAction, roles={Role.MITRA}, response=Notes, errors={404, 409}, tag="safety")
def mitra_notes(call: Call[NotesQuery | NoteAction]) -> Notes:
    """GET: the mitra's own notes on a session, oldest first. POST: Writes a note on a session of theirs (`create`)
    or changes one of their own notes (`edit`); the note alone is answered."""
    mitra = call.caller.participant()
    if isinstance(call.body, NoteAction):
        action = call.body.root
        if isinstance(action, WriteNote):
            written = notes.write(bootstrap.ports(), mitra, str(action.session_id), action.text, keyed=call.keyed)
        else:
            written = notes.edit(bootstrap.ports(), mitra, str(action.note_id), action.text)
        return Notes(notes=[Note.model_validate(written, from_attributes=True)])
    own = notes.own(bootstrap.ports(), mitra, str(call.body.session_id))
    return Notes(notes=[Note.model_validate(n, from_attributes=True) for n in own])


@endpoint(get=AdminNotesQuery, roles={Role.ADMIN}, response=AdminNotes, check_revoked=True, errors={404})
def admin_session_notes(call: Call[AdminNotesQuery]) -> AdminNotes:
    """Every mitra's notes on one session. `reason` (1-500 characters) says why; the read is audited with it."""
    read = notes.read_for_admin(bootstrap.ports(), call.caller.uid, str(call.body.session_id), call.body.reason)
    return AdminNotes(notes=[AdminNote.model_validate(n, from_attributes=True) for n in read])
