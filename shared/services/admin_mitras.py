"""The control center's mitras: the roster, registering and renaming, deactivation, and presence history."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

from shared.adapters.postgres.database import Database, Row, Tx
from shared.adapters.postgres.uow import joined
from shared.domain import days
from shared.errors import Conflict, InvalidRequest, NotFound
from shared.services import audit, projections
from shared.services.admin_paging import contains, page, read_cursor
from shared.services.identity import IdentityCache
from shared.services.ports import IdentityProvider, Ports
from shared.services.presence import log_presence_change, withdraw_open_offers
from shared.services.projector import project_after_commit

_COLUMNS = """m.id::text AS mitra_id, m.display_name, m.phone, m.active, m.presence, m.last_heartbeat_at,
    m.firebase_uid IS NOT NULL AS signed_in, m.created_at,
    (SELECT count(*) FROM sessions s WHERE s.mitra_id = m.id AND s.status IN ('active', 'closing')) AS open_sessions"""

# -- the roster ------------------------------------------------------------------------------------------------------

# Each filter applies when its parameter is given; the keyset condition continues after the cursor's row.
_FILTERS = {
    "presence": "m.presence = :presence",
    "active": "m.active = :active",
    "pattern": "(m.display_name ILIKE :pattern OR m.phone LIKE :pattern)",
    "after_id": "(m.display_name, m.id) > (:after_name, CAST(:after_id AS uuid))",
}


def list_mitras(
    db: Database, *, presence: str | None, active: bool | None, search: str | None, cursor: str | None, limit: int
) -> tuple[list[Row], str | None]:
    """By name, then id; `search` matches any part of the name or the phone number."""
    after = read_cursor(cursor, str, uuid.UUID)
    bound: dict[str, Any] = {
        "presence": presence, "active": active, "pattern": contains(search) if search else None,
        "after_name": after[0] if after else None, "after_id": str(after[1]) if after else None,
    }  # fmt: skip
    where = [_FILTERS[name] for name, value in bound.items() if name in _FILTERS and value is not None]
    with db.transaction() as tx:
        rows = tx.all(
            f"""SELECT {_COLUMNS} FROM mitras m WHERE {" AND ".join(where or ["true"])}
                ORDER BY m.display_name, m.id LIMIT :limit""",
            {**bound, "limit": limit + 1},
        )
    return page(rows, limit, "display_name", "mitra_id")


def _one(tx: Tx, mitra_id: str, *, lock: bool = False) -> Row:
    row = tx.one(
        f"SELECT {_COLUMNS}, m.firebase_uid FROM mitras m WHERE m.id = CAST(:id AS uuid)"
        + (" FOR UPDATE OF m" if lock else ""),
        {"id": mitra_id},
    )
    if row is None:
        raise NotFound("no such mitra")
    return row


# -- changes ---------------------------------------------------------------------------------------------------------


def create(db: Database, admin_uid: str, *, phone: str, display_name: str) -> Row:
    """A phone number belongs to one mitra, and never to a mitra and a client at once."""
    with db.transaction() as tx:
        if tx.scalar("SELECT EXISTS (SELECT 1 FROM clients WHERE phone = :phone)", {"phone": phone}):
            raise Conflict("this phone number belongs to a client", code="phone_taken")
        mitra_id = tx.scalar(
            """INSERT INTO mitras (phone, display_name) VALUES (:phone, :name)
               ON CONFLICT (phone) DO NOTHING RETURNING id::text""",
            {"phone": phone, "name": display_name},
        )
        if mitra_id is None:
            raise Conflict("this phone number already belongs to a mitra", code="phone_taken")
        audit.record(tx, actor_uid=admin_uid, actor_role="admin", action="mitra.create", target=mitra_id,
                     old=None, new={"phone": phone, "display_name": display_name})  # fmt: skip
        return _one(tx, mitra_id)


def rename(ports: Ports, admin_uid: str, mitra_id: str, display_name: str) -> Row:
    """The clients of the mitra's running sessions see the new name at once."""
    with ports.db.transaction() as tx:
        before = _one(tx, mitra_id, lock=True)
        tx.execute(
            "UPDATE mitras SET display_name = :name, updated_at = now() WHERE id = CAST(:id AS uuid)",
            {"name": display_name, "id": mitra_id},
        )
        for session_id in _open_sessions(tx, mitra_id):
            projections.session(tx, session_id, {"mitra_name": display_name})
        audit.record(tx, actor_uid=admin_uid, actor_role="admin", action="mitra.update", target=mitra_id,
                     old={"display_name": before["display_name"]}, new={"display_name": display_name})  # fmt: skip
        after = _one(tx, mitra_id)
    project_after_commit(ports, tx.outbox_ids)
    return after


def deactivate(ports: Ports, idp: IdentityProvider, identities: IdentityCache, admin_uid: str, mitra_id: str) -> Row:
    """Offline at once (logged `deactivated`), open offers withdrawn, tokens revoked and the role claim dropped.
    Running sessions go on: the admin reroutes them."""
    with ports.db.transaction() as tx:
        before = _one(tx, mitra_id, lock=True)
        if before["active"]:
            _take_off_roster(tx, admin_uid, before)
        after = _one(tx, mitra_id)
    project_after_commit(ports, tx.outbox_ids)
    if before["firebase_uid"]:
        idp.revoke_sessions(before["firebase_uid"])
        idp.set_role(before["firebase_uid"], None)
        identities.forget(before["firebase_uid"])
    return after


