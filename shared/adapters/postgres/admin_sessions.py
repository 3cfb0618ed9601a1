"""The control center's sessions in SQL: finding them, moving a running one to another mitra, and crediting back the
unused time of one an admin ended."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from shared.adapters.postgres.admin_paging import after, where
from shared.adapters.postgres.pairing import AVAILABLE_MITRAS, available_params
from shared.adapters.postgres.sql import Sql
from shared.domain.admin import CreditBack, MitraTakingOver, Moved, PaidTime, SessionOnFile, SessionToReroute
from shared.domain.config import AppConfig
from shared.domain.session import Session, SessionStatus

_SESSIONS = """
    SELECT s.id::text AS session_id, s.request_id::text, s.status, s.kind, s.client_id::text,
           c.display_name AS client_name, c.alias_number, s.mitra_id::text, m.display_name AS mitra_name,
           s.started_at, s.ends_at, s.closed_at, s.next_seq AS messages
    FROM sessions s JOIN clients c ON c.id = s.client_id JOIN mitras m ON m.id = s.mitra_id"""

# Each applies when its parameter is given; the keyset continues newest first after the previous page's last row.
_FILTERS = {
    "status": "s.status = :status",
    "mitra_id": "s.mitra_id = CAST(:mitra_id AS uuid)",
    "client_id": "s.client_id = CAST(:client_id AS uuid)",
    "starts": "s.started_at >= :starts",
    "ends": "s.started_at < :ends",
    "after_id": "(s.started_at, s.id) < (CAST(:after_sort AS timestamptz), CAST(:after_id AS uuid))",
}


class AdminSessionsRepository:
    def __init__(self, sql: Sql) -> None:
        self._sql = sql

    def sessions(
        self,
        *,
        status: str | None,
        mitra_id: str | None,
        client_id: str | None,
        starts: datetime | None,
        ends: datetime | None,
        after_session: tuple[datetime, str] | None,
        limit: int,
    ) -> list[SessionOnFile]:
        """Newest first; those that started in [starts, ends)."""
        bound: dict[str, Any] = {
            "status": status,
            "mitra_id": mitra_id,
            "client_id": client_id,
            "starts": starts,
            "ends": ends,
            **after(after_session),
        }
        rows = self._sql.all(
            f"""{_SESSIONS} WHERE {where(_FILTERS, bound)}
                ORDER BY s.started_at DESC, s.id DESC LIMIT :limit""",
            {**bound, "limit": limit},
        )
        return [SessionOnFile(**row) for row in rows]

    def session(self, session_id: str) -> SessionOnFile | None:
        row = self._sql.one(f"{_SESSIONS} WHERE s.id = CAST(:id AS uuid)", {"id": session_id})
        return SessionOnFile(**row) if row else None

    # -- rerouting -------------------------------------------------------------------------------------------------

    def lock_session(self, session_id: str) -> SessionToReroute | None:
        """The session's row stays locked until the change ends: its participants' own changes (a message, the
        timer's expiry) wait for the reroute, and then see the new mitra."""
        row = self._sql.one(
            """SELECT s.id::text AS session_id, s.status, s.ends_at, s.version, s.mitra_id::text,
                      c.firebase_uid AS client_uid, m.firebase_uid AS mitra_uid, now() AS now
               FROM sessions s JOIN clients c ON c.id = s.client_id JOIN mitras m ON m.id = s.mitra_id
               WHERE s.id = CAST(:id AS uuid) FOR UPDATE OF s""",
            {"id": session_id},
        )
        if row is None:
            return None
        return SessionToReroute(
            session_id=row["session_id"],
            state=Session(SessionStatus(row["status"]), row["ends_at"], row["version"]),
            mitra_id=row["mitra_id"],
            client_uid=row["client_uid"],
            mitra_uid=row["mitra_uid"],
            now=row["now"],
        )

    def lock_mitra(self, mitra_id: str) -> MitraTakingOver | None:
        """The mitra's row stays locked until the change ends, which orders this reroute with the mitra's accepts
        (`PairingRepository.claim_offer` locks the same row): `is_available`, a later statement, counts every
        session they started."""
        row = self._sql.one(
            "SELECT firebase_uid, display_name FROM mitras WHERE id = CAST(:id AS uuid) FOR UPDATE", {"id": mitra_id}
        )
        return MitraTakingOver(**row) if row else None

    def is_available(self, mitra_id: str, config: AppConfig) -> bool:
        """The rule that decides who is offered a request (`shared.domain.pairing.is_available`), for one mitra:
        the same statement fragment as the offers'."""
        return bool(
            self._sql.scalar(
                f"""SELECT EXISTS (SELECT 1 FROM ({AVAILABLE_MITRAS}) AS available
                                   WHERE available.id = CAST(:id AS uuid))""",
                {**available_params(config), "id": mitra_id},
            )
        )

    def move(self, session_id: str, *, from_mitra: str, to_mitra: str, admin_uid: str) -> Moved:
        """The session is the new mitra's (the old mitra's typing flag goes with them); a `rerouted` closure row
        ends the old mitra's part. One statement."""
        row = self._sql.one(
            """WITH moved AS (
                   UPDATE sessions SET mitra_id = CAST(:to_mitra AS uuid), mitra_typing_at = NULL
                   WHERE id = CAST(:session AS uuid)
               )
               INSERT INTO session_closures (session_id, mitra_id, reason, closed_by)
               VALUES (CAST(:session AS uuid), CAST(:from_mitra AS uuid), 'rerouted', :admin)
               RETURNING id AS closure_id, at""",
            {"session": session_id, "from_mitra": from_mitra, "to_mitra": to_mitra, "admin": admin_uid},
        )
        assert row is not None
        return Moved(**row)

    # -- an admin ends a session ---------------------------------------------------------------------------------------

    def paid_time(self, session_id: str) -> PaidTime:
        """What the client paid for the session's whole time (`shared.domain.admin.credit_back`): its paid credit and
        the extensions paid for and applied, over the session's length (a free extension's time included)."""
        row = self._sql.one(
            """SELECT COALESCE((SELECT sum(t.amount) FROM customer_transactions t
                                WHERE t.status = 'paid'
                                  AND ((t.purpose = 'session' AND t.id = r.transaction_id)
                                       OR (t.purpose = 'extension' AND t.extension_id IN (
                                               SELECT e.id FROM session_extensions e
                                               WHERE e.session_id = s.id AND e.status = 'applied')))), 0)::int
                          AS amount,
                      GREATEST(0, extract(epoch FROM s.ends_at - s.started_at))::int AS duration_s
               FROM sessions s JOIN pairing_requests r ON r.id = s.request_id
               WHERE s.id = CAST(:id AS uuid)""",
            {"id": session_id},
        )
        return PaidTime(**row) if row else PaidTime(0, 0)

    def record_credit_back(self, session_id: str, client_id: str, credit: CreditBack, *, admin_uid: str) -> bool:
        """Once per session (the primary key of session_credit_backs); False when it was credited already."""
        return bool(
            self._sql.scalar(
                """INSERT INTO session_credit_backs (session_id, client_id, unused_s, amount, created_by)
                   VALUES (CAST(:session AS uuid), CAST(:client AS uuid), :unused_s, :amount, :admin)
                   ON CONFLICT (session_id) DO NOTHING RETURNING true""",
                {
                    "session": session_id,
                    "client": client_id,
                    "unused_s": credit.unused_s,
                    "amount": credit.amount,
                    "admin": admin_uid,
                },
            )
        )
