"""A client's own payments: the history of their transactions and the receipt of one they paid."""

from __future__ import annotations

from functions._http import Call, endpoint
from shared import bootstrap
from shared.domain.roles import Role
from shared.schemas.billing_history import (
    HistoryItem,
    PaymentHistoryPage,
    PaymentHistoryQuery,
    ReceiptQuery,
    ReceiptView,
)
from shared.services.billing import history


@endpoint(get=PaymentHistoryQuery, roles={Role.CLIENT}, response=PaymentHistoryPage, tag="billing")
def billing_history(call: Call[PaymentHistoryQuery]) -> PaymentHistoryPage:
    """The caller's transactions, newest first (keyset paged): tier, amount, status, when created and paid, how
    paid, and any refund."""
    client_id = call.caller.participant().account_id
    entries, cursor = history.history(bootstrap.ports(), client_id, cursor=call.body.cursor, limit=call.body.limit)
    return PaymentHistoryPage(
        transactions=[HistoryItem.model_validate(entry, from_attributes=True) for entry in entries],
        next_cursor=cursor,
    )


@endpoint(get=ReceiptQuery, roles={Role.CLIENT}, response=ReceiptView, errors={404, 409}, tag="billing")
def billing_receipt(call: Call[ReceiptQuery]) -> ReceiptView:
    """The receipt of one of the caller's paid transactions, with its labels in the caller's language: 404 for a
    transaction that is not the caller's, 409 `transaction_not_paid` for one not paid."""
    client_id = call.caller.participant().account_id
    receipt = history.receipt(bootstrap.ports(), client_id, str(call.body.transaction_id))
    return ReceiptView.model_validate(receipt, from_attributes=True)
