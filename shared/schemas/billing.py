"""Request and response models of billing's HTTP functions, and what Xendit's callbacks to our webhook carry."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Literal
from uuid import UUID

from pydantic import ConfigDict, Field, ValidationError, model_validator

from shared.domain.billing import TransactionStatus, transaction_status_of
from shared.errors import InvalidRequest
from shared.schemas import Model, Reply, invalid_fields


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


class CheckoutReply(Reply):
    """`pending`: pay `amount` at `invoice_url`. `paid`: the client's credited-back balance paid the whole price
    (`credit_back_used`), there is no invoice, and the session credit (or the extension) is delivered already."""

    transaction_id: str
    # Xendit's payment page: open it in a browser; the payment lands at Firestore `payments/{transaction_id}`.
    # None when `status` is paid.
    invoice_url: str | None
    expires_at: datetime
    status: Literal["pending", "paid"] = "pending"
    # What the invoice charges (IDR): the tier's price less `credit_back_used`, what the balance paid.
    amount: int = 0
    credit_back_used: int = 0


class RefundBody(Model):
    transaction_id: UUID
    # Kept in the ledger and the audit log; Xendit is told the customer asked for it.
    reason: str = Field(min_length=3, max_length=500)


class RefundReply(Reply):
    """`refunded`: Xendit confirmed the money is back. `refunding`: Xendit accepted the refund and will confirm it by
    callback; the credit stays held until then, and goes back to the client if the refund fails (a new
    `admin_refund` then makes a new attempt). Asking again while it is `refunding` returns the same refund."""

    transaction_id: str
    # None for a credit the credited-back balance paid whole: refunded at once to that balance, not through Xendit.
    refund_id: str | None
    # What Xendit gives back: only the part paid through its invoice.
    amount: int
    currency: str
    status: Literal["refunded", "refunding"]


class TransactionRef(Reply):
    transaction_id: UUID


# -- admin_payment_events --------------------------------------------------------------------------------------------


class PaymentEventQuery(Model):
    status: Literal["reviewed", "unreviewed"] | None = None
    cursor: str | None = Field(default=None, max_length=300)
    limit: int = Field(default=50, ge=1, le=200)


class QuarantinedPayment(Reply):
    """A Xendit callback reporting money we could not match to what was ordered or refunded: nothing moved for it.
    `kind` says which callback: an invoice's (`external_id` is then our transaction id) or a refund's
    (`external_id` is the refund's reference_id). Its raw payload stays in PostgreSQL (it may carry the payer's
    details)."""

    event_id: int
    received_at: datetime
    kind: Literal["invoice", "refund"]
    reason: Literal[
        "amount_mismatch",
        "currency_mismatch",
        "invoice_mismatch",
        "unknown_transaction",
        "paid_after_expiry",
        "unknown_refund",
        "refund_mismatch",
        "refund_succeeded_after_failure",
        "refund_failed_after_success",
    ]
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


class PaymentEventPage(Reply):
    """GET: one page of quarantined callbacks, newest first. POST: the callback as the review left it."""

    events: list[QuarantinedPayment]
    next_cursor: str | None = None


class ReviewPaymentEvent(Model):
    """Settled outside (with the client and in Xendit's dashboard, e.g. a refund): say what was done. Reviewing
    again keeps the first review."""

    action: Literal["review"]
    event_id: int = Field(ge=1, le=2**63 - 1)  # a bigserial
    note: str = Field(min_length=1, max_length=1000)


# -- xendit_webhook: what Xendit's callbacks carry -------------------------------------------------------------------

# The refund status each refund callback's event reports.
_REFUND_EVENT_STATUS = {"refund.succeeded": "SUCCEEDED", "refund.failed": "FAILED"}


class InvoiceCallback(Reply):
    """The fields of Xendit's invoice callback we act on; Xendit adds fields freely, so the rest is ignored."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    id: str
    external_id: str
    status: str
    amount: Decimal
    paid_amount: Decimal | None = None
    currency: str | None = None
    payment_method: str | None = None
    payment_channel: str | None = None

    @property
    def transaction_status(self) -> TransactionStatus | None:
        """`paid` or `expired` in our words; None for anything else Xendit may send."""
        return transaction_status_of(self.status)


def parse_invoice_callback(payload: dict[str, Any]) -> InvoiceCallback | None:
    """None when the body is not an invoice callback at all."""
    try:
        return InvoiceCallback.model_validate(payload)
    except ValidationError:
        return None


class RefundCallbackData(Reply):
    """The refund a refund callback reports on, as far as we act on it."""

    model_config = ConfigDict(extra="ignore", frozen=True, strict=True)

    id: str = Field(min_length=1)
    status: Literal["SUCCEEDED", "FAILED"]
    amount: float = Field(gt=0, allow_inf_nan=False)
    currency: str = Field(min_length=1)
    # What we sent as reference_id; Xendit's schema lets it be absent, and the refund id then finds the attempt.
    reference_id: str | None = Field(default=None, min_length=1)
    invoice_id: str | None = None
    failure_code: str | None = None


class RefundCallback(Reply):
    """Xendit's `refund.succeeded` / `refund.failed` callback: an envelope naming the event around the refund."""

    model_config = ConfigDict(extra="ignore", frozen=True, strict=True)

    event: Literal["refund.succeeded", "refund.failed"]
    data: RefundCallbackData

    @property
    def succeeded(self) -> bool:
        return self.event == "refund.succeeded"


def is_refund_callback(payload: dict[str, Any]) -> bool:
    """Refund callbacks name a `refund.*` event; invoice callbacks name none."""
    event = payload.get("event")
    return isinstance(event, str) and event.startswith("refund.")


def parse_refund_callback(payload: dict[str, Any]) -> RefundCallback:
    """The callback, or 400 naming each field that is missing or not as Xendit sends it."""
    try:
        callback = RefundCallback.model_validate(payload)
    except ValidationError as exc:
        raise InvalidRequest("this is not a refund callback as Xendit sends it", fields=invalid_fields(exc)) from exc
    expected = _REFUND_EVENT_STATUS[callback.event]
    if callback.data.status != expected:
        fields = [{"field": "data.status", "problem": f"must be {expected} for {callback.event}"}]
        raise InvalidRequest("the refund's status contradicts the event", fields=fields)
    return callback
