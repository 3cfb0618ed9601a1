"""A client's payment history in memory: the promises of shared/adapters/postgres/billing_history.py (newest first,
keyset on (created_at, id), only the client's own transactions)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from shared.domain.billing_history import HistoryEntry, ReceiptSource, RefundLine, refund_status

if TYPE_CHECKING:
    from tests.support.fakes import FakeDatabase

Row = dict[str, Any]


class FakeBillingHistoryRepository:
    def __init__(self, db: FakeDatabase) -> None:
        self._db = db

    def client_transactions(
        self, client_id: str, *, after: tuple[datetime, str] | None, limit: int
    ) -> list[HistoryEntry]:
        rows = [row for row in self._db.table("customer_transactions").values() if row["client_id"] == client_id]
        rows.sort(key=lambda row: (row["created_at"], str(row["id"])), reverse=True)
        if after is not None:
            rows = [row for row in rows if (row["created_at"], str(row["id"])) < after]
        return [self._entry(row) for row in rows[:limit]]

    def client_transaction(self, client_id: str, transaction_id: str) -> ReceiptSource | None:
        row = self._db.table("customer_transactions").get(transaction_id)
        if row is None or row["client_id"] != client_id:
            return None
        locale = self._db.table("clients").get(client_id, {}).get("locale", "id")
        return ReceiptSource(entry=self._entry(row), locale=locale)

    def _entry(self, row: Row) -> HistoryEntry:
        attempts = sorted(
            (attempt for key, attempt in self._db.table("credit_refunds").items() if key[0] == row["id"]),
            key=lambda attempt: attempt["attempt"],
        )
        return HistoryEntry(
            transaction_id=str(row["id"]),
            purpose=str(row["purpose"]),
            tier_id=row["tier_id"],
            duration_s=row["duration_s"],
            amount=row["amount"],
            currency=row["currency"],
            status=str(row["status"]),
            created_at=row["created_at"],
            paid_at=row.get("paid_at"),
            expired_at=row.get("expired_at"),
            payment_method=row.get("payment_method"),
            payment_channel=row.get("payment_channel"),
            xendit_invoice_id=row.get("xendit_invoice_id"),
            refunds=[
                RefundLine(
                    attempt=attempt["attempt"],
                    status=refund_status(str(attempt["status"])),
                    amount=row["amount"],
                    requested_at=attempt.get("created_at") or attempt["updated_at"],
                    updated_at=attempt["updated_at"],
                    failure_code=attempt.get("failure_code"),
                )
                for attempt in attempts
            ],
        )
