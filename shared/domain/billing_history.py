"""A client's payment history and the receipt of a paid transaction: what they show, and how a receipt is written
(its number, its time in Jakarta, its tax line, its labels in the client's language).

Read by shared/services/billing/history.py from shared/adapters/postgres/billing_history.py; the receipt's merchant
and tax settings come from the environment (shared/config.py `receipt_*`, docs/operations.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from shared.domain import texts

# Western Indonesia Time: Jakarta keeps UTC+7 all year (no daylight saving), so a fixed offset is exact and needs no
# time zone database on the instance.
JAKARTA = timezone(timedelta(hours=7), "WIB")
RECEIPT_PREFIX = "HB"
# What Xendit is told of every refund (shared/services/billing/refunds.py REFUND_REASON), as a code.
REFUND_REASON = "requested_by_customer"


@dataclass(frozen=True)
class RefundLine:
    """One attempt at giving a transaction's money back (`credit_refunds`), as its client sees it: `pending` while
    Xendit is asked or pays it out, `succeeded` once the money is back, `failed` when it could not be paid out (the
    credit is the client's again; `failure_code` is Xendit's)."""

    attempt: int
    status: str
    amount: int
    requested_at: datetime
    updated_at: datetime
    failure_code: str | None = None
    reason: str = REFUND_REASON


def refund_status(stored: str) -> str:
    """`credit_refunds.status` as the client sees it."""
    return {"requested": "pending", "pending": "pending", "succeeded": "succeeded"}.get(stored, "failed")


@dataclass(frozen=True)
class HistoryEntry:
    """One of a client's transactions (`customer_transactions`), newest first in the history."""

    transaction_id: str
    purpose: str
    tier_id: str
    duration_s: int
    amount: int
    currency: str
    status: str
    created_at: datetime
    paid_at: datetime | None
    expired_at: datetime | None
    payment_method: str | None
    payment_channel: str | None
    xendit_invoice_id: str | None = None
    refunds: list[RefundLine] = field(default_factory=list)

    @property
    def minutes(self) -> int:
        return self.duration_s // 60


@dataclass(frozen=True)
class ReceiptSource:
    """A transaction as a receipt is written from it, with the client's language, read in one statement."""

    entry: HistoryEntry
    locale: str


@dataclass(frozen=True)
class Merchant:
    """Who sells: printed on every receipt (settings `receipt_merchant_*`)."""

    name: str
    address: str
    npwp: str


@dataclass(frozen=True)
class TaxLine:
    rate_percent: float
    amount: int


@dataclass(frozen=True)
class Receipt:
    receipt_number: str
    locale: str
    paid_at: datetime
    paid_at_local: str
    merchant: Merchant
    description: str
    tier_id: str
    minutes: int
    subtotal: int
    tax: TaxLine | None
    total: int
    currency: str
    payment_method: str | None
    payment_channel: str | None
    transaction_id: str
    xendit_invoice_id: str | None
    external_id: str
    refunds: list[RefundLine]
    labels: dict[str, str]


def receipt_number(transaction_id: str, paid_at: datetime) -> str:
    """Stable, derived from what never changes: the Jakarta date the money arrived and the transaction's id (its
    first 12 hex digits), e.g. `HB-20261207-1A2B3C4D5E6F`. The same transaction always prints the same number."""
    day = paid_at.astimezone(JAKARTA).strftime("%Y%m%d")
    return f"{RECEIPT_PREFIX}-{day}-{transaction_id.replace('-', '')[:12].upper()}"


def tax_split(total: int, rate_percent: float) -> tuple[int, TaxLine | None]:
    """Prices are what the client pays, tax included: with a PPN rate the total is split into the base (subtotal)
    and the tax it contains, rounded to the rupiah; a rate of 0 (the default: no PPN charged) prints no tax line."""
    if rate_percent <= 0:
        return total, None
    tax = round(total * rate_percent / (100 + rate_percent))
    return total - tax, TaxLine(rate_percent=rate_percent, amount=tax)


RECEIPT_LABELS = (
    "title",
    "merchant",
    "npwp",
    "number",
    "date",
    "description",
    "subtotal",
    "total",
    "payment_method",
    "transaction_id",
    "invoice_id",
    "refunds",
)


def has_receipt(entry: HistoryEntry) -> bool:
    """A receipt is written for money received only (a pending or expired checkout has none)."""
    return entry.status == "paid" and entry.paid_at is not None


def receipt(source: ReceiptSource, merchant: Merchant, *, ppn_rate_percent: float) -> Receipt:
    """The receipt of a paid transaction (`has_receipt`), in the client's language."""
    entry = source.entry
    assert entry.paid_at is not None, "has_receipt"
    locale = texts.locale_or_default(source.locale)
    subtotal, tax = tax_split(entry.amount, ppn_rate_percent)
    labels = {label: texts.text(f"receipt.{label}", locale) for label in RECEIPT_LABELS}
    if tax is not None:
        labels["tax"] = texts.text("receipt.tax", locale, rate=f"{tax.rate_percent:g}")
    local = entry.paid_at.astimezone(JAKARTA)
    return Receipt(
        receipt_number=receipt_number(entry.transaction_id, entry.paid_at),
        locale=locale,
        paid_at=local,
        paid_at_local=f"{local:%d-%m-%Y %H:%M} {texts.text('receipt.timezone', locale)}",
        merchant=merchant,
        description=texts.text(f"receipt.item.{entry.purpose}", locale, tier=entry.tier_id, minutes=entry.minutes),
        tier_id=entry.tier_id,
        minutes=entry.minutes,
        subtotal=subtotal,
        tax=tax,
        total=entry.amount,
        currency=entry.currency,
        payment_method=entry.payment_method,
        payment_channel=entry.payment_channel,
        transaction_id=entry.transaction_id,
        xendit_invoice_id=entry.xendit_invoice_id,
        external_id=entry.transaction_id,  # the external_id checkout gives Xendit's invoice
        refunds=entry.refunds,
        labels=labels,
    )
