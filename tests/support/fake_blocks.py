"""Blocks in memory: the promises of shared/adapters/postgres/blocks.py (one block per side and pair)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any

from shared.domain.blocks import BlockOnFile, BlockOnRecord
from shared.domain.parties import SessionParties
from tests.support.fake_parties import session_parties

if TYPE_CHECKING:
    from tests.support.fakes import FakeDatabase

Row = dict[str, Any]


class FakeBlocksRepository:
    def __init__(self, db: FakeDatabase) -> None:
        self._db = db

    def _rows(self) -> dict[Any, Row]:
        return self._db.table("blocks")

    def parties(self, session_id: str) -> SessionParties | None:
        return session_parties(self._db, session_id)

    def lock_mitra(self, mitra_id: str) -> None:
        pass

    def add_once(self, parties: SessionParties, blocked_by: str) -> str:
        for row in self._rows().values():
            if (row["client_id"], row["mitra_id"], row["blocked_by"]) == (
                parties.client_id,
                parties.mitra_id,
                blocked_by,
            ):
                return str(row["id"])
        block_id = str(uuid.uuid4())
        self._rows()[block_id] = {
            "id": block_id,
            "client_id": parties.client_id,
            "mitra_id": parties.mitra_id,
            "blocked_by": blocked_by,
            "session_id": parties.session_id,
            "created_at": self._db.now,
            "seq": self._db.next_id(),
        }
        return block_id

    def remove_own(self, block_id: str, blocked_by: str, account_id: str) -> bool:
        row = self._rows().get(block_id)
        if row is None or row["blocked_by"] != blocked_by or row[f"{blocked_by}_id"] != account_id:
            return False
        del self._rows()[block_id]
        return True

    def of(self, blocked_by: str, account_id: str) -> list[BlockOnFile]:
        rows = sorted(self._rows().values(), key=lambda r: r["seq"], reverse=True)
        return [self._on_file(r) for r in rows if r["blocked_by"] == blocked_by and r[f"{blocked_by}_id"] == account_id]

    def blocks_request(self, request_id: str, mitra_id: str) -> bool:
        client_id = self._db.table("pairing_requests")[request_id]["client_id"]
        return any(r["client_id"] == client_id and r["mitra_id"] == mitra_id for r in self._rows().values())

    def on_record(
        self, *, client_id: str | None, mitra_id: str | None, after_block: tuple[datetime, str] | None, limit: int
    ) -> list[BlockOnRecord]:
        rows = sorted(self._rows().values(), key=lambda r: (r["created_at"], r["id"]), reverse=True)
        chosen = [
            r
            for r in rows
            if client_id in (None, r["client_id"])
            and mitra_id in (None, r["mitra_id"])
            and (after_block is None or (r["created_at"], r["id"]) < after_block)
        ]
        return [self._on_record(r) for r in chosen[:limit]]

    def remove(self, block_id: str) -> BlockOnRecord | None:
        row = self._rows().pop(block_id, None)
        return None if row is None else self._on_record(row)

    def _on_record(self, row: Row) -> BlockOnRecord:
        return BlockOnRecord(
            block_id=row["id"],
            session_id=row["session_id"],
            blocked_by=row["blocked_by"],
            client_id=row["client_id"],
            client_name=self._db.table("clients")[row["client_id"]]["display_name"],
            mitra_id=row["mitra_id"],
            mitra_name=self._db.table("mitras")[row["mitra_id"]]["display_name"],
            created_at=row["created_at"],
        )

    def _on_file(self, row: Row) -> BlockOnFile:
        client = self._db.table("clients")[row["client_id"]]
        return BlockOnFile(
            block_id=row["id"],
            session_id=row["session_id"],
            blocked_by=row["blocked_by"],
            mitra_name=self._db.table("mitras")[row["mitra_id"]]["display_name"],
            client_name=client["display_name"],
            anonymous=client["anonymous"],
            alias_number=client["alias_number"],
            created_at=row["created_at"],
        )
