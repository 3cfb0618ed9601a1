"""A session's two sides (`shared.domain.parties.SessionParties`) in one statement: what feedback, notes, reports
and blocks read before they write about a session."""

from __future__ import annotations

from shared.adapters.postgres.sql import Sql
from shared.domain.parties import SessionParties

_PARTIES = """
    SELECT s.id::text AS session_id, s.status, s.client_id::text, s.mitra_id::text, c.firebase_uid AS client_uid,
           m.firebase_uid AS mitra_uid, c.alias_number, s.started_at, s.closed_at, c.history_from,
           (s.texts_erased_at IS NOT NULL OR c.deleted_at IS NOT NULL) AS erased, now() AS now
    FROM sessions s JOIN clients c ON c.id = s.client_id JOIN mitras m ON m.id = s.mitra_id
    WHERE s.id = CAST(:id AS uuid)"""


def session_parties(sql: Sql, session_id: str) -> SessionParties | None:
    row = sql.one(_PARTIES, {"id": session_id})
    return SessionParties(**row) if row else None
