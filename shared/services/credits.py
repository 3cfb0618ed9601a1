"""Session credits: a paid `session` transaction is one credit for its tier, the client's until a session uses it
or an admin refunds it (so is a paid extension that could no longer be applied). Pairing reserves, releases and
consumes credits inside its own transactions.

Each move is one statement that both changes the credit (guarded by its current status) and appends its ledger
row, so the two cannot disagree.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.adapters.postgres.database import Tx
from shared.domain.billing import CreditStatus
from shared.errors import Conflict


@dataclass(frozen=True)
class Credit:
    transaction_id: str
    duration_s: int


@dataclass(frozen=True)
class Balance:
    tier_id: str
    duration_s: int
    available: int


def issue(tx: Tx, transaction_id: str) -> None:
    """A paid transaction becomes one credit for its tier and the length it bought."""
    tx.execute(
        """INSERT INTO session_credits (transaction_id, client_id, tier_id, duration_s)
           SELECT id, client_id, tier_id, duration_s FROM customer_transactions
           WHERE id = CAST(:id AS uuid) AND status = 'paid'""",
        {"id": transaction_id},
    )


def reserve(tx: Tx, client_id: str, *, tier_id: str, request_id: str) -> Credit | None:
    """Hold the client's oldest available credit for this tier for one pairing request; None when there is none."""
    row = tx.one(
        """WITH reserved AS (
               UPDATE session_credits c SET status = 'reserved', updated_at = now()
               WHERE c.transaction_id = (
                       SELECT transaction_id FROM session_credits
                       WHERE client_id = CAST(:client AS uuid) AND tier_id = :tier AND status = 'available'
                       ORDER BY created_at LIMIT 1 FOR UPDATE SKIP LOCKED)
                 AND c.status = 'available'
               RETURNING c.transaction_id, c.duration_s),
           logged AS (
               INSERT INTO ledger_entries (transaction_id, client_id, kind, amount, currency, request_id)
               SELECT t.id, t.client_id, 'credit_reserved', t.amount, t.currency, CAST(:request AS uuid)
               FROM reserved JOIN customer_transactions t ON t.id = reserved.transaction_id)
           SELECT transaction_id::text, duration_s FROM reserved""",
        {"client": client_id, "tier": tier_id, "request": request_id},
    )
    return Credit(row["transaction_id"], row["duration_s"]) if row else None


def release(tx: Tx, request_id: str) -> bool:
    """The request ended without a session: its credit is the client's again. False when it held none."""
    return _move_held(tx, request_id, to=CreditStatus.AVAILABLE, kind="credit_released")


def consume(tx: Tx, request_id: str) -> None:
    """The request's session starts: its credit is used up."""
    if not _move_held(tx, request_id, to=CreditStatus.CONSUMED, kind="credit_consumed"):
        # A paid request that reached a session without its credit would be a free session; refuse the start.
        raise Conflict("this request's payment is no longer held", code="credit_unavailable")


def _move_held(tx: Tx, request_id: str, *, to: CreditStatus, kind: str) -> bool:
    CreditStatus.RESERVED.move(to)
    moved = tx.scalar(
        """WITH moved AS (
               UPDATE session_credits c SET status = :to, updated_at = now()
               FROM pairing_requests r
               WHERE r.id = CAST(:request AS uuid) AND c.transaction_id = r.transaction_id AND c.status = 'reserved'
               RETURNING c.transaction_id),
           logged AS (
               INSERT INTO ledger_entries (transaction_id, client_id, kind, amount, currency, request_id)
               SELECT t.id, t.client_id, :kind, t.amount, t.currency, CAST(:request AS uuid)
               FROM moved JOIN customer_transactions t ON t.id = moved.transaction_id)
           SELECT count(*) FROM moved""",
        {"request": request_id, "to": to, "kind": kind},
    )
    return bool(moved)


def balances(tx: Tx, client_id: str) -> list[Balance]:
    """Available credits per tier (and length bought, should a tier's length have changed since)."""
    rows = tx.all(
        """SELECT tier_id, duration_s, count(*) AS available FROM session_credits
           WHERE client_id = CAST(:client AS uuid) AND status = 'available'
           GROUP BY tier_id, duration_s ORDER BY tier_id, duration_s""",
        {"client": client_id},
    )
    return [Balance(**row) for row in rows]
