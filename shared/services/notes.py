"""A mitra's private notes on a session of theirs (`shared.domain.notes`): written, edited and listed by that mitra
only; an admin reads a session's notes with a reason (audited), as its transcript."""

from __future__ import annotations

from typing import Protocol

from shared.domain import notes as rules
from shared.domain.chat import Participant
from shared.domain.idempotency import KeyedCall
from shared.domain.notes import Note, NoteWritten
from shared.domain.parties import SessionParties, may_write_about
from shared.errors import NotFound
from shared.services import idempotency
from shared.services.parties import own_session, refuse
from shared.services.ports import Ports


class NotesRepository(Protocol):
    """What notes need from storage (shared/adapters/postgres/notes.py)."""

    def parties(self, session_id: str) -> SessionParties | None: ...

    def add(self, session_id: str, mitra_id: str, text: str) -> Note: ...

    def edit_own_if_kept(self, note_id: str, mitra_id: str, text: str) -> Note | None: ...

    def note(self, note_id: str) -> Note | None: ...

    def of_mitra(self, session_id: str, mitra_id: str) -> list[Note]: ...

    def of_session(self, session_id: str) -> list[Note]: ...


def write(ports: Ports, mitra: Participant, session_id: str, text: str, *, keyed: KeyedCall | None = None) -> Note:
    """On a session of theirs, in any state (refused once the session's words are erased). Without a key a repeat
    cannot be told from a second note: apps send an Idempotency-Key, and its retry is answered the first note."""
    with ports.uow() as uow:
        if (first := idempotency.first_answer(uow, keyed, NoteWritten)) is not None:
            kept = uow.notes.note(first.note_id)
            if kept is None:
                raise NotFound("no such note")
            return kept
        parties = own_session(uow.notes.parties(session_id), mitra)
        refuse(may_write_about(parties))
        note = uow.notes.add(session_id, mitra.account_id, text)
        idempotency.remember(uow, keyed, NoteWritten(note.note_id))
        uow.commit()
    return note


def edit(ports: Ports, mitra: Participant, note_id: str, text: str) -> Note:
    """Their own note only (another's is not found); an erased note stays erased (409 `note_erased`)."""
    with ports.uow() as uow:
        edited = uow.notes.edit_own_if_kept(note_id, mitra.account_id, text)
        if edited is None:
            found = uow.notes.note(note_id)
            if found is None or found.mitra_id != mitra.account_id:
                raise NotFound("no such note")
            refuse(rules.NOTE_ERASED)
        uow.commit()
    assert edited is not None
    return edited


def own(ports: Ports, mitra: Participant, session_id: str) -> list[Note]:
    """The mitra's own notes on the session, oldest first (none of another mitra's, after a reroute)."""
    with ports.uow(one_statement=True) as uow:
        return uow.notes.of_mitra(session_id, mitra.account_id)


def read_for_admin(ports: Ports, admin_uid: str, session_id: str, reason: str) -> list[Note]:
    """Every note on the session: the read, the admin and their reason are in the audit log (`session.notes_read`),
    committed before the notes are handed out."""
    with ports.uow() as uow:
        if uow.notes.parties(session_id) is None:
            raise NotFound("no such session")
        notes = uow.notes.of_session(session_id)
        uow.audit.record(
            actor_uid=admin_uid,
            actor_role="admin",
            action="session.notes_read",
            target=session_id,
            old=None,
            new={"reason": reason, "notes": len(notes)},
        )
        uow.commit()
    return notes
