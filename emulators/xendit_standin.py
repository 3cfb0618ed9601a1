"""Local stand-in for Xendit's Invoice and Refund APIs, as the official xendit-python SDK calls them, plus invoice
and refund callbacks.

Xendit cannot be reached from development machines or CI, so this speaks the same wire protocol (paths, basic auth
with the secret key, error JSON, invoice and refund JSON, `x-callback-token` callbacks with retries) and adds
`/_standin/...` controls that do what a customer, a payment channel or Xendit's dashboard would: pay, expire, replay a
callback, list refunds, have an invoice's refunds answer PENDING (or FAILED) and later complete a pending refund,
which sends its `refund.succeeded` / `refund.failed` callback (or, to play a callback that never reached us, keeps it
for a later replay; `GET /refunds/<id>` then reports the refund as completed, as Xendit's Get Refund would).

    python -m emulators.xendit_standin --host 127.0.0.1 --port 8091 \
        --callback-url http://127.0.0.1:5001/payments/xendit-callback --callback-token TOKEN [--secret-key KEY]
"""

from __future__ import annotations

import argparse
import copy
import functools
import hmac
import logging
import re
import secrets
import signal
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, NoReturn

import requests
from flask import Flask, Response, jsonify, request
from markupsafe import escape
from werkzeug.serving import make_server

log = logging.getLogger("xendit_standin")

DEFAULT_SECRET_KEY = "xnd_development_standin"
# Xendit ids (invoices, businesses) are 24-hex Mongo ObjectIds; this one stands for "our" business account.
BUSINESS_ID = "64a1b2c3d4e5f6a7b8c9d0e1"
DEFAULT_DURATION_S = 86_400
MAX_DURATION_S = 31_536_000
SWEEP_INTERVAL_S = 0.1
CALLBACK_TIMEOUT_S = 10.0
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

# What a fresh IDR invoice offers; the SDK's model requires every one of these lists to be present.
BANKS = ("BCA", "BNI", "BRI", "MANDIRI", "PERMATA")
RETAIL_OUTLETS = ("ALFAMART", "INDOMARET")
EWALLETS = ("OVO", "DANA", "SHOPEEPAY", "LINKAJA")
DEFAULT_CHANNEL = {
    "BANK_TRANSFER": "BCA",
    "EWALLET": "OVO",
    "QR_CODE": "QRIS",
    "RETAIL_OUTLET": "ALFAMART",
    "CREDIT_CARD": "CREDIT_CARD",
}
REFUND_REASONS = ("FRAUDULENT", "DUPLICATE", "REQUESTED_BY_CUSTOMER", "CANCELLATION", "OTHERS")
# How a new refund answers: at once (e-wallets, cards), PENDING until the channel settles it, or FAILED.
REFUND_ANSWERS = ("SUCCEEDED", "PENDING", "FAILED")
REFUND_EVENTS = {"SUCCEEDED": "refund.succeeded", "FAILED": "refund.failed"}
DEFAULT_FAILURE_CODE = "REFUND_FAILED"
# Money paid into a virtual account or in cash at a retail outlet has no way back through the Refund API.
UNREFUNDABLE_METHODS = ("BANK_TRANSFER", "RETAIL_OUTLET")


