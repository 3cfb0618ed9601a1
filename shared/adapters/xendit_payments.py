"""Xendit invoices and refunds through the official xendit-python SDK, and the proof that a callback is Xendit's.

The SDK is imported on first use: most functions never touch payments and should not pay for loading it.
Locally `host` points at emulators/xendit_standin.py, which speaks the same protocol. What Xendit's answers mean
(`Invoice`, `Refund`, `PaymentProviderError`) is billing's domain (shared/domain/billing.py); what its callbacks
carry is the webhook's request schema (shared/schemas/billing.py).
"""

from __future__ import annotations

import hmac
import json
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from shared.domain.billing import CURRENCY, Invoice, PaymentProviderError, Refund

__all__ = ["Invoice", "PaymentProviderError", "Refund", "XenditInvoices", "callback_token_matches"]

# Connect, read. Creating an invoice normally answers in well under a second; a hung call must not eat the
# function's whole deadline.
REQUEST_TIMEOUT_S = (5.0, 20.0)


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


def callback_token_matches(received: str | None, expected: str) -> bool:
    """Xendit proves a callback is theirs only by the `x-callback-token` header; compare it in constant time."""
    if not received or not expected:
        return False
    return hmac.compare_digest(received.encode(), expected.encode())
