"""Request and response models of billing's HTTP functions."""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, Field, model_validator

from shared.schemas import Model


class CheckoutBody(Model):
    """`extension_id` (from `extension_request`) is required for an extension and refused for a session."""

    tier_id: str = Field(min_length=1, max_length=40)
    purpose: Literal["session", "extension"]
    extension_id: UUID | None = None

    @model_validator(mode="after")
    def _extension_named_only_for_an_extension(self) -> CheckoutBody:
        if (self.purpose == "extension") != (self.extension_id is not None):
            raise ValueError("send extension_id with purpose extension, and only then")
        return self


class CheckoutReply(BaseModel):
    transaction_id: str
    # Xendit's payment page: open it in a browser; the payment lands at Firestore `payments/{transaction_id}`.
    invoice_url: str
    expires_at: datetime


class RefundBody(Model):
    transaction_id: UUID
    # Kept in the ledger and the audit log; Xendit is told the customer asked for it.
    reason: str = Field(min_length=3, max_length=500)


class RefundReply(BaseModel):
    """`refunded`: Xendit confirmed the money is back. `refunding`: Xendit accepted the refund and will confirm it by
    callback; the credit stays held until then, and goes back to the client if the refund fails (a new
    `admin_refund` then makes a new attempt). Asking again while it is `refunding` returns the same refund."""

    transaction_id: str
    refund_id: str
    amount: int
    currency: str
    status: Literal["refunded", "refunding"]


class TransactionRef(BaseModel):
    transaction_id: UUID


# -- admin_payment_events --------------------------------------------------------------------------------------------


class PaymentEventQuery(Model):
    status: Literal["reviewed", "unreviewed"] | None = None
    cursor: str | None = Field(default=None, max_length=300)
    limit: int = Field(default=50, ge=1, le=200)


class QuarantinedPayment(BaseModel):
    """A Xendit callback reporting money we could not match to what was ordered or refunded: nothing moved for it.
    `kind` says which callback: an invoice's (`external_id` is then our transaction id) or a refund's
    (`external_id` is the refund's reference_id). Its raw payload stays in PostgreSQL (it may carry the payer's
    details)."""

    event_id: int
    received_at: datetime
    kind: Literal["invoice", "refund"]
    reason: Literal["amount_mismatch", "currency_mismatch", "invoice_mismatch", "unknown_transaction",
                    "paid_after_expiry", "unknown_refund", "refund_mismatch", "refund_succeeded_after_failure",
                    "refund_failed_after_success"]  # fmt: skip
    transaction_id: str | None
    external_id: str | None
    xendit_invoice_id: str | None
    xendit_refund_id: str | None
    provider_status: str | None
    amount: float | None
    paid_amount: float | None
    currency: str | None
    reviewed_at: datetime | None
    reviewed_by: str | None
    review_note: str | None


class PaymentEventPage(BaseModel):
    """GET: one page of quarantined callbacks, newest first. POST: the callback as the review left it."""

    events: list[QuarantinedPayment]
    next_cursor: str | None = None


class ReviewPaymentEvent(Model):
    """Settled outside (with the client and in Xendit's dashboard, e.g. a refund): say what was done. Reviewing
    again keeps the first review."""

    action: Literal["review"]
    event_id: int = Field(ge=1, le=2**63 - 1)  # a bigserial
    note: str = Field(min_length=1, max_length=1000)