class XenditError(Exception):
    """An answer in Xendit's error shape: `{"error_code": ..., "message": ...}`."""

    def __init__(self, status: int, error_code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.error_code = error_code
        self.message = message


def validation_error(message: str) -> XenditError:
    return XenditError(400, "API_VALIDATION_ERROR", message)


def timestamp(moment: datetime) -> str:
    """Xendit writes instants as UTC with milliseconds and a Z: 2024-03-22T17:57:54.578Z."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def describe(payload: dict[str, Any]) -> dict[str, Any]:
    """What a callback is about, for the delivery log: an invoice's state, or a refund's event."""
    if "event" in payload:
        refund = payload["data"]
        return {
            "event": payload["event"],
            "refund_id": refund["id"],
            "reference_id": refund["reference_id"],
            "status": refund["status"],
        }
    return {"invoice_id": payload["id"], "external_id": payload["external_id"], "status": payload["status"]}


class CallbackDispatcher:
    """Posts callbacks like Xendit does: token header, retried with backoff until a 2xx or out of attempts.

    Each delivery runs in its own thread so the API call (or the expiry sweep) that caused it returns at once and a
    slow or failing receiver never holds up other invoices' callbacks.
    """

    def __init__(self, *, url: str, token: str, attempts: int, delay_s: float) -> None:
        self._url = url
        self._token = token
        self._attempts = attempts
        self._delay_s = delay_s
        self._lock = threading.Lock()
        self._log: list[dict[str, Any]] = []

    def dispatch(self, payload: dict[str, Any], webhook_id: str) -> None:
        threading.Thread(target=self._deliver, args=(payload, webhook_id), daemon=True).start()

    def attempts(self) -> list[dict[str, Any]]:
        with self._lock:
            return copy.deepcopy(self._log)

    def _deliver(self, payload: dict[str, Any], webhook_id: str) -> None:
        about = describe(payload)
        for attempt in range(1, self._attempts + 1):
            status, error = self._post(payload, webhook_id)
            with self._lock:
                self._log.append(
                    {
                        "webhook_id": webhook_id,
                        **about,
                        "attempt": attempt,
                        "response_status": status,
                        "error": error,
                        "at": timestamp(datetime.now(UTC)),
                    }
                )
            delivered = status is not None and 200 <= status < 300
            log.info(
                "callback %s attempt=%d/%d answer=%s",
                about,
                attempt,
                self._attempts,
                status if status is not None else error,
            )
            if delivered:
                return
            if attempt < self._attempts:
                time.sleep(self._delay_s * 2 ** (attempt - 1))
        log.warning("callback %s gave up", about)

    def _post(self, payload: dict[str, Any], webhook_id: str) -> tuple[int | None, str | None]:
        headers = {"x-callback-token": self._token, "webhook-id": webhook_id}
        try:
            response = requests.post(self._url, json=payload, headers=headers, timeout=CALLBACK_TIMEOUT_S)
        except requests.RequestException as exc:
            return None, type(exc).__name__
        return response.status_code, None


class InvoiceBook:
    """All invoices in memory. Every state change happens under one lock; callbacks are sent after it is released."""

    def __init__(self, *, base_url: str, merchant_name: str, dispatcher: CallbackDispatcher) -> None:
        self._base_url = base_url
        self._merchant_name = merchant_name
        self._dispatcher = dispatcher
        self._lock = threading.Lock()
        self._invoices: dict[str, dict[str, Any]] = {}
        # The last callback per invoice, kept with its webhook id so a replay is the very same event.
        self._last_callback: dict[str, tuple[dict[str, Any], str]] = {}
        self._refunds: dict[str, dict[str, Any]] = {}
        # Idempotency-Key → (the request it came with, the refund it created).
        self._refund_keys: dict[str, tuple[dict[str, Any], str]] = {}
        # Invoice id → how its new refunds answer, when not at once (`SUCCEEDED`).
        self._refund_answers: dict[str, tuple[str, str | None]] = {}
        # The last callback per refund, kept with its webhook id so a replay is the very same event.
        self._last_refund_callback: dict[str, tuple[dict[str, Any], str]] = {}

    def create(self, body: Any) -> dict[str, Any]:
        fields = parse_create_request(body)
        now = datetime.now(UTC)
        invoice_id = secrets.token_hex(12)
        amount = fields["amount"]
        invoice: dict[str, Any] = {
            "id": invoice_id,
            "external_id": fields["external_id"],
            "user_id": BUSINESS_ID,
            "status": "PENDING",
            "merchant_name": self._merchant_name,
            "merchant_profile_picture_url": f"{self._base_url}/static/merchant.png",
            "amount": amount,
            "expiry_date": timestamp(now + timedelta(seconds=fields["invoice_duration"])),
            "invoice_url": f"{self._base_url}/web/{invoice_id}",
            "available_banks": [
                {
                    "bank_code": bank,
                    "collection_type": "POOL",
                    "transfer_amount": amount,
                    "bank_branch": "Virtual Account",
                    "account_holder_name": self._merchant_name.upper(),
                    "identity_amount": 0,
                }
                for bank in BANKS
            ],
            "available_retail_outlets": [{"retail_outlet_name": outlet} for outlet in RETAIL_OUTLETS],
            "available_ewallets": [{"ewallet_type": wallet} for wallet in EWALLETS],
            "available_qr_codes": [{"qr_code_type": "QRIS"}],
            "available_direct_debits": [],
            "available_paylaters": [],
            "should_exclude_credit_card": False,
            "should_send_email": fields["should_send_email"],
            "created": timestamp(now),
            "updated": timestamp(now),
            "currency": "IDR",
        }
        for optional in ("payer_email", "description", "success_redirect_url", "failure_redirect_url", "metadata"):
            if fields.get(optional) is not None:
                invoice[optional] = fields[optional]
        with self._lock:
            self._invoices[invoice_id] = invoice
            snapshot = copy.deepcopy(invoice)
        log.info("created invoice=%s external_id=%s amount=%s", invoice_id, invoice["external_id"], amount)
        return snapshot

    def get(self, invoice_id: str) -> dict[str, Any]:
        with self._lock:
            return copy.deepcopy(self._find(invoice_id))

    def search(self, *, external_id: str | None, statuses: list[str], limit: int) -> list[dict[str, Any]]:
        with self._lock:
            matches = [
                inv
                for inv in self._invoices.values()
                if (external_id is None or inv["external_id"] == external_id)
                and (not statuses or inv["status"] in statuses)
            ]
            matches.sort(key=lambda inv: inv["created"], reverse=True)
            return copy.deepcopy(matches[:limit])

    def expire(self, invoice_id: str) -> dict[str, Any]:
        """The API's manual expiry: only an unpaid invoice can be expired; expiring it twice is harmless."""
        with self._lock:
            invoice = self._find(invoice_id)
            if invoice["status"] in ("PAID", "SETTLED"):
                raise XenditError(404, "INVOICE_NOT_FOUND_ERROR", "Could not find invoice by id")
            callback = self._mark_expired(invoice) if invoice["status"] == "PENDING" else None
            snapshot = copy.deepcopy(invoice)
        self._send(callback)
        return snapshot

    def expire_due(self) -> None:
        now = datetime.now(UTC)
        with self._lock:
            due = [
                inv
                for inv in self._invoices.values()
                if inv["status"] == "PENDING" and datetime.fromisoformat(inv["expiry_date"]) <= now
            ]
            callbacks = [self._mark_expired(inv) for inv in due]
        for callback in callbacks:
            self._send(callback)

    def pay(self, invoice_id: str, options: dict[str, Any]) -> dict[str, Any]:
        method = options.get("payment_method", "BANK_TRANSFER")
        if not isinstance(method, str) or method not in DEFAULT_CHANNEL:
            raise validation_error(f'"payment_method" must be one of [{", ".join(DEFAULT_CHANNEL)}]')
        channel = options.get("payment_channel", DEFAULT_CHANNEL[method])
        if not isinstance(channel, str) or not channel:
            raise validation_error('"payment_channel" must be a string')
        paid_amount = options.get("paid_amount")
        if paid_amount is not None and (not is_number(paid_amount) or paid_amount <= 0):
            raise validation_error('"paid_amount" must be a positive number')
        with self._lock:
            invoice = self._find(invoice_id)
            if invoice["status"] != "PENDING":
                raise XenditError(409, "INVOICE_NOT_PENDING", f"Invoice is {invoice['status']}, not PENDING")
            callback = self._mark_paid(invoice, method, channel, paid_amount)
            snapshot = copy.deepcopy(invoice)
        self._send(callback)
        return snapshot

    def replay(self, invoice_id: str) -> dict[str, Any]:
        with self._lock:
            self._find(invoice_id)
            callback = self._last_callback.get(invoice_id)
        if callback is None:
            raise XenditError(404, "CALLBACK_NOT_FOUND", "This invoice has not sent a callback yet")
        log.info("replaying callback invoice=%s webhook_id=%s", invoice_id, callback[1])
        self._send(callback)
        return callback[0]

    def refund(self, body: Any, idempotency_key: str | None) -> dict[str, Any]:
        """Refund (part of) a paid invoice. The same Idempotency-Key with the same body returns the same refund."""
        fields = parse_refund_request(body)
        with self._lock:
            if idempotency_key is not None and idempotency_key in self._refund_keys:
                first_body, refund_id = self._refund_keys[idempotency_key]
                if first_body != fields:
                    raise XenditError(409, "IDEMPOTENCY_ERROR", "Idempotency key has been used with a different body")
                return copy.deepcopy(self._refunds[refund_id])
            refund = self._new_refund(self._refundable(fields), fields)
            self._refunds[refund["id"]] = refund
            if idempotency_key is not None:
                self._refund_keys[idempotency_key] = (fields, refund["id"])
            snapshot = copy.deepcopy(refund)
        log.info("refunded invoice=%s amount=%s refund=%s", refund["invoice_id"], refund["amount"], refund["id"])
        return snapshot

    def get_refund(self, refund_id: str) -> dict[str, Any]:
        with self._lock:
            return copy.deepcopy(self._find_refund(refund_id))

    def answer_refunds(self, invoice_id: str, options: dict[str, Any]) -> dict[str, Any]:
        """How this invoice's refunds answer from now on: SUCCEEDED at once (the default), PENDING until completed
        here, or FAILED at once with a failure code."""
        status = options.get("status")
        if status not in REFUND_ANSWERS:
            raise validation_error(f'"status" must be one of [{", ".join(REFUND_ANSWERS)}]')
        failure_code = parse_failure_code(options) if status == "FAILED" else None
        with self._lock:
            self._find(invoice_id)
            self._refund_answers[invoice_id] = (status, failure_code)
        return {"invoice_id": invoice_id, "status": status, "failure_code": failure_code}

    def complete_refund(self, refund_id: str, options: dict[str, Any]) -> dict[str, Any]:
        """The channel settles a PENDING refund: it succeeds, or fails with a failure code; its callback follows,
        unless `"callback": false` loses it (it is still kept, so a replay can deliver it late)."""
        status = options.get("status")
        if not isinstance(status, str) or status not in REFUND_EVENTS:
            raise validation_error(f'"status" must be one of [{", ".join(REFUND_EVENTS)}]')
        failure_code = parse_failure_code(options) if status == "FAILED" else None
        send = options.get("callback", True)
        if not isinstance(send, bool):
            raise validation_error('"callback" must be a boolean')
        with self._lock:
            refund = self._find_refund(refund_id)
            if refund["status"] != "PENDING":
                raise XenditError(409, "REFUND_NOT_PENDING", f"Refund is {refund['status']}, not PENDING")
            now = timestamp(datetime.now(UTC))
            refund.update(status=status, failure_code=failure_code, updated=now)
            payload = {
                "event": REFUND_EVENTS[status],
                "business_id": BUSINESS_ID,
                "created": now,
                "data": copy.deepcopy(refund),
            }
            callback = (payload, secrets.token_hex(16))
            self._last_refund_callback[refund_id] = callback
        log.info(
            "completed refund=%s status=%s failure_code=%s callback=%s",
            refund_id,
            status,
            failure_code,
            "sent" if send else "lost",
        )
        if send:
            self._send(callback)
        return copy.deepcopy(payload)

    def replay_refund(self, refund_id: str) -> dict[str, Any]:
        with self._lock:
            self._find_refund(refund_id)
            callback = self._last_refund_callback.get(refund_id)
        if callback is None:
            raise XenditError(404, "CALLBACK_NOT_FOUND", "This refund has not sent a callback yet")
        log.info("replaying callback refund=%s webhook_id=%s", refund_id, callback[1])
        self._send(callback)
        return callback[0]

    def refunds(self) -> list[dict[str, Any]]:
        with self._lock:
            return copy.deepcopy(list(self._refunds.values()))

    def _refundable(self, fields: dict[str, Any]) -> dict[str, Any]:
        invoice = self._invoices.get(fields["invoice_id"])
        if invoice is None:
            raise XenditError(404, "DATA_NOT_FOUND", "Invoice not found")
        if invoice["status"] not in ("PAID", "SETTLED"):
            raise XenditError(400, "INELIGIBLE_TRANSACTION", f"Invoice is {invoice['status']}, not paid")
        if invoice["payment_method"] in UNREFUNDABLE_METHODS:
            raise XenditError(400, "REFUND_NOT_SUPPORTED", f"Refund is not supported for {invoice['payment_method']}")
        if fields["currency"] not in (None, invoice["currency"]):
            raise validation_error(f'"currency" must be {invoice["currency"]}')
        return invoice

    def _new_refund(self, invoice: dict[str, Any], fields: dict[str, Any]) -> dict[str, Any]:
        # A failed refund gave nothing back, so its amount can be refunded again.
        refunded = sum(
            r["amount"] for r in self._refunds.values() if r["invoice_id"] == invoice["id"] and r["status"] != "FAILED"
        )
        remaining = invoice["paid_amount"] - refunded
        amount = fields["amount"] if fields["amount"] is not None else remaining
        if amount > remaining:
            raise XenditError(400, "MAXIMUM_REFUND_AMOUNT_REACHED", f"At most {remaining} can still be refunded")
        now = timestamp(datetime.now(UTC))
        # Refunds answer SUCCEEDED at once unless the invoice was told otherwise (`/_standin/.../refund_answer`); a
        # PENDING one is settled by `/_standin/refunds/<id>/complete`, which sends its refund callback.
        status, failure_code = self._refund_answers.get(invoice["id"], ("SUCCEEDED", None))
        return {
            "id": f"rfd-{uuid.uuid4()}",
            "payment_request_id": None,
            "invoice_id": invoice["id"],
            "amount": amount,
            "payment_method_type": invoice["payment_method"],
            "channel_code": invoice["payment_channel"],
            "currency": invoice["currency"],
            "status": status,
            "reason": fields["reason"],
            "reference_id": fields["reference_id"],
            "failure_code": failure_code,
            "refund_fee_amount": 0,
            "country": "ID",
            "created": now,
            "updated": now,
            "metadata": fields["metadata"],
        }

    def _find(self, invoice_id: str) -> dict[str, Any]:
        invoice = self._invoices.get(invoice_id)
        if invoice is None:
            raise XenditError(404, "INVOICE_NOT_FOUND_ERROR", "Could not find invoice by id")
        return invoice

    def _find_refund(self, refund_id: str) -> dict[str, Any]:
        refund = self._refunds.get(refund_id)
        if refund is None:
            raise XenditError(404, "DATA_NOT_FOUND", "Refund not found")
        return refund

    def _mark_expired(self, invoice: dict[str, Any]) -> tuple[dict[str, Any], str]:
        invoice["status"] = "EXPIRED"
        invoice["updated"] = timestamp(datetime.now(UTC))
        log.info("expired invoice=%s external_id=%s", invoice["id"], invoice["external_id"])
        return self._remember_callback(invoice, {})

    def _mark_paid(
        self, invoice: dict[str, Any], method: str, channel: str, paid_amount: float | None
    ) -> tuple[dict[str, Any], str]:
        now = timestamp(datetime.now(UTC))
        paid = paid_amount if paid_amount is not None else invoice["amount"]
        payment: dict[str, Any] = {
            "payment_method": method,
            "payment_channel": channel,
            "paid_amount": paid,
            "paid_at": now,
        }
        if method == "BANK_TRANSFER":
            payment["bank_code"] = channel
            payment["payment_destination"] = "".join(secrets.choice("0123456789") for _ in range(12))
        elif method == "RETAIL_OUTLET":
            payment["payment_destination"] = secrets.token_hex(5).upper()
        invoice.update(payment, status="PAID", updated=now)
        log.info(
            "paid invoice=%s external_id=%s paid_amount=%s via=%s", invoice["id"], invoice["external_id"], paid, channel
        )
        # No fee rules are configured here, so the merchant receives what the customer paid.
        return self._remember_callback(
            invoice, {"is_high": False, **payment, "adjusted_received_amount": paid, "fees_paid_amount": 0}
        )

    def _remember_callback(self, invoice: dict[str, Any], extra: dict[str, Any]) -> tuple[dict[str, Any], str]:
        payload: dict[str, Any] = {
            "id": invoice["id"],
            "external_id": invoice["external_id"],
            "user_id": invoice["user_id"],
            "status": invoice["status"],
            "merchant_name": invoice["merchant_name"],
            "amount": invoice["amount"],
            "created": invoice["created"],
            "updated": invoice["updated"],
            "currency": invoice["currency"],
            **extra,
        }
        for optional in ("payer_email", "description"):
            if optional in invoice:
                payload[optional] = invoice[optional]
        callback = (payload, secrets.token_hex(16))
        self._last_callback[invoice["id"]] = callback
        return callback

    def _send(self, callback: tuple[dict[str, Any], str] | None) -> None:
        if callback is not None:
            self._dispatcher.dispatch(copy.deepcopy(callback[0]), callback[1])


def parse_create_request(body: Any) -> dict[str, Any]:
    """Checks a create-invoice body as Xendit does and returns it normalised (IDR amounts are whole rupiah)."""
    if not isinstance(body, dict):
        raise validation_error('"value" must be an object')
    external_id = body.get("external_id")
    if external_id is None:
        raise validation_error('"external_id" is required')
    if not isinstance(external_id, str) or not external_id:
        raise validation_error('"external_id" must be a non-empty string')
    amount = body.get("amount")
    if amount is None:
        raise validation_error('"amount" is required')
    if not is_number(amount):
        raise validation_error('"amount" must be a number')
    if amount < 1:
        raise validation_error('"amount" must be larger than or equal to 1')
    currency = body.get("currency", "IDR")
    if currency != "IDR":
        raise XenditError(400, "UNSUPPORTED_CURRENCY", f"Currency {currency} is not supported for this business")
    duration = body.get("invoice_duration", DEFAULT_DURATION_S)
    if not is_number(duration):
        raise validation_error('"invoice_duration" must be a number')
    if not 1 <= duration <= MAX_DURATION_S:
        raise validation_error(f'"invoice_duration" must be between 1 and {MAX_DURATION_S}')
    payer_email = body.get("payer_email")
    if payer_email is not None and (not isinstance(payer_email, str) or not EMAIL.match(payer_email)):
        raise XenditError(400, "EMAIL_FORMAT_ERROR", "The payer_email format is invalid")
    for text in ("description", "success_redirect_url", "failure_redirect_url"):
        if body.get(text) is not None and not isinstance(body[text], str):
            raise validation_error(f'"{text}" must be a string')
    # Xendit truncates IDR decimals rather than rejecting them.
    return {
        **body,
        "amount": int(amount),
        "invoice_duration": duration,
        "should_send_email": bool(body.get("should_send_email", False)),
    }


def parse_refund_request(body: Any) -> dict[str, Any]:
    """Checks a create-refund body as Xendit does. Only invoices exist here, so a payment_request_id finds nothing."""
    if not isinstance(body, dict):
        raise validation_error('"value" must be an object')
    invoice_id = body.get("invoice_id")
    if invoice_id is None:
        if body.get("payment_request_id") is not None:
            raise XenditError(404, "DATA_NOT_FOUND", "Payment request not found")
        raise validation_error('"invoice_id" or "payment_request_id" is required')
    if not isinstance(invoice_id, str) or not invoice_id:
        raise validation_error('"invoice_id" must be a non-empty string')
    reason = body.get("reason")
    if reason not in REFUND_REASONS:
        raise validation_error(f'"reason" must be one of [{", ".join(REFUND_REASONS)}]')
    amount = body.get("amount")
    if amount is not None and (not is_number(amount) or amount <= 0):
        raise validation_error('"amount" must be a positive number')
    reference_id = body.get("reference_id")
    if reference_id is not None and (not isinstance(reference_id, str) or not 1 <= len(reference_id) <= 255):
        raise validation_error('"reference_id" must be a string of 1 to 255 characters')
    return {
        "invoice_id": invoice_id,
        "reason": reason,
        "amount": int(amount) if amount is not None else None,
        "currency": body.get("currency"),
        "reference_id": reference_id,
        "metadata": body.get("metadata"),
    }


def parse_failure_code(options: dict[str, Any]) -> str:
    failure_code = options.get("failure_code", DEFAULT_FAILURE_CODE)
    if not isinstance(failure_code, str) or not failure_code:
        raise validation_error('"failure_code" must be a non-empty string')
    return failure_code


def parse_limit(raw: str | None) -> int:
    if raw is None:
        return 10
    try:
        # The SDK sends its float-typed `limit` as "10.0".
        limit = int(float(raw))
    except ValueError:
        raise validation_error('"limit" must be a number') from None
    if not 1 <= limit <= 100:
        raise validation_error('"limit" must be between 1 and 100')
    return limit


def create_app(book: InvoiceBook, dispatcher: CallbackDispatcher, secret_key: str) -> Flask:
    app = Flask("xendit_standin")

    @app.errorhandler(XenditError)
    def xendit_error(exc: XenditError) -> tuple[Response, int]:
        return jsonify(error_code=exc.error_code, message=exc.message), exc.status

    def authorized(view: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(view)
        def check(**kwargs: Any) -> Any:
            auth = request.authorization
            given = auth.username if auth is not None and auth.type == "basic" else None
            if not given or not hmac.compare_digest(given.encode(), secret_key.encode()):
                log.info("rejected %s %s: invalid API key", request.method, request.path)
                raise XenditError(401, "INVALID_API_KEY", "API key is not authorized for this API service")
            return view(**kwargs)

        return check

    def json_body() -> Any:
        body = request.get_json(silent=True)
        if body is None and request.get_data():
            raise XenditError(400, "INVALID_JSON_FORMAT", "The request body is not valid JSON")
        return body

    @app.post("/v2/invoices")
    @app.post("/v2/invoices/")
    @authorized
    def create_invoice() -> Response:
        return jsonify(book.create(json_body()))

    @app.get("/v2/invoices")
    @authorized
    def list_invoices() -> Response:
        statuses = request.args.getlist("statuses") + request.args.getlist("statuses[]")
        invoices = book.search(
            external_id=request.args.get("external_id"), statuses=statuses, limit=parse_limit(request.args.get("limit"))
        )
        return jsonify(invoices)

    @app.get("/v2/invoices/<invoice_id>")
    @authorized
    def get_invoice(invoice_id: str) -> Response:
        return jsonify(book.get(invoice_id))

    @app.post("/invoices/<invoice_id>/expire!")
    @authorized
    def expire_invoice(invoice_id: str) -> Response:
        return jsonify(book.expire(invoice_id))

    @app.post("/refunds")
    @authorized
    def create_refund() -> Response:
        return jsonify(book.refund(json_body(), request.headers.get("idempotency-key")))

    @app.get("/refunds/<refund_id>")
    @authorized
    def get_refund(refund_id: str) -> Response:
        return jsonify(book.get_refund(refund_id))

    @app.get("/web/<invoice_id>")
    def checkout_page(invoice_id: str) -> str:
        """Where invoice_url leads: enough of a checkout page to pay by hand during a demo."""
        invoice = book.get(invoice_id)
        return (
            f"<!doctype html><title>{escape(invoice['merchant_name'])}</title>"
            f"<h1>{escape(invoice['merchant_name'])}</h1><p>{escape(invoice.get('description', ''))}</p>"
            f"<p>IDR {invoice['amount']:,} &middot; {escape(invoice['status'])}</p>"
            f"<form method=post action=/_standin/invoices/{escape(invoice_id)}/pay><button>Pay</button></form>"
        )

    def control_options() -> dict[str, Any]:
        options = request.get_json(silent=True) or {}
        if not isinstance(options, dict):
            raise validation_error('"value" must be an object')
        return options

    @app.post("/_standin/invoices/<invoice_id>/pay")
    def pay(invoice_id: str) -> Response:
        return jsonify(book.pay(invoice_id, control_options()))

    @app.post("/_standin/invoices/<invoice_id>/expire")
    def force_expire(invoice_id: str) -> Response:
        return jsonify(book.expire(invoice_id))

    @app.post("/_standin/invoices/<invoice_id>/callback")
    def replay(invoice_id: str) -> Response:
        return jsonify(book.replay(invoice_id))

    @app.get("/_standin/callbacks")
    def callbacks() -> Response:
        return jsonify(dispatcher.attempts())

    @app.get("/_standin/refunds")
    def refunds() -> Response:
        return jsonify(book.refunds())

    @app.post("/_standin/invoices/<invoice_id>/refund_answer")
    def refund_answer(invoice_id: str) -> Response:
        return jsonify(book.answer_refunds(invoice_id, control_options()))

    @app.post("/_standin/refunds/<refund_id>/complete")
    def complete_refund(refund_id: str) -> Response:
        return jsonify(book.complete_refund(refund_id, control_options()))

    @app.post("/_standin/refunds/<refund_id>/callback")
    def replay_refund(refund_id: str) -> Response:
        return jsonify(book.replay_refund(refund_id))

    return app


def sweep_expired(book: InvoiceBook, stop: threading.Event) -> None:
    while not stop.wait(SWEEP_INTERVAL_S):
        book.expire_due()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--callback-url", required=True, help="our invoice webhook endpoint")
    parser.add_argument("--callback-token", required=True, help="sent as x-callback-token on every callback")
    parser.add_argument("--secret-key", default=DEFAULT_SECRET_KEY, help="the API key clients must present")
    parser.add_argument("--merchant-name", default="Halo Bestie")
    parser.add_argument("--retry-attempts", type=int, default=5, help="callback deliveries before giving up")
    parser.add_argument("--retry-delay", type=float, default=1.0, help="seconds before the first retry; doubles")
    parser.add_argument(
        "--public-url", help="where a phone reaches this stand-in (invoice_url); default http://HOST:PORT"
    )
    args = parser.parse_args(argv)

    logging.basicConfig(level=logging.INFO, format="%(asctime)s xendit-standin %(message)s")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)

    base_url = args.public_url or f"http://{args.host}:{args.port}"
    dispatcher = CallbackDispatcher(
        url=args.callback_url, token=args.callback_token, attempts=args.retry_attempts, delay_s=args.retry_delay
    )
    book = InvoiceBook(base_url=base_url, merchant_name=args.merchant_name, dispatcher=dispatcher)
    server = make_server(args.host, args.port, create_app(book, dispatcher, args.secret_key), threaded=True)
    stop = threading.Event()
    threading.Thread(target=sweep_expired, args=(book, stop), daemon=True).start()

    def terminate(*_: object) -> NoReturn:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, terminate)
    log.info("listening on %s, callbacks to %s", base_url, args.callback_url)
    try:
        server.serve_forever()
    finally:
        stop.set()
        server.server_close()
        log.info("stopped")


if __name__ == "__main__":
    main()
