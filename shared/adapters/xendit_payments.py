"""Xendit invoices through the official xendit-python SDK, and the check of Xendit's callback token.

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
from typing import Any

CURRENCY = "IDR"
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


class XenditInvoices:
    def __init__(self, *, secret_key: str, host: str = "https://api.xendit.co") -> None:
        self._secret_key = secret_key
        self._host = host
        self._api: Any = None
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
        return self._call(
            lambda api: api.create_invoice(create_invoice_request=request, _request_timeout=REQUEST_TIMEOUT_S)
        )

    def get_invoice(self, invoice_id: str) -> Invoice:
        return self._call(lambda api: api.get_invoice_by_id(invoice_id, _request_timeout=REQUEST_TIMEOUT_S))

    def expire_invoice(self, invoice_id: str) -> Invoice:
        return self._call(lambda api: api.expire_invoice(invoice_id, _request_timeout=REQUEST_TIMEOUT_S))

    def _invoice_api(self) -> Any:
        """One SDK client per instance, so its urllib3 pool keeps connections to Xendit open between calls."""
        with self._lock:
            if self._api is None:
                import xendit
                from xendit.invoice import InvoiceApi

                configuration = xendit.Configuration(host=self._host, api_key=self._secret_key)
                self._api = InvoiceApi(xendit.ApiClient(configuration))
            return self._api

    def _call(self, operation: Callable[[Any], Any]) -> Invoice:
        from urllib3.exceptions import HTTPError as TransportError
        from xendit.exceptions import OpenApiException, XenditSdkException

        try:
            answer = operation(self._invoice_api())
        except XenditSdkException as exc:
            raise _refusal(exc) from exc
        except TransportError as exc:
            raise PaymentProviderError(f"Xendit unreachable: {type(exc).__name__}", retryable=True) from exc
        except json.JSONDecodeError as exc:
            # The SDK parses every error body as JSON; a proxy's HTML error page breaks that parse instead.
            raise PaymentProviderError("Xendit answered with a non-JSON error body", retryable=True) from exc
        except OpenApiException as exc:
            raise PaymentProviderError(f"Xendit's answer did not fit the SDK model: {exc}", retryable=False) from exc
        return _to_invoice(answer)


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


def callback_token_matches(received: str | None, expected: str) -> bool:
    """Xendit proves a callback is theirs only by the `x-callback-token` header; compare it in constant time."""
    if not received or not expected:
        return False
    return hmac.compare_digest(received.encode(), expected.encode())
