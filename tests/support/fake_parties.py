"""A session's two sides in memory: the promise of shared/adapters/postgres/parties.py."""

from __future__ import annotations

from typing import TYPE_CHECKING

from shared.domain.parties import SessionParties

if TYPE_CHECKING:
    from tests.support.fakes import FakeDatabase


def session_parties(db: FakeDatabase, session_id: str) -> SessionParties | None:
    session = db.table("sessions").get(session_id)
    if session is None:
        return None
    client = db.table("clients")[session["client_id"]]
    mitra = db.table("mitras")[session["mitra_id"]]
    return SessionParties(
        session_id=session_id,
        status=session["status"],
        client_id=session["client_id"],
        mitra_id=session["mitra_id"],
        client_uid=client.get("firebase_uid"),
        mitra_uid=mitra.get("firebase_uid"),
        alias_number=client["alias_number"],
        started_at=session["started_at"],
        closed_at=session.get("closed_at"),
        history_from=client.get("history_from"),
        erased=session.get("texts_erased_at") is not None or client.get("deleted_at") is not None,
        now=db.now,
    )
