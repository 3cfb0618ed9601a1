"""A client's payment history and a receipt's transaction: reads only, each one statement, always scoped to the client
asking (another client's transaction is never found: `shared.services.billing.history`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from shared.adapters.postgres.database import Row
from shared.adapters.postgres.sql import Sql
from shared.domain.billing_history import HistoryEntry, ReceiptSource, RefundLine, refund_status

# A transaction with its refund attempts (credit_refunds, oldest first), in one statement.
_ENTRY = """
t.id::text AS transaction_id, t.purpose, t.tier_id, t.duration_s, t.amount, t.currency, t.status, t.created_at,
t.paid_at, t.expired_at, t.payment_method, t.payment_channel, t.xendit_invoice_id,
COALESCE((SELECT json_agg(json_build_object('attempt', r.attempt, 'status', r.status, 'failure_code', r.failure_code,
                                            'requested_at', r.created_at, 'updated_at', r.updated_at)
                          ORDER BY r.attempt)
          FROM credit_refunds r WHERE r.transaction_id = t.id), '[]'::json) AS refunds
"""


class BillingHistoryRepository:
    def __init__(self, sql: Sql) -> None:
        self._sql = sql

    def client_transactions(
        self, client_id: str, *, after: tuple[datetime, str] | None, limit: int
    ) -> list[HistoryEntry]:
        """The client's own transactions, newest first, after the keyset `after` (created_at, id)."""
        rows = self._sql.all(
            f"""SELECT {_ENTRY} FROM customer_transactions t
                WHERE t.client_id = CAST(:client AS uuid)
                  AND (CAST(:after_at AS timestamptz) IS NULL
                       OR (t.created_at, t.id) < (CAST(:after_at AS timestamptz), CAST(:after_id AS uuid)))
                ORDER BY t.created_at DESC, t.id DESC LIMIT :limit""",
            {
                "client": client_id,
                "after_at": after[0] if after else None,
                "after_id": after[1] if after else None,
                "limit": limit,
            },
        )
        return [_entry(row) for row in rows]

    def client_transaction(self, client_id: str, transaction_id: str) -> ReceiptSource | None:
        """One of the client's own transactions, with the client's language; None for an id that is not theirs."""
        row = self._sql.one(
            f"""SELECT {_ENTRY}, c.locale FROM customer_transactions t JOIN clients c ON c.id = t.client_id
                WHERE t.id = CAST(:id AS uuid) AND t.client_id = CAST(:client AS uuid)""",
            {"id": transaction_id, "client": client_id},
        )
        if row is None:
            return None
        locale = row.pop("locale")
        return ReceiptSource(entry=_entry(row), locale=locale)


def _entry(row: Row) -> HistoryEntry:
    refunds = row.pop("refunds")
    return HistoryEntry(**row, refunds=[_refund(refund, row["amount"]) for refund in refunds])


def _refund(refund: dict[str, Any], amount: int) -> RefundLine:
    # A refund gives the whole transaction back (shared/services/billing/refunds.py).
    return RefundLine(
        attempt=refund["attempt"],
        status=refund_status(refund["status"]),
        amount=amount,
        requested_at=datetime.fromisoformat(refund["requested_at"]),
        updated_at=datetime.fromisoformat(refund["updated_at"]),
        failure_code=refund["failure_code"],
    )
