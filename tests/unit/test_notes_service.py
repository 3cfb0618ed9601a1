"""A mitra's notes as stories on the in-memory unit of work: written, edited and listed by that mitra only, read by
an admin with a reason (audited), erased with the session's words. The same through the gateway:
tests/e2e/test_notes.py."""

from __future__ import annotations

import pytest

from shared.adapters.identity_cache import IdentityCache
from shared.domain.chat import Participant
from shared.domain.privacy import Requester
from shared.domain.roles import Role
from shared.errors import Conflict, NotFound
from shared.services import notes, privacy
from tests.support.fake_accounts import FakeIdentityProvider
from tests.support.fake_chat import add_session
from tests.support.fake_idempotency import keyed
from tests.support.fakes import FakeDatabase, FakePorts, fake_ports

SESSION = "5e551011-0000-4000-8000-000000000001"
MITRA = Participant(Role.MITRA, "m1", "uid-mitra")
OTHER_MITRA = Participant(Role.MITRA, "m2", "uid-other")
ADMIN = Requester("uid-admin", "admin", reason="permintaan klien")


@pytest.fixture
def db() -> FakeDatabase:
    database = FakeDatabase()
    add_session(
        database,
        SESSION,
        client={"id": "c1", "firebase_uid": "uid-client", "display_name": "Sari", "alias_number": 4821},
        mitra={"id": "m1", "firebase_uid": "uid-mitra", "display_name": "Anisa"},
    )
    database.table("mitras")["m2"] = {"id": "m2", "firebase_uid": "uid-other", "display_name": "Budi"}
    return database


@pytest.fixture
def ports(db: FakeDatabase) -> FakePorts:
    return fake_ports(db)


def test_a_mitra_writes_edits_and_lists_their_own_notes(ports: FakePorts, db: FakeDatabase) -> None:
    first = notes.write(ports, MITRA, SESSION, "klien cemas soal ujian")
    db.tick(1)
    notes.write(ports, MITRA, SESSION, "tindak lanjut minggu depan")

    edited = notes.edit(ports, MITRA, first.note_id, "klien cemas soal ujian akhir")

    assert edited.text == "klien cemas soal ujian akhir"
    assert [n.text for n in notes.own(ports, MITRA, SESSION)] == [
        "klien cemas soal ujian akhir",
        "tindak lanjut minggu depan",
    ]


def test_nobody_else_writes_reads_or_edits_a_mitra_s_notes(ports: FakePorts, db: FakeDatabase) -> None:
    note = notes.write(ports, MITRA, SESSION, "pribadi")
    with pytest.raises(NotFound):
        notes.write(ports, OTHER_MITRA, SESSION, "bukan sesiku")
    with pytest.raises(NotFound):
        notes.edit(ports, OTHER_MITRA, note.note_id, "diubah")
    assert notes.own(ports, OTHER_MITRA, SESSION) == []
    assert db.table("mitra_notes")[note.note_id]["text"] == "pribadi"


def test_an_admin_reads_a_session_s_notes_with_a_reason_audited(ports: FakePorts, db: FakeDatabase) -> None:
    notes.write(ports, MITRA, SESSION, "pribadi")

    read = notes.read_for_admin(ports, "uid-admin", SESSION, "laporan klien")

    assert [(n.mitra_id, n.text) for n in read] == [("m1", "pribadi")]
    (audit,) = db.audit
    assert (audit["action"], audit["target"], audit["new"]) == (
        "session.notes_read",
        SESSION,
        {"reason": "laporan klien", "notes": 1},
    )
    with pytest.raises(NotFound):
        notes.read_for_admin(ports, "uid-admin", "5e551011-0000-4000-8000-00000000dead", "x")


def test_the_client_s_deletion_erases_the_notes_and_an_erased_note_stays_erased(
    ports: FakePorts, db: FakeDatabase
) -> None:
    note = notes.write(ports, MITRA, SESSION, "pribadi")
    db.table("sessions")[SESSION].update(status="closed", closed_at=db.now)
    db.table("clients")["c1"].update(phone=None, email=None, created_at=db.now, suspended_at=None, deleted_at=None)

    privacy.delete(ports, FakeIdentityProvider(), IdentityCache(ttl_s=60), ADMIN, "c1")

    assert db.table("mitra_notes")[note.note_id]["text"] is None
    with pytest.raises(Conflict) as erased:
        notes.edit(ports, MITRA, note.note_id, "kembali")
    assert erased.value.code == "note_erased"
    with pytest.raises(Conflict) as closed:
        notes.write(ports, MITRA, SESSION, "baru")
    assert closed.value.code == "session_erased"


def test_a_keyed_retry_is_answered_the_first_note_and_writes_nothing_more(ports: FakePorts, db: FakeDatabase) -> None:
    call = keyed("mitra_notes", {"action": "create", "session_id": SESSION, "text": "sekali"}, "k1")

    first = notes.write(ports, MITRA, SESSION, "sekali", keyed=call)
    again = notes.write(ports, MITRA, SESSION, "sekali", keyed=call)

    assert again == first and len(db.table("mitra_notes")) == 1
    assert "sekali" not in str(db.table("idempotency_keys")), "the kept answer is the note's id, not its words"
