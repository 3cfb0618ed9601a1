"""A client's own payments: their history (`billing_history`) and the receipt of one they paid (`billing_receipt`).
Reads only; another client's transaction is answered as one that does not exist (404, never 403: an id that is not
yours tells you nothing)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Protocol

from shared.config import get_settings
from shared.domain import billing_history as rules
from shared.domain.billing_history import HistoryEntry, Merchant, Receipt, ReceiptSource
from shared.errors import Conflict, NotFound
from shared.services.admin_paging import keyset, page
from shared.services.ports import Ports


class BillingHistoryRepository(Protocol):
    """A client's transactions (shared/adapters/postgres/billing_history.py), always scoped to that client."""

    def client_transactions(
        self, client_id: str, *, after: tuple[datetime, str] | None, limit: int
    ) -> list[HistoryEntry]: ...

    def client_transaction(self, client_id: str, transaction_id: str) -> ReceiptSource | None: ...


def history(ports: Ports, client_id: str, *, cursor: str | None, limit: int) -> tuple[list[HistoryEntry], str | None]:
    """Newest first, keyset on (created_at, transaction id)."""
    after = keyset(cursor, datetime.fromisoformat, uuid.UUID)
    with ports.uow(one_statement=True) as uow:
        rows = uow.billing_history.client_transactions(client_id, after=after, limit=limit + 1)
    return page(rows, limit, "created_at", "transaction_id")


def receipt(ports: Ports, client_id: str, transaction_id: str) -> Receipt:
    """The receipt of one of the client's paid transactions, in the client's language: 404 for a transaction that is
    not theirs, 409 `transaction_not_paid` for one not paid (yet, or ever)."""
    with ports.uow(one_statement=True) as uow:
        source = uow.billing_history.client_transaction(client_id, transaction_id)
    if source is None:
        raise NotFound("no such transaction")
    if not rules.has_receipt(source.entry):
        raise Conflict("only a paid transaction has a receipt", code="transaction_not_paid")
    settings = get_settings()
    merchant = Merchant(
        name=settings.receipt_merchant_name,
        address=settings.receipt_merchant_address,
        npwp=settings.receipt_merchant_npwp,
    )
    return rules.receipt(source, merchant, ppn_rate_percent=settings.receipt_ppn_rate_percent)
