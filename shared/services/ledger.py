"""The ledger: one appended row per money movement (PostgreSQL refuses updates and deletes of it)."""

from __future__ import annotations

from shared.adapters.postgres.database import Tx


def record(
    tx: Tx,
    *,
    transaction_id: str,
    kind: str,
    external_ref: str | None = None,
    note: str | None = None,
    created_by: str | None = None,
) -> None:
    """A movement of the whole transaction's amount, which is what every payment and refund here moves."""
    tx.execute(
        """INSERT INTO ledger_entries
                  (transaction_id, client_id, kind, amount, currency, external_ref, note, created_by)
           SELECT id, client_id, :kind, amount, currency, :ref, :note, :by
           FROM customer_transactions WHERE id = CAST(:id AS uuid)""",
        {"id": transaction_id, "kind": kind, "ref": external_ref, "note": note, "by": created_by},
    )
