"""Request and response models of a client's payment history (`billing_history`) and receipts (`billing_receipt`)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import Field

from shared.schemas import Model, Reply


class PaymentHistoryQuery(Model):
    cursor: str | None = Field(default=None, max_length=300)
    limit: int = Field(default=20, ge=1, le=100)


class RefundView(Reply):
    """One attempt at giving the transaction's money back (an admin's refund of an unused credit): `pending` while
    Xendit pays it out, `succeeded` once the money is back, `failed` when it could not be (the credit is the client's
    again; `failure_code` is Xendit's). `reason` is a code: `requested_by_customer`."""

    attempt: int
    status: Literal["pending", "succeeded", "failed"]
    amount: int = Field(description="In rupiah: a refund gives the whole transaction back.")
    reason: str
    failure_code: str | None
    requested_at: datetime
    updated_at: datetime


class HistoryItem(Reply):
    transaction_id: str
    purpose: Literal["session", "extension"]
    tier_id: str
    minutes: int
    amount: int = Field(description="In rupiah.")
    currency: str
    status: Literal["pending", "paid", "expired"]
    created_at: datetime
    paid_at: datetime | None
    expired_at: datetime | None
    payment_method: str | None = Field(description="As Xendit reported it when paid, e.g. EWALLET, BANK_TRANSFER.")
    payment_channel: str | None = Field(description="As Xendit reported it when paid, e.g. OVO, BCA.")
    refunds: list[RefundView]


class PaymentHistoryPage(Reply):
    """The caller's own transactions, newest first; pass `next_cursor` as `cursor` for the next page (null: the
    last page)."""

    transactions: list[HistoryItem]
    next_cursor: str | None = None


class ReceiptQuery(Model):
    transaction_id: UUID


class ReceiptMerchant(Reply):
    name: str
    address: str
    npwp: str


class ReceiptTax(Reply):
    """PPN contained in the total (prices are tax-inclusive)."""

    rate_percent: float
    amount: int


class ReceiptView(Reply):
    """A paid transaction's receipt, for the app to render. `labels` are the captions in the client's language
    (`locale`): title, merchant, npwp, number, date, description, subtotal, tax (only with a tax line), total,
    payment_method, transaction_id, invoice_id, refunds."""

    receipt_number: str = Field(description="Stable: HB-<Jakarta date paid, YYYYMMDD>-<12 hex of the transaction id>.")
    locale: str
    paid_at: datetime = Field(description="When the money arrived, at Jakarta's offset (+07:00).")
    paid_at_local: str = Field(description="The same, as printed: DD-MM-YYYY HH:MM WIB.")
    merchant: ReceiptMerchant
    description: str
    tier_id: str
    minutes: int
    subtotal: int
    tax: ReceiptTax | None = Field(description="Null when no PPN is charged (the default).")
    total: int = Field(description="In rupiah: what the client paid.")
    currency: str
    payment_method: str | None
    payment_channel: str | None
    transaction_id: str
    xendit_invoice_id: str | None
    external_id: str = Field(description="The id our invoice carried at Xendit (the transaction id).")
    refunds: list[RefundView]
    labels: dict[str, str]
