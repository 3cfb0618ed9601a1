"""Blocks in SQL: made from a session, lifted by their maker or an admin; whether a request's client and a mitra are
blocked. The offers' exclusion of blocked pairs is NOT_BLOCKED, beside the availability rule in pairing.py."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from shared.adapters.postgres.admin_paging import after, where
from shared.adapters.postgres.parties import session_parties
from shared.adapters.postgres.sql import Sql
from shared.domain.blocks import BlockOnFile, BlockOnRecord
from shared.domain.parties import SessionParties

# A block as the control center reads it, from `blocks b` (or the rows a statement just deleted, named `b` too).
_ON_RECORD = """b.id::text AS block_id, b.session_id::text, b.blocked_by, b.client_id::text,
                c.display_name AS client_name, b.mitra_id::text, m.display_name AS mitra_name, b.created_at"""
_SIDES = "JOIN clients c ON c.id = b.client_id JOIN mitras m ON m.id = b.mitra_id"
_FILTERS = {
    "client": "b.client_id = CAST(:client AS uuid)",
    "mitra": "b.mitra_id = CAST(:mitra AS uuid)",
    "after_id": "(b.created_at, b.id) < (CAST(:after_sort AS timestamptz), CAST(:after_id AS uuid))",
}


class BlocksRepository:
    def __init__(self, sql: Sql) -> None:
        self._sql = sql

    def parties(self, session_id: str) -> SessionParties | None:
        return session_parties(self._sql, session_id)

    def lock_mitra(self, mitra_id: str) -> None:
        """The mitra's row stays locked until the change ends (see `shared.services.blocks.block`)."""
        self._sql.execute("SELECT 1 FROM mitras WHERE id = CAST(:id AS uuid) FOR UPDATE", {"id": mitra_id})

    def add_once(self, parties: SessionParties, blocked_by: str) -> str:
        """The block's id: the one made now, or the one this side made before."""
        return str(
            self._sql.scalar(
                """WITH added AS (
                       INSERT INTO blocks (client_id, mitra_id, blocked_by, session_id)
                       VALUES (CAST(:client AS uuid), CAST(:mitra AS uuid), :by, CAST(:session AS uuid))
                       ON CONFLICT (client_id, mitra_id, blocked_by) DO NOTHING RETURNING id)
                   SELECT id::text FROM added
                   UNION ALL
                   SELECT id::text FROM blocks
                   WHERE client_id = CAST(:client AS uuid) AND mitra_id = CAST(:mitra AS uuid) AND blocked_by = :by
                   LIMIT 1""",
                {
                    "client": parties.client_id,
                    "mitra": parties.mitra_id,
                    "by": blocked_by,
                    "session": parties.session_id,
                },
            )
        )

    def remove_own(self, block_id: str, blocked_by: str, account_id: str) -> bool:
        column = "client_id" if blocked_by == "client" else "mitra_id"
        return bool(
            self._sql.one(
                f"""DELETE FROM blocks
                    WHERE id = CAST(:id AS uuid) AND blocked_by = :by AND {column} = CAST(:account AS uuid)
                    RETURNING id""",
                {"id": block_id, "by": blocked_by, "account": account_id},
            )
        )

    def of(self, blocked_by: str, account_id: str) -> list[BlockOnFile]:
        """The blocks this side made, newest first."""
        column = "client_id" if blocked_by == "client" else "mitra_id"
        rows = self._sql.all(
            f"""SELECT b.id::text AS block_id, b.session_id::text, b.blocked_by, m.display_name AS mitra_name,
                       c.display_name AS client_name, c.anonymous, c.alias_number, b.created_at
                FROM blocks b JOIN clients c ON c.id = b.client_id JOIN mitras m ON m.id = b.mitra_id
                WHERE b.blocked_by = :by AND b.{column} = CAST(:account AS uuid)
                ORDER BY b.created_at DESC, b.id DESC""",
            {"by": blocked_by, "account": account_id},
        )
        return [BlockOnFile(**row) for row in rows]

    def blocks_request(self, request_id: str, mitra_id: str) -> bool:
        """The rule `shared.domain.blocks.BLOCKED`: the request's client and the mitra, either of whom blocked the
        other."""
        return bool(
            self._sql.scalar(
                """SELECT EXISTS (SELECT 1 FROM blocks b JOIN pairing_requests r ON r.client_id = b.client_id
                                  WHERE r.id = CAST(:request AS uuid) AND b.mitra_id = CAST(:mitra AS uuid))""",
                {"request": request_id, "mitra": mitra_id},
            )
        )

    # -- the control center ------------------------------------------------------------------------------------------

    def on_record(
        self, *, client_id: str | None, mitra_id: str | None, after_block: tuple[datetime, str] | None, limit: int
    ) -> list[BlockOnRecord]:
        """Newest first; of one client, one mitra, one pair, or everyone."""
        bound: dict[str, Any] = {"client": client_id, "mitra": mitra_id, **after(after_block)}
        rows = self._sql.all(
            f"""SELECT {_ON_RECORD} FROM blocks b {_SIDES} WHERE {where(_FILTERS, bound)}
                ORDER BY b.created_at DESC, b.id DESC LIMIT :limit""",
            {**bound, "limit": limit},
        )
        return [BlockOnRecord(**row) for row in rows]

    def remove(self, block_id: str) -> BlockOnRecord | None:
        """The block as it was, now gone; None if there was none."""
        row = self._sql.one(
            f"""WITH gone AS (DELETE FROM blocks WHERE id = CAST(:id AS uuid) RETURNING *)
                SELECT {_ON_RECORD} FROM gone b {_SIDES}""",
            {"id": block_id},
        )
        return BlockOnRecord(**row) if row else None
