"""Session credits' SQL. Each move of a credit is one statement that both changes it (guarded by its current status,
as shared.domain.billing.CreditStatus allows) and appends its ledger row, so the two cannot disagree."""

from __future__ import annotations

from shared.adapters.postgres.sql import Sql
from shared.domain.billing import Balance, Credit, CreditedBack, CreditStatus

# What a credit is worth in the ledger: its tier's price, i.e. what Xendit charged plus what the credited-back
# balance paid (credit_back_uses); a credit the balance paid whole has a transaction amount of 0.
_CREDIT_VALUE = """t.amount + coalesce((SELECT u.amount FROM credit_back_uses u
                                         WHERE u.transaction_id = t.id AND u.kind = 'use'), 0)"""


class CreditsRepository:
    def __init__(self, sql: Sql) -> None:
        self._sql = sql

    def issue(self, transaction_id: str) -> None:
        """A paid transaction becomes one credit for its tier and the length it bought."""
        self._sql.execute(
            """INSERT INTO session_credits (transaction_id, client_id, tier_id, duration_s)
               SELECT id, client_id, tier_id, duration_s FROM customer_transactions
               WHERE id = CAST(:id AS uuid) AND status = 'paid'""",
            {"id": transaction_id},
        )

    def reserve(self, client_id: str, *, tier_id: str, request_id: str) -> Credit | None:
        """Hold the client's oldest available credit of this tier for one pairing request; None when there is none."""
        row = self._sql.one(
            f"""WITH reserved AS (
                   UPDATE session_credits c SET status = 'reserved', updated_at = now()
                   WHERE c.transaction_id = (
                           SELECT transaction_id FROM session_credits
                           WHERE client_id = CAST(:client AS uuid) AND tier_id = :tier AND status = 'available'
                           ORDER BY created_at LIMIT 1 FOR UPDATE SKIP LOCKED)
                     AND c.status = 'available'
                   RETURNING c.transaction_id, c.duration_s),
               logged AS (
                   INSERT INTO ledger_entries (transaction_id, client_id, kind, amount, currency, request_id)
                   SELECT t.id, t.client_id, 'credit_reserved', {_CREDIT_VALUE}, t.currency, CAST(:request AS uuid)
                   FROM reserved JOIN customer_transactions t ON t.id = reserved.transaction_id)
               SELECT transaction_id::text, duration_s FROM reserved""",
            {"client": client_id, "tier": tier_id, "request": request_id},
        )
        return Credit(row["transaction_id"], row["duration_s"]) if row else None

    def release(self, request_id: str) -> bool:
        """The request ended without a session: its credit is the client's again. False when it held none."""
        return self._move_held(request_id, to=CreditStatus.AVAILABLE, kind="credit_released")

    def consume(self, request_id: str) -> bool:
        """The request's session starts: its credit is used up. False when it held none."""
        return self._move_held(request_id, to=CreditStatus.CONSUMED, kind="credit_consumed")

    def _move_held(self, request_id: str, *, to: CreditStatus, kind: str) -> bool:
        CreditStatus.RESERVED.move(to)
        moved = self._sql.scalar(
            f"""WITH moved AS (
                   UPDATE session_credits c SET status = :to, updated_at = now()
                   FROM pairing_requests r
                   WHERE r.id = CAST(:request AS uuid) AND c.transaction_id = r.transaction_id
                     AND c.status = 'reserved'
                   RETURNING c.transaction_id),
               logged AS (
                   INSERT INTO ledger_entries (transaction_id, client_id, kind, amount, currency, request_id)
                   SELECT t.id, t.client_id, :kind, {_CREDIT_VALUE}, t.currency, CAST(:request AS uuid)
                   FROM moved JOIN customer_transactions t ON t.id = moved.transaction_id)
               SELECT count(*) FROM moved""",
            {"request": request_id, "to": to, "kind": kind},
        )
        return bool(moved)

    def balances(self, client_id: str) -> list[Balance]:
        """Available credits per tier (and length bought)."""
        rows = self._sql.all(
            """SELECT tier_id, duration_s, count(*) AS available FROM session_credits
               WHERE client_id = CAST(:client AS uuid) AND status = 'available'
               GROUP BY tier_id, duration_s ORDER BY tier_id, duration_s""",
            {"client": client_id},
        )
        return [Balance(**row) for row in rows]

    def credited_back(self, client_id: str) -> list[CreditedBack]:
        """The unused time of the client's sessions an admin ended with `credit_unused`, newest first."""
        rows = self._sql.all(
            """SELECT session_id::text, unused_s, amount, created_at FROM session_credit_backs
               WHERE client_id = CAST(:client AS uuid) ORDER BY created_at DESC""",
            {"client": client_id},
        )
        return [CreditedBack(**row) for row in rows]
