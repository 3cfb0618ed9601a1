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
    transaction_id: str
    refund_id: str
    amount: int
    currency: str
    status: Literal["refunded"] = "refunded"


class TransactionRef(BaseModel):
    transaction_id: UUID
