"""Xendit invoices and refunds through the official xendit-python SDK, and what Xendit's invoice and refund callbacks
carry.

The SDK is imported on first use: most functions never touch payments and should not pay for loading it.
Locally `host` points at emulators/xendit_standin.py, which speaks the same protocol.
"""

from __future__ import annotations

import hmac
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shared.errors import InvalidRequest
from shared.schemas import invalid_fields

CURRENCY = "IDR"
# Invoice states in Xendit's words, as our transaction states.
_PAID_STATES = frozenset({"PAID", "SETTLED"})
_EXPIRED_STATES = frozenset({"EXPIRED"})
# Refund states in Xendit's words that end a refund without paying it out; any other but SUCCEEDED is still pending.
_REFUND_FAILED_STATES = frozenset({"FAILED", "CANCELLED"})
# The refund status each refund callback's event reports.
_REFUND_EVENT_STATUS = {"refund.succeeded": "SUCCEEDED", "refund.failed": "FAILED"}
# Connect, read. Creating an invoice normally answers in well under a second; a hung call must not eat the
# function's whole deadline.
REQUEST_TIMEOUT_S = (5.0, 20.0)


class PaymentProviderError(Exception):
    """Xendit refused or could not be reached. `retryable` says whether the same call may succeed later."""

    def __init__(self, message: str, *, retryable: bool, status: int | None = None, error_code: str = "") -> None:
        super().__init__(message)
        self.retryable = retryable
        self.status = status
        self.error_code = error_code


@dataclass(frozen=True)
class Invoice:
    invoice_id: str
    external_id: str
    invoice_url: str
    status: str
    amount: int
    currency: str
    expires_at: datetime

    @property
    def is_paid(self) -> bool:
        return self.status in _PAID_STATES


@dataclass(frozen=True)
class Refund:
    refund_id: str
    invoice_id: str | None
    amount: int
    currency: str
    status: str
    failure_code: str | None = None

    @property
    def outcome(self) -> Literal["succeeded", "failed", "pending"]:
        """In our words: the money is back, it never will be, or a refund callback will say."""
        if self.status == "SUCCEEDED":
            return "succeeded"
        return "failed" if self.status in _REFUND_FAILED_STATES else "pending"


class XenditInvoices:
    def __init__(self, *, secret_key: str, host: str = "https://api.xendit.co") -> None:
        self._secret_key = secret_key
        self._host = host
        self._client: Any = None
        self._apis: dict[str, Any] = {}
        self._lock = threading.Lock()

    def create_invoice(
        self,
        *,
        external_id: str,
        amount: int,
        description: str,
        invoice_duration_s: int,
        customer_email: str | None = None,
    ) -> Invoice:
        from xendit.invoice.model.create_invoice_request import CreateInvoiceRequest

        optional = {"payer_email": customer_email} if customer_email else {}
        request = CreateInvoiceRequest(
            external_id=external_id,
            amount=float(amount),
            description=description,
            invoice_duration=float(invoice_duration_s),
            currency=CURRENCY,
            **optional,
        )
        api = self._api("invoice")
        return _to_invoice(
            self._call(lambda: api.create_invoice(create_invoice_request=request, _request_timeout=REQUEST_TIMEOUT_S))
        )

    def get_invoice(self, invoice_id: str) -> Invoice:
        api = self._api("invoice")
        return _to_invoice(self._call(lambda: api.get_invoice_by_id(invoice_id, _request_timeout=REQUEST_TIMEOUT_S)))

    def expire_invoice(self, invoice_id: str) -> Invoice:
        api = self._api("invoice")
        return _to_invoice(self._call(lambda: api.expire_invoice(invoice_id, _request_timeout=REQUEST_TIMEOUT_S)))

    def refund_invoice(self, *, invoice_id: str, amount: int, reference_id: str, reason: str) -> Refund:
        """Xendit's Refund API (`POST /refunds`). `reference_id` doubles as the idempotency key, so asking again
        after a lost answer returns the same refund instead of paying the client back twice."""
        from xendit.refund.model.create_refund import CreateRefund

        request = CreateRefund(
            invoice_id=invoice_id, reference_id=reference_id, amount=float(amount), currency=CURRENCY, reason=reason
        )
        api = self._api("refund")
        return _to_refund(
            self._call(
                lambda: api.create_refund(
                    idempotency_key=reference_id, create_refund=request, _request_timeout=REQUEST_TIMEOUT_S
                )
            )
        )

    def get_refund(self, refund_id: str) -> Refund:
        """Xendit's Get Refund API (`GET /refunds/{refund_id}`): where a refund stands now, for when its refund
        callback never reached us."""
        api = self._api("refund")
        return _to_refund(self._call(lambda: api.get_refund(refund_id, _request_timeout=REQUEST_TIMEOUT_S)))

    def _api(self, name: str) -> Any:
        """One SDK client per instance, so its urllib3 pool keeps connections to Xendit open between calls."""
        with self._lock:
            if self._client is None:
                import xendit

                self._client = xendit.ApiClient(xendit.Configuration(host=self._host, api_key=self._secret_key))
            if name not in self._apis:
                from xendit.invoice import InvoiceApi
                from xendit.refund import RefundApi

                self._apis[name] = {"invoice": InvoiceApi, "refund": RefundApi}[name](self._client)
            return self._apis[name]

    @staticmethod
    def _call(operation: Callable[[], Any]) -> Any:
        from urllib3.exceptions import HTTPError as TransportError
        from xendit.exceptions import OpenApiException, XenditSdkException

        try:
            return operation()
        except XenditSdkException as exc:
            raise _refusal(exc) from exc
        except TransportError as exc:
            raise PaymentProviderError(f"Xendit unreachable: {type(exc).__name__}", retryable=True) from exc
        except json.JSONDecodeError as exc:
            # The SDK parses every error body as JSON; a proxy's HTML error page breaks that parse instead.
            raise PaymentProviderError("Xendit answered with a non-JSON error body", retryable=True) from exc
        except OpenApiException as exc:
            raise PaymentProviderError(f"Xendit's answer did not fit the SDK model: {exc}", retryable=False) from exc


