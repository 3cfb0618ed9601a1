"""The control center's sessions: finding them, and rerouting a running one to another mitra."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from shared.adapters.postgres.database import Database, Row, Tx
from shared.adapters.postgres.pairing import AVAILABLE_MITRAS, available_params
from shared.domain import accounts, days
from shared.domain.config import AppConfig
from shared.errors import Conflict, InvalidRequest, NotFound
from shared.services import audit, projections, settings_store
from shared.services.admin_paging import older_than_cursor, page
from shared.services.outbox import ts
from shared.services.ports import Ports
from shared.services.projector import project_after_commit

_SESSIONS = """
    SELECT s.id::text AS session_id, s.request_id::text, s.status, s.kind, s.client_id::text,
           c.display_name AS client_name, c.alias_number, s.mitra_id::text, m.display_name AS mitra_name,
           s.started_at, s.ends_at, s.closed_at, s.next_seq AS messages
    FROM sessions s JOIN clients c ON c.id = s.client_id JOIN mitras m ON m.id = s.mitra_id"""
_FILTERS = {
    "status": "s.status = :status",
    "mitra_id": "s.mitra_id = CAST(:mitra_id AS uuid)",
    "client_id": "s.client_id = CAST(:client_id AS uuid)",
    "starts": "s.started_at >= :starts",
    "ends": "s.started_at < :ends",
}


def list_sessions(
    db: Database, *, status: str | None, mitra_id: str | None, client_id: str | None, first: date | None,
    last: date | None, cursor: str | None, limit: int,
) -> tuple[list[Row], str | None]:  # fmt: skip
    """Newest first; `first`/`last` are Jakarta days (both included) on which the sessions started."""
    where, keyset = older_than_cursor(cursor, "s.started_at", "s.id")
    bound: dict[str, Any] = {"status": status, "mitra_id": mitra_id, "client_id": client_id, **_days(first, last)}
    where += [_FILTERS[name] for name, value in bound.items() if name in _FILTERS and value is not None]
    with db.transaction() as tx:
        rows = tx.all(
            f"""{_SESSIONS} WHERE {" AND ".join(where or ["true"])}
                ORDER BY s.started_at DESC, s.id DESC LIMIT :limit""",
            {**bound, **keyset, "limit": limit + 1},
        )
    shown, next_cursor = page(rows, limit, "started_at", "session_id")
    return [_shaped(row) for row in shown], next_cursor


def _days(first: date | None, last: date | None) -> dict[str, datetime | None]:
    if first and last and last < first:
        raise InvalidRequest("the range ends before it starts", fields=[{"field": "to_date", "problem": "too early"}])
    return {"starts": days.starts(first) if first else None,
            "ends": days.starts(last + timedelta(days=1)) if last else None}  # fmt: skip


def reroute(ports: Ports, admin_uid: str, session_id: str, mitra_id: str) -> Row:
    """Same session, same history, another mitra. The old mitra's assignment ends (a `rerouted` closure row); the
    session document names the new participants, which is what firestore.rules reads, so the old mitra's listener
    is cut off at once and the new mitra can read every message."""
    with ports.db.transaction() as tx:
        config = settings_store.load_config(tx)
        session = _running_session(tx, session_id)
        if session["mitra_id"] == mitra_id:
            raise Conflict("the session is already with this mitra", code="same_mitra")
        new = _available_mitra(tx, mitra_id, config)
        moved = _move(tx, session_id, from_mitra=session["mitra_id"], to_mitra=mitra_id, admin_uid=admin_uid)
        _tell_everyone(tx, session_id, session, new, moved)
        audit.record(tx, actor_uid=admin_uid, actor_role="admin", action="session.reroute", target=session_id,
                     old={"mitra_id": session["mitra_id"]}, new={"mitra_id": mitra_id})  # fmt: skip
        rerouted = tx.one(f"{_SESSIONS} WHERE s.id = CAST(:id AS uuid)", {"id": session_id})
    project_after_commit(ports, tx.outbox_ids)
    assert rerouted is not None
    return _shaped(rerouted)


def _shaped(row: Row) -> Row:
    return {**row, "client_alias": accounts.alias(row["alias_number"])}


def _running_session(tx: Tx, session_id: str) -> Row:
    session = tx.one(
        """SELECT s.mitra_id::text, s.status, s.ends_at > now() AS running, c.firebase_uid AS client_uid,
                  m.firebase_uid AS mitra_uid
           FROM sessions s JOIN clients c ON c.id = s.client_id JOIN mitras m ON m.id = s.mitra_id
           WHERE s.id = CAST(:id AS uuid) FOR UPDATE OF s""",
        {"id": session_id},
    )
    if session is None:
        raise NotFound("no such session")
    if session["status"] != "active" or not session["running"]:
        raise Conflict("only an active session can be rerouted", code="session_not_active")
    return session


def _available_mitra(tx: Tx, mitra_id: str, config: AppConfig) -> Row:
    """The same rule that decides who is offered a request; the row lock serialises it with the mitra's accepts."""
    mitra = tx.one(
        "SELECT firebase_uid, display_name FROM mitras WHERE id = CAST(:id AS uuid) FOR UPDATE", {"id": mitra_id}
    )
    if mitra is None:
        raise NotFound("no such mitra")
    available = tx.scalar(
        f"SELECT EXISTS (SELECT 1 FROM ({AVAILABLE_MITRAS}) AS available WHERE available.id = CAST(:id AS uuid))",
        {**available_params(config), "id": mitra_id},
    )
    if not available:
        raise Conflict("this mitra is not online, not fresh, or at capacity", code="mitra_unavailable")
    return mitra


def _move(tx: Tx, session_id: str, *, from_mitra: str, to_mitra: str, admin_uid: str) -> Row:
    """Returns the closure row that ends the old mitra's assignment."""
    tx.execute(
        """UPDATE sessions SET mitra_id = CAST(:mitra AS uuid), mitra_typing_at = NULL
           WHERE id = CAST(:session AS uuid)""",
        {"mitra": to_mitra, "session": session_id},
    )
    closure = tx.one(
        """INSERT INTO session_closures (session_id, mitra_id, reason, closed_by)
           VALUES (CAST(:session AS uuid), CAST(:old AS uuid), 'rerouted', :admin) RETURNING id, at""",
        {"session": session_id, "old": from_mitra, "admin": admin_uid},
    )
    assert closure is not None
    return closure


def _tell_everyone(tx: Tx, session_id: str, session: Row, new: Row, moved: Row) -> None:
    projections.session(
        tx, session_id,
        {"participant_uids": [session["client_uid"], new["firebase_uid"]], "mitra_uid": new["firebase_uid"],
         "mitra_name": new["display_name"], "rerouted_at": ts(moved["at"]),
         "typing": {"mitra": {"typing_until": None}}},
    )  # fmt: skip
    data = {"session_id": session_id}
    projections.notify(
        tx, dedup_key=f"rerouted:{moved['id']}:to", recipients=[new["firebase_uid"]],
        data={"type": "session_assigned", **data},
        title="Sesi dialihkan kepadamu", body="Lanjutkan percakapan yang sedang berjalan",
    )  # fmt: skip
    projections.notify(
        tx, dedup_key=f"rerouted:{moved['id']}:from", recipients=[session["mitra_uid"]] if session["mitra_uid"] else [],
        data={"type": "session_rerouted", **data},
        title="Sesi dialihkan", body="Sesi ini dilanjutkan oleh Bestie lain",
    )  # fmt: skip