def _take_off_roster(tx: Tx, admin_uid: str, before: Row) -> None:
    tx.execute(
        "UPDATE mitras SET active = false, presence = 'offline', updated_at = now() WHERE id = CAST(:id AS uuid)",
        {"id": before["mitra_id"]},
    )
    with joined(tx) as uow:
        if before["presence"] == "online":
            log_presence_change(uow, [before["mitra_id"]], "online", "offline", "deactivated")
        withdraw_open_offers(uow, [before["mitra_id"]])
    _audit_active(tx, admin_uid, before, active=False)


def reactivate(db: Database, admin_uid: str, mitra_id: str) -> Row:
    """The mitra signs in again (`mitra_login`) to get the role back; presence stays offline until they go online."""
    with db.transaction() as tx:
        before = _one(tx, mitra_id, lock=True)
        if not before["active"]:
            tx.execute(
                "UPDATE mitras SET active = true, updated_at = now() WHERE id = CAST(:id AS uuid)", {"id": mitra_id}
            )
            _audit_active(tx, admin_uid, before, active=True)
        return _one(tx, mitra_id)


def _audit_active(tx: Tx, admin_uid: str, before: Row, *, active: bool) -> None:
    audit.record(tx, actor_uid=admin_uid, actor_role="admin",
                 action="mitra.reactivate" if active else "mitra.deactivate", target=before["mitra_id"],
                 old={"active": before["active"], "presence": before["presence"]},
                 new={"active": active, "presence": "offline"})  # fmt: skip


def _open_sessions(tx: Tx, mitra_id: str) -> list[str]:
    rows = tx.all(
        "SELECT id::text FROM sessions WHERE mitra_id = CAST(:id AS uuid) AND status IN ('active', 'closing')",
        {"id": mitra_id},
    )
    return [row["id"] for row in rows]


# -- presence history ------------------------------------------------------------------------------------------------

# Online intervals are the stretches from a transition to `online` until the next transition (or, still open, until
# now or the end of the range). The last transition before the range says whether the range began online.
_ONLINE_BY_DAY = """
WITH transitions AS (
    (SELECT id, to_status, at FROM mitra_status_logs
     WHERE mitra_id = CAST(:mitra AS uuid) AND at < :starts ORDER BY at DESC, id DESC LIMIT 1)
    UNION ALL
    SELECT id, to_status, at FROM mitra_status_logs
    WHERE mitra_id = CAST(:mitra AS uuid) AND at >= :starts AND at < :ends
), spans AS (
    SELECT to_status, at AS span_start, lead(at) OVER (ORDER BY at, id) AS span_end FROM transitions
), online AS (
    SELECT GREATEST(span_start, :starts) AS span_start, LEAST(COALESCE(span_end, now()), now(), :ends) AS span_end
    FROM spans WHERE to_status = 'online'
), calendar AS (
    SELECT CAST(day AS date) AS day, day AT TIME ZONE :zone AS day_start,
           (day + interval '1 day') AT TIME ZONE :zone AS day_end
    FROM generate_series(CAST(:first AS timestamp), CAST(:last AS timestamp), interval '1 day') AS day
)
SELECT c.day,
       -- LEAST and GREATEST skip NULLs, so a day without an interval is left out of the sum explicitly.
       COALESCE(round(sum(EXTRACT(epoch FROM LEAST(o.span_end, c.day_end) - GREATEST(o.span_start, c.day_start)))
                      FILTER (WHERE o.span_start IS NOT NULL)), 0)::bigint AS online_s
FROM calendar c LEFT JOIN online o ON o.span_start < c.day_end AND o.span_end > c.day_start
GROUP BY c.day ORDER BY c.day
"""


def status_history(db: Database, mitra_id: str, first: date | None, last: date | None) -> dict[str, Any]:
    """Transitions in the range (Jakarta days, both included; the last seven days by default) and the time online
    on each day."""
    last = last or days.today(datetime.now(UTC))
    first = first or last - timedelta(days=6)
    bound = {"mitra": mitra_id, **_bounds(first, last)}
    with db.transaction() as tx:
        _one(tx, mitra_id)
        changes = tx.all(
            """SELECT at, from_status, to_status, reason FROM mitra_status_logs
               WHERE mitra_id = CAST(:mitra AS uuid) AND at >= :starts AND at < :ends ORDER BY at, id""",
            bound,
        )
        online = tx.all(_ONLINE_BY_DAY, {**bound, "first": first, "last": last, "zone": days.JAKARTA.key})
    return {"mitra_id": mitra_id, "from_date": first, "to_date": last, "changes": changes, "online_by_day": online,
            "total_online_s": sum(day["online_s"] for day in online)}  # fmt: skip


def _bounds(first: date, last: date) -> dict[str, datetime]:
    try:
        starts, ends = days.bounds(first, last)
    except days.InvalidRange as exc:
        raise InvalidRequest(str(exc), fields=[{"field": "from_date", "problem": str(exc)}]) from exc
    return {"starts": starts, "ends": ends}