def _refusal(exc: Any) -> PaymentProviderError:
    # The SDK reports the HTTP status as a string, and "0" when TLS failed before any answer.
    status = int(exc.status) if str(exc.status).isdigit() else 0
    retryable = status in (0, 429) or status >= 500
    return PaymentProviderError(
        f"Xendit {status} {exc.errorCode}: {exc.errorMessage}",
        retryable=retryable,
        status=status or None,
        error_code=str(exc.errorCode),
    )


def _to_invoice(answer: Any) -> Invoice:
    expiry: datetime = answer.expiry_date
    currency = answer.get("currency")
    return Invoice(
        invoice_id=str(answer.id),
        external_id=str(answer.external_id),
        invoice_url=str(answer.invoice_url),
        status=str(answer.status.value),
        amount=int(answer.amount),
        currency=str(currency.value) if currency is not None else CURRENCY,
        expires_at=expiry.replace(tzinfo=UTC) if expiry.tzinfo is None else expiry.astimezone(UTC),
    )


def _to_refund(answer: Any) -> Refund:
    # The SDK's Refund model predates `invoice_id` and `status`; they arrive as additional properties.
    invoice_id = answer.get("invoice_id")
    failure_code = answer.get("failure_code")
    return Refund(
        refund_id=str(answer.id),
        invoice_id=str(invoice_id) if invoice_id is not None else None,
        amount=int(answer.amount),
        currency=str(answer.get("currency") or CURRENCY),
        status=str(answer.get("status") or ""),
        failure_code=str(failure_code) if failure_code is not None else None,
    )


class InvoiceCallback(BaseModel):
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
    def transaction_status(self) -> str | None:
        """`paid` or `expired` in our words; None for anything else Xendit may send."""
        if self.status in _PAID_STATES:
            return "paid"
        return "expired" if self.status in _EXPIRED_STATES else None


def parse_invoice_callback(payload: dict[str, Any]) -> InvoiceCallback | None:
    """None when the body is not an invoice callback at all."""
    try:
        return InvoiceCallback.model_validate(payload)
    except ValidationError:
        return None


class RefundCallbackData(BaseModel):
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


class RefundCallback(BaseModel):
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


def callback_token_matches(received: str | None, expected: str) -> bool:
    """Xendit proves a callback is theirs only by the `x-callback-token` header; compare it in constant time."""
    if not received or not expected:
        return False
    return hmac.compare_digest(received.encode(), expected.encode())
