"""Refunds' SQL: each attempt at giving a credit's money back, and the credit it holds. Every move is guarded by the
status it was decided on (shared.domain.billing.RefundStatus and CreditStatus say which moves exist), so a move
decided on a row that changed meanwhile changes nothing."""

from __future__ import annotations

from typing import Any

from shared.adapters.postgres.database import Row
from shared.adapters.postgres.sql import Sql
from shared.domain.billing import Charged, CreditStatus, RefundStatus, StoredAttempt, TransactionStatus

_ATTEMPT_COLUMNS = """r.transaction_id::text, r.attempt, r.reference_id, r.status, r.xendit_refund_id AS refund_id,
                      r.failure_code, r.reason, r.requested_by, t.xendit_invoice_id AS invoice_id, t.amount,
                      t.currency"""

_LOCKED_ATTEMPT = f"""SELECT {_ATTEMPT_COLUMNS}
                      FROM credit_refunds r JOIN customer_transactions t ON t.id = r.transaction_id
                      WHERE {{where}} FOR UPDATE OF r"""

# Refunds pending for a while and not looked up lately, oldest look first, marked as looked up in the same statement:
# a sweep running at the same time takes others (SKIP LOCKED), and a refund still pending at Xendit goes to the back
# of the line.
_CLAIM_DUE = f"""
UPDATE credit_refunds r SET checked_at = now()
FROM customer_transactions t
WHERE t.id = r.transaction_id AND (r.transaction_id, r.attempt) IN (
    SELECT transaction_id, attempt FROM credit_refunds
    WHERE status = 'pending' AND updated_at < now() - make_interval(secs => :after)
      AND (checked_at IS NULL OR checked_at < now() - make_interval(secs => :every))
    ORDER BY coalesce(checked_at, updated_at) LIMIT :limit FOR UPDATE SKIP LOCKED)
RETURNING {_ATTEMPT_COLUMNS}
"""


class RefundsRepository:
    def __init__(self, sql: Sql) -> None:
        self._sql = sql

    def charged(self, transaction_id: str) -> Charged | None:
        row = self._sql.one(
            "SELECT status, amount, currency FROM customer_transactions WHERE id = CAST(:id AS uuid)",
            {"id": transaction_id},
        )
        return Charged(TransactionStatus(row["status"]), row["amount"], row["currency"]) if row else None

    def locked_credit(self, transaction_id: str) -> CreditStatus | None:
        """The credit's status, its row locked until the change ends: one credit's refund requests open one attempt
        between them."""
        found = self._sql.scalar(
            "SELECT status FROM session_credits WHERE transaction_id = CAST(:id AS uuid) FOR UPDATE",
            {"id": transaction_id},
        )
        return CreditStatus(found) if found is not None else None

    def move_credit(self, transaction_id: str, *, from_status: CreditStatus, to: CreditStatus) -> bool:
        """The rule `CreditStatus.can_become`, saved only if the credit is still as the move was decided on."""
        moved = self._sql.execute(
            """UPDATE session_credits SET status = :to, updated_at = now()
               WHERE transaction_id = CAST(:id AS uuid) AND status = :from""",
            {"id": transaction_id, "from": from_status, "to": from_status.move(to)},
        )
        return moved > 0

    def refund_made(self, transaction_id: str) -> str | None:
        """Xendit's id of the refund that gave this credit's money back, as the ledger recorded it."""
        found = self._sql.scalar(
            "SELECT external_ref FROM ledger_entries WHERE transaction_id = CAST(:id AS uuid) AND kind = 'refund'",
            {"id": transaction_id},
        )
        return str(found) if found is not None else None

    def open_attempt(self, transaction_id: str) -> StoredAttempt | None:
        """The attempt still open for this credit (at most one: the unique index credit_refunds_one_open)."""
        row = self._sql.one(
            f"""SELECT {_ATTEMPT_COLUMNS} FROM credit_refunds r JOIN customer_transactions t ON t.id = r.transaction_id
                WHERE r.transaction_id = CAST(:id AS uuid) AND r.status IN ('requested', 'pending')""",
            {"id": transaction_id},
        )
        return _attempt(row) if row else None

    def last_attempt(self, transaction_id: str) -> int:
        """The number of this credit's latest attempt; 0 before the first."""
        return int(
            self._sql.scalar(
                "SELECT coalesce(max(attempt), 0) FROM credit_refunds WHERE transaction_id = CAST(:id AS uuid)",
                {"id": transaction_id},
            )
        )

    def add_attempt(
        self, transaction_id: str, *, number: int, reference_id: str, reason: str, requested_by: str
    ) -> StoredAttempt:
        row = self._sql.one(
            f"""WITH r AS (
                    INSERT INTO credit_refunds (transaction_id, attempt, reference_id, reason, requested_by)
                    VALUES (CAST(:id AS uuid), :attempt, :reference, :reason, :uid) RETURNING *)
                SELECT {_ATTEMPT_COLUMNS} FROM r JOIN customer_transactions t ON t.id = r.transaction_id""",
            {"id": transaction_id, "attempt": number, "reference": reference_id, "reason": reason, "uid": requested_by},
        )
        assert row is not None
        return _attempt(row)

    def locked_attempt(self, transaction_id: str, number: int) -> StoredAttempt | None:
        """Locked, so callbacks about one refund and Xendit's answer to the admin apply one at a time, each seeing
        what the one before did."""
        return self._locked(
            "r.transaction_id = CAST(:id AS uuid) AND r.attempt = :attempt", {"id": transaction_id, "attempt": number}
        )

    def locked_attempt_by_reference(self, reference_id: str) -> StoredAttempt | None:
        return self._locked("r.reference_id = :key", {"key": reference_id})

    def locked_attempt_by_refund(self, refund_id: str) -> StoredAttempt | None:
        return self._locked("r.xendit_refund_id = :key", {"key": refund_id})

    def _locked(self, where: str, params: dict[str, Any]) -> StoredAttempt | None:
        row = self._sql.one(_LOCKED_ATTEMPT.format(where=where), params)
        return _attempt(row) if row else None

    def move_attempt(self, settled: StoredAttempt, *, from_status: RefundStatus) -> bool:
        """The rule `RefundStatus.can_become`, saved only if the attempt is still as the move was decided on."""
        moved = self._sql.execute(
            """UPDATE credit_refunds SET status = :to, xendit_refund_id = :refund, failure_code = :code,
                   updated_at = now()
               WHERE transaction_id = CAST(:id AS uuid) AND attempt = :attempt AND status = :from""",
            {
                "id": settled.transaction_id,
                "attempt": settled.attempt,
                "from": from_status,
                "to": from_status.move(settled.status),
                "refund": settled.refund_id,
                "code": settled.failure_code,
            },
        )
        return moved > 0

    def claim_due(self, *, pending_for_s: int, looked_up_every_s: int, limit: int) -> list[StoredAttempt]:
        """Refunds pending for `pending_for_s` and not looked up within `looked_up_every_s` (see _CLAIM_DUE)."""
        rows = self._sql.all(_CLAIM_DUE, {"after": pending_for_s, "every": looked_up_every_s, "limit": limit})
        return [_attempt(row) for row in rows]


def _attempt(row: Row) -> StoredAttempt:
    return StoredAttempt(**{**row, "status": RefundStatus(row["status"])})
