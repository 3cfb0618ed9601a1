"""A mitra's notes end to end through the gateway on PostgreSQL: written, edited and listed by that mitra only; no
client or other mitra reads them; an admin reads a session's notes only with a reason, audited. (That no note's
text survives the client's deletion or retention is proven by the every-table scan of tests/e2e/test_privacy.py.)"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from emulators.simulator import App
from shared.adapters.postgres.database import Database
from tests.support.people import Pair

pytestmark = pytest.mark.needs_gcloud


def test_a_mitra_writes_edits_and_lists_notes_nobody_else_reads(
    paired: Callable[..., Pair], new_mitra: Callable[..., App]
) -> None:
    pair = paired()

    written = pair.mitra.post("mitra_notes", {"action": "create", "session_id": pair.session_id, "text": "cemas"})

    assert written.status == 200, written.body
    (note,) = written.body["notes"]
    edited = pair.mitra.post("mitra_notes", {"action": "edit", "note_id": note["note_id"], "text": "cemas ujian"})
    assert edited.status == 200 and edited.body["notes"][0]["text"] == "cemas ujian"
    listed = pair.mitra.get("mitra_notes", session_id=pair.session_id)
    assert [(n["note_id"], n["text"]) for n in listed.body["notes"]] == [(note["note_id"], "cemas ujian")]
    assert pair.client.get("mitra_notes", session_id=pair.session_id).status == 403
    other = new_mitra("Mitra Lain")
    assert other.get("mitra_notes", session_id=pair.session_id).body["notes"] == []
    assert other.post("mitra_notes", {"action": "edit", "note_id": note["note_id"], "text": "x"}).status == 404
    foreign = other.post("mitra_notes", {"action": "create", "session_id": pair.session_id, "text": "x"})
    assert foreign.status == 404
    blank = pair.mitra.post("mitra_notes", {"action": "create", "session_id": pair.session_id, "text": "   "})
    assert blank.status == 400 and blank.body["error"]["fields"][0]["field"].endswith("text")


def test_an_admin_reads_a_session_s_notes_only_with_a_reason_audited(
    paired: Callable[..., Pair], admin: App, halo_db: Database
) -> None:
    pair = paired()
    pair.mitra.post("mitra_notes", {"action": "create", "session_id": pair.session_id, "text": "rujuk ke psikolog"})

    assert admin.get("admin_session_notes", session_id=pair.session_id).status == 400
    read = admin.get("admin_session_notes", session_id=pair.session_id, reason="laporan dari klien")

    assert read.status == 200, read.body
    assert [n["text"] for n in read.body["notes"]] == ["rujuk ke psikolog"]
    with halo_db.transaction() as tx:
        (audit,) = tx.all(
            "SELECT actor_role, new_value FROM audit_log WHERE action = 'session.notes_read' AND target = :t",
            {"t": pair.session_id},
        )
    assert audit == {"actor_role": "admin", "new_value": {"reason": "laporan dari klien", "notes": 1}}
