"""The Xendit stand-in, driven through our production adapter (official SDK) and received by a real HTTP endpoint."""

from __future__ import annotations

import json
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests

from emulators.process import ManagedProcess, free_port, options
from emulators.xendit_standin import BUSINESS_ID
from shared.adapters.xendit_payments import (
    Invoice,
    PaymentProviderError,
    Refund,
    XenditInvoices,
    callback_token_matches,
)

ROOT = Path(__file__).resolve().parents[2]
SECRET_KEY = "xnd_development_test_secret"
CALLBACK_TOKEN = "callback-token-for-tests"
PAID_CALLBACK_FIELDS = {
    "id",
    "external_id",
    "user_id",
    "is_high",
    "payment_method",
    "status",
    "merchant_name",
    "amount",
    "paid_amount",
    "bank_code",
    "paid_at",
    "payer_email",
    "description",
    "adjusted_received_amount",
    "fees_paid_amount",
    "updated",
    "created",
    "currency",
    "payment_channel",
    "payment_destination",
}


@dataclass(frozen=True)
class Delivery:
    headers: dict[str, str]
    body: dict[str, Any]
    answered: int


def callback_key(body: dict[str, Any]) -> str:
    """The id we gave Xendit that a callback is about: an invoice's external_id, a refund's reference_id."""
    return str(body["data"]["reference_id"] if "event" in body else body["external_id"])


class CallbackReceiver:
    """Plays our webhook endpoint: records each delivery and can answer 500 to the next N for an external_id (or a
    refund's reference_id)."""

    def __init__(self) -> None:
        self.deliveries: list[Delivery] = []
        self._failures: dict[str, int] = {}
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                status = receiver._answer_for(callback_key(body))
                with receiver._lock:
                    receiver.deliveries.append(Delivery(dict(self.headers), body, status))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/xendit_webhook"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def fail_next(self, external_id: str, count: int) -> None:
        with self._lock:
            self._failures[external_id] = count

    def for_invoice(self, external_id: str) -> list[Delivery]:
        with self._lock:
            return [d for d in self.deliveries if callback_key(d.body) == external_id]

    def _answer_for(self, external_id: str) -> int:
        with self._lock:
            left = self._failures.get(external_id, 0)
            self._failures[external_id] = max(left - 1, 0)
        return 500 if left else 200

    def __enter__(self) -> CallbackReceiver:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.shutdown()
        self._server.server_close()


def logged_attempts(standin: str, key: str, value: str, count: int) -> list[dict[str, Any]]:
    """The stand-in's log of delivery attempts for one invoice or refund, once it holds `count` of them: an attempt is
    logged when its answer is back, a moment after the receiver has seen it."""
    found: list[dict[str, Any]] = []

    def logged() -> bool:
        nonlocal found
        attempts = requests.get(f"{standin}/_standin/callbacks", timeout=5).json()
        found = [attempt for attempt in attempts if attempt.get(key) == value]
        return len(found) >= count

    wait_for(logged)
    return found


def wait_for(check: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


def start_standin(
    log_dir: Path, callback_url: str, *extra: str, public_host: str | None = None
) -> tuple[ManagedProcess, str]:
    """The stand-in on a free port (on every interface, handing out `public_host` URLs, when one is given); its URL."""
    port = free_port()
    host = "127.0.0.1" if public_host is None else "0.0.0.0"  # noqa: S104 - reached from the LAN, as with HALO_HOST
    flags = {
        "--host": host,
        "--port": str(port),
        "--callback-url": callback_url,
        "--callback-token": CALLBACK_TOKEN,
        "--secret-key": SECRET_KEY,
        "--retry-delay": "0.05",
    }
    argv = [sys.executable, "-m", "emulators.xendit_standin", *options(flags), *extra]
    if public_host is not None:
        argv += ["--public-url", f"http://{public_host}:{port}"]
    process = ManagedProcess(f"xendit-standin-{port}", argv, log_dir=log_dir, cwd=ROOT).start()
    try:
        process.wait_port(port, timeout=20)
    except Exception:
        process.stop()
        raise
    return process, f"http://{public_host or '127.0.0.1'}:{port}"


def lan_address() -> str | None:
    """This machine's address on its network (as a phone on the same LAN would reach it), if it has one."""
    for destination in ("192.0.2.1", "10.0.0.1", "8.8.8.8"):  # no packet is sent: connect only picks an interface
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            try:
                probe.connect((destination, 9))
            except OSError:
                continue
            address = str(probe.getsockname()[0])
        if not address.startswith("127."):
            return address
    return None


@pytest.fixture(scope="module")
def receiver() -> Iterator[CallbackReceiver]:
    with CallbackReceiver() as running:
        yield running


@pytest.fixture(scope="module")
def standin(receiver: CallbackReceiver, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    process, url = start_standin(tmp_path_factory.mktemp("xendit"), receiver.url)
    try:
        yield url
    finally:
        process.stop()


@pytest.fixture
def invoices(standin: str) -> XenditInvoices:
    return XenditInvoices(secret_key=SECRET_KEY, host=standin)


def new_external_id() -> str:
    return f"order-{uuid.uuid4()}"


def test_invoice_create_get_expire_through_the_sdk(invoices: XenditInvoices, receiver: CallbackReceiver) -> None:
    external_id = new_external_id()
    before = datetime.now(UTC)

    created = invoices.create_invoice(
        external_id=external_id,
        amount=150_000,
        description="Sesi curhat 60 menit",
        invoice_duration_s=900,
        customer_email="budi@example.com",
    )

    assert created.external_id == external_id
    assert (created.status, created.amount, created.currency) == ("PENDING", 150_000, "IDR")
    assert created.invoice_url.endswith(f"/web/{created.invoice_id}")
    assert created.expires_at.tzinfo is not None
    assert before + timedelta(seconds=899) <= created.expires_at <= datetime.now(UTC) + timedelta(seconds=901)
    assert invoices.get_invoice(created.invoice_id) == created

    expired = invoices.expire_invoice(created.invoice_id)

    assert expired.status == "EXPIRED"
    assert invoices.get_invoice(created.invoice_id).status == "EXPIRED"
    wait_for(lambda: len(receiver.for_invoice(external_id)) == 1)
    assert receiver.for_invoice(external_id)[0].body["status"] == "EXPIRED"


def test_sdk_lists_invoices_by_external_id(invoices: XenditInvoices, standin: str) -> None:
    import xendit
    from xendit.invoice import InvoiceApi

    external_id = new_external_id()
    first = invoices.create_invoice(external_id=external_id, amount=50_000, description="a", invoice_duration_s=600)
    invoices.create_invoice(external_id=new_external_id(), amount=50_000, description="other", invoice_duration_s=600)
    api = InvoiceApi(xendit.ApiClient(xendit.Configuration(host=standin, api_key=SECRET_KEY)))

    found = api.get_invoices(external_id=external_id, limit=10.0)

    assert [inv.id for inv in found] == [first.invoice_id]


def test_wrong_secret_key_is_refused_with_xendit_401(standin: str) -> None:
    stranger = XenditInvoices(secret_key="xnd_development_someone_else", host=standin)

    with pytest.raises(PaymentProviderError) as refused:
        stranger.create_invoice(external_id=new_external_id(), amount=10_000, description="x", invoice_duration_s=60)

    assert (refused.value.status, refused.value.error_code, refused.value.retryable) == (401, "INVALID_API_KEY", False)
    raw = requests.get(f"{standin}/v2/invoices/anything", timeout=5)
    assert raw.status_code == 401
    assert raw.json() == {"error_code": "INVALID_API_KEY", "message": "API key is not authorized for this API service"}


def test_validation_errors_are_xendit_400s(invoices: XenditInvoices, standin: str) -> None:
    with pytest.raises(PaymentProviderError) as refused:
        invoices.create_invoice(external_id=new_external_id(), amount=0, description="x", invoice_duration_s=60)
    assert (refused.value.status, refused.value.error_code, refused.value.retryable) == (
        400,
        "API_VALIDATION_ERROR",
        False,
    )

    raw = requests.post(f"{standin}/v2/invoices", json={"amount": 10_000}, auth=(SECRET_KEY, ""), timeout=5)
    assert raw.status_code == 400
    assert raw.json() == {"error_code": "API_VALIDATION_ERROR", "message": '"external_id" is required'}


def test_unknown_invoice_is_a_404(invoices: XenditInvoices) -> None:
    with pytest.raises(PaymentProviderError) as missing:
        invoices.get_invoice("000000000000000000000000")

    assert (missing.value.status, missing.value.error_code, missing.value.retryable) == (
        404,
        "INVOICE_NOT_FOUND_ERROR",
        False,
    )


def test_unreachable_xendit_is_retryable() -> None:
    nowhere = XenditInvoices(secret_key=SECRET_KEY, host=f"http://127.0.0.1:{free_port()}")

    with pytest.raises(PaymentProviderError) as unreachable:
        nowhere.get_invoice("000000000000000000000000")

    assert unreachable.value.retryable


def test_payment_sends_one_callback_with_token_and_xendit_body(
    invoices: XenditInvoices, receiver: CallbackReceiver, standin: str
) -> None:
    external_id = new_external_id()
    invoice = invoices.create_invoice(
        external_id=external_id,
        amount=75_000,
        description="Paket 3 sesi",
        invoice_duration_s=900,
        customer_email="sari@example.com",
    )

    paid = requests.post(f"{standin}/_standin/invoices/{invoice.invoice_id}/pay", json={}, timeout=5)

    assert paid.status_code == 200
    wait_for(lambda: len(receiver.for_invoice(external_id)) == 1)
    time.sleep(0.2)  # a second delivery would have arrived by now
    [delivery] = receiver.for_invoice(external_id)
    assert callback_token_matches(delivery.headers.get("x-callback-token"), CALLBACK_TOKEN)
    assert delivery.headers.get("webhook-id")
    body = delivery.body
    assert set(body) == PAID_CALLBACK_FIELDS
    assert body["id"] == invoice.invoice_id
    assert (body["status"], body["amount"], body["paid_amount"], body["currency"]) == ("PAID", 75_000, 75_000, "IDR")
    assert (body["payment_method"], body["payment_channel"], body["bank_code"]) == ("BANK_TRANSFER", "BCA", "BCA")
    assert (body["payer_email"], body["description"]) == ("sari@example.com", "Paket 3 sesi")
    assert datetime.fromisoformat(body["paid_at"]).tzinfo is not None
    assert invoices.get_invoice(invoice.invoice_id).status == "PAID"
    log = logged_attempts(standin, "external_id", external_id, 1)
    assert [(a["attempt"], a["response_status"]) for a in log] == [(1, 200)]


def test_paid_invoice_cannot_be_expired_or_paid_again(invoices: XenditInvoices, standin: str) -> None:
    invoice = invoices.create_invoice(
        external_id=new_external_id(), amount=20_000, description="x", invoice_duration_s=600
    )
    requests.post(f"{standin}/_standin/invoices/{invoice.invoice_id}/pay", timeout=5).raise_for_status()

    with pytest.raises(PaymentProviderError) as refused:
        invoices.expire_invoice(invoice.invoice_id)

    assert refused.value.status == 404
    assert requests.post(f"{standin}/_standin/invoices/{invoice.invoice_id}/pay", timeout=5).status_code == 409


def test_failed_callback_is_retried_with_the_same_webhook_id(
    invoices: XenditInvoices, receiver: CallbackReceiver, standin: str
) -> None:
    external_id = new_external_id()
    invoice = invoices.create_invoice(external_id=external_id, amount=40_000, description="x", invoice_duration_s=600)
    receiver.fail_next(external_id, 1)

    requests.post(
        f"{standin}/_standin/invoices/{invoice.invoice_id}/pay",
        json={"payment_method": "EWALLET", "payment_channel": "OVO", "paid_amount": 40_000},
        timeout=5,
    ).raise_for_status()

    wait_for(lambda: len(receiver.for_invoice(external_id)) == 2)
    first, second = receiver.for_invoice(external_id)
    assert (first.answered, second.answered) == (500, 200)
    assert first.body == second.body
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    assert (second.body["payment_method"], second.body["payment_channel"]) == ("EWALLET", "OVO")
    log = logged_attempts(standin, "external_id", external_id, 2)
    assert [(a["attempt"], a["response_status"]) for a in log] == [(1, 500), (2, 200)]


def test_replay_resends_the_last_callback(invoices: XenditInvoices, receiver: CallbackReceiver, standin: str) -> None:
    external_id = new_external_id()
    invoice = invoices.create_invoice(external_id=external_id, amount=30_000, description="x", invoice_duration_s=600)
    assert requests.post(f"{standin}/_standin/invoices/{invoice.invoice_id}/callback", timeout=5).status_code == 404
    requests.post(f"{standin}/_standin/invoices/{invoice.invoice_id}/pay", timeout=5).raise_for_status()
    wait_for(lambda: len(receiver.for_invoice(external_id)) == 1)

    replayed = requests.post(f"{standin}/_standin/invoices/{invoice.invoice_id}/callback", timeout=5)

    assert replayed.status_code == 200
    wait_for(lambda: len(receiver.for_invoice(external_id)) == 2)
    original, replay = receiver.for_invoice(external_id)
    assert replay.body == original.body == replayed.json()
    assert replay.headers["webhook-id"] == original.headers["webhook-id"]
    assert replay.headers["x-callback-token"] == CALLBACK_TOKEN


def test_invoice_expires_by_itself_and_calls_back(invoices: XenditInvoices, receiver: CallbackReceiver) -> None:
    external_id = new_external_id()
    invoice = invoices.create_invoice(external_id=external_id, amount=10_000, description="x", invoice_duration_s=1)

    wait_for(lambda: len(receiver.for_invoice(external_id)) == 1, timeout=5)

    [delivery] = receiver.for_invoice(external_id)
    assert (delivery.body["id"], delivery.body["status"]) == (invoice.invoice_id, "EXPIRED")
    assert "paid_amount" not in delivery.body
    assert invoices.get_invoice(invoice.invoice_id).status == "EXPIRED"
    assert datetime.now(UTC) >= invoice.expires_at


def test_unreachable_receiver_is_retried_then_given_up(tmp_path: Path) -> None:
    process, url = start_standin(tmp_path, f"http://127.0.0.1:{free_port()}/nobody", "--retry-attempts", "3")
    try:
        invoice = XenditInvoices(secret_key=SECRET_KEY, host=url).create_invoice(
            external_id=new_external_id(), amount=10_000, description="x", invoice_duration_s=600
        )
        requests.post(f"{url}/_standin/invoices/{invoice.invoice_id}/pay", timeout=5).raise_for_status()

        wait_for(lambda: len(requests.get(f"{url}/_standin/callbacks", timeout=5).json()) == 3)
        time.sleep(0.3)
        attempts = requests.get(f"{url}/_standin/callbacks", timeout=5).json()
    finally:
        process.stop()

    assert [(a["attempt"], a["response_status"], a["error"]) for a in attempts] == [
        (1, None, "ConnectionError"),
        (2, None, "ConnectionError"),
        (3, None, "ConnectionError"),
    ]


def test_callback_token_comparison() -> None:
    assert callback_token_matches("secret-token", "secret-token")
    assert not callback_token_matches("secret-tokeN", "secret-token")
    assert not callback_token_matches(None, "secret-token")
    assert not callback_token_matches("", "")
    assert not callback_token_matches("tokén", "token")


# -- refunds ---------------------------------------------------------------------------------------------------------


def paid_invoice(invoices: XenditInvoices, standin: str, *, refunds: str) -> Invoice:
    """An invoice paid by e-wallet whose refunds answer `refunds` (SUCCEEDED, PENDING or FAILED)."""
    invoice = invoices.create_invoice(
        external_id=new_external_id(), amount=50_000, description="x", invoice_duration_s=600
    )
    requests.post(
        f"{standin}/_standin/invoices/{invoice.invoice_id}/pay", json={"payment_method": "EWALLET"}, timeout=5
    ).raise_for_status()
    answer = requests.post(
        f"{standin}/_standin/invoices/{invoice.invoice_id}/refund_answer", json={"status": refunds}, timeout=5
    )
    assert answer.status_code == 200, answer.text
    return invoice


def refund(invoices: XenditInvoices, invoice: Invoice, reference_id: str) -> Refund:
    return invoices.refund_invoice(
        invoice_id=invoice.invoice_id, amount=50_000, reference_id=reference_id, reason="REQUESTED_BY_CUSTOMER"
    )


def test_a_pending_refund_completes_with_xendit_s_refund_callback(
    invoices: XenditInvoices, receiver: CallbackReceiver, standin: str
) -> None:
    invoice = paid_invoice(invoices, standin, refunds="PENDING")
    reference = f"refund-{uuid.uuid4()}"

    pending = refund(invoices, invoice, reference)

    assert (pending.status, pending.outcome, pending.failure_code) == ("PENDING", "pending", None)
    assert receiver.for_invoice(reference) == [], "nothing is sent while the refund is pending"
    completed = requests.post(
        f"{standin}/_standin/refunds/{pending.refund_id}/complete", json={"status": "SUCCEEDED"}, timeout=5
    )
    assert completed.status_code == 200, completed.text
    wait_for(lambda: len(receiver.for_invoice(reference)) == 1)
    [delivery] = receiver.for_invoice(reference)
    assert callback_token_matches(delivery.headers.get("x-callback-token"), CALLBACK_TOKEN)
    assert delivery.headers.get("webhook-id")
    assert delivery.body == completed.json()
    assert set(delivery.body) == {"event", "business_id", "created", "data"}
    assert (delivery.body["event"], delivery.body["business_id"]) == ("refund.succeeded", BUSINESS_ID)
    data = delivery.body["data"]
    assert (data["id"], data["invoice_id"], data["reference_id"]) == (pending.refund_id, invoice.invoice_id, reference)
    assert (data["status"], data["amount"], data["currency"], data["failure_code"]) == (
        "SUCCEEDED",
        50_000,
        "IDR",
        None,
    )
    assert {
        "payment_request_id",
        "reason",
        "refund_fee_amount",
        "channel_code",
        "created",
        "updated",
        "metadata",
    } <= set(data)
    assert requests.get(f"{standin}/refunds/{pending.refund_id}", auth=(SECRET_KEY, ""), timeout=5).json() == data
    again = requests.post(
        f"{standin}/_standin/refunds/{pending.refund_id}/complete", json={"status": "FAILED"}, timeout=5
    )
    assert (again.status_code, again.json()["error_code"]) == (409, "REFUND_NOT_PENDING")

    replayed = requests.post(f"{standin}/_standin/refunds/{pending.refund_id}/callback", timeout=5)

    assert replayed.status_code == 200
    wait_for(lambda: len(receiver.for_invoice(reference)) == 2)
    original, replay = receiver.for_invoice(reference)
    assert replay.body == original.body
    assert replay.headers["webhook-id"] == original.headers["webhook-id"]
    log = logged_attempts(standin, "reference_id", reference, 2)
    assert [(a["event"], a["refund_id"], a["response_status"]) for a in log] == [
        ("refund.succeeded", pending.refund_id, 200),
    ] * 2


def test_a_failed_refund_calls_back_and_its_amount_can_be_refunded_again(
    invoices: XenditInvoices, receiver: CallbackReceiver, standin: str
) -> None:
    invoice = paid_invoice(invoices, standin, refunds="PENDING")
    first_reference = f"refund-{uuid.uuid4()}"
    first = refund(invoices, invoice, first_reference)

    requests.post(
        f"{standin}/_standin/refunds/{first.refund_id}/complete",
        json={"status": "FAILED", "failure_code": "INSUFFICIENT_BALANCE"},
        timeout=5,
    ).raise_for_status()

    wait_for(lambda: len(receiver.for_invoice(first_reference)) == 1)
    [delivery] = receiver.for_invoice(first_reference)
    assert delivery.body["event"] == "refund.failed"
    assert (delivery.body["data"]["status"], delivery.body["data"]["failure_code"]) == (
        "FAILED",
        "INSUFFICIENT_BALANCE",
    )
    assert refund(invoices, invoice, first_reference).status == "FAILED", "the same key answers with the same refund"
    requests.post(
        f"{standin}/_standin/invoices/{invoice.invoice_id}/refund_answer", json={"status": "SUCCEEDED"}, timeout=5
    ).raise_for_status()
    second = refund(invoices, invoice, f"refund-{uuid.uuid4()}")
    assert (second.status, second.outcome) == ("SUCCEEDED", "succeeded")
    assert second.refund_id != first.refund_id


@pytest.mark.parametrize(("status", "failure_code"), [("SUCCEEDED", None), ("FAILED", "INSUFFICIENT_BALANCE")])
def test_a_refund_completed_with_its_callback_lost_is_seen_by_get_refund_and_calls_back_only_when_replayed(
    invoices: XenditInvoices, receiver: CallbackReceiver, standin: str, status: str, failure_code: str | None
) -> None:
    invoice = paid_invoice(invoices, standin, refunds="PENDING")
    reference = f"refund-{uuid.uuid4()}"
    pending = refund(invoices, invoice, reference)
    options = {"status": status, "callback": False, **({"failure_code": failure_code} if failure_code else {})}

    completed = requests.post(f"{standin}/_standin/refunds/{pending.refund_id}/complete", json=options, timeout=5)

    assert completed.status_code == 200, completed.text
    looked_up = invoices.get_refund(pending.refund_id)
    assert (looked_up.refund_id, looked_up.status, looked_up.failure_code) == (pending.refund_id, status, failure_code)
    assert (looked_up.invoice_id, looked_up.amount, looked_up.currency) == (invoice.invoice_id, 50_000, "IDR")
    assert looked_up.outcome == status.lower()
    time.sleep(0.3)
    assert receiver.for_invoice(reference) == [], "the callback was lost"
    assert [
        a for a in requests.get(f"{standin}/_standin/callbacks", timeout=5).json() if a.get("reference_id") == reference
    ] == []

    replayed = requests.post(f"{standin}/_standin/refunds/{pending.refund_id}/callback", timeout=5)

    assert replayed.status_code == 200, replayed.text
    wait_for(lambda: len(receiver.for_invoice(reference)) == 1)
    [late] = receiver.for_invoice(reference)
    assert late.body == completed.json()
    assert (late.body["event"], late.body["data"]["status"]) == (f"refund.{status.lower()}", status)


def test_get_refund_of_a_refund_xendit_never_made_is_a_404_not_worth_repeating(invoices: XenditInvoices) -> None:
    with pytest.raises(PaymentProviderError) as unknown:
        invoices.get_refund(f"rfd-{uuid.uuid4()}")

    assert (unknown.value.status, unknown.value.error_code, unknown.value.retryable) == (404, "DATA_NOT_FOUND", False)


def test_a_refund_can_answer_failed_at_once(invoices: XenditInvoices, standin: str) -> None:
    invoice = invoices.create_invoice(
        external_id=new_external_id(), amount=50_000, description="x", invoice_duration_s=600
    )
    requests.post(
        f"{standin}/_standin/invoices/{invoice.invoice_id}/pay", json={"payment_method": "EWALLET"}, timeout=5
    ).raise_for_status()
    requests.post(
        f"{standin}/_standin/invoices/{invoice.invoice_id}/refund_answer",
        json={"status": "FAILED", "failure_code": "ACCOUNT_ACCESS_BLOCKED"},
        timeout=5,
    ).raise_for_status()

    failed = refund(invoices, invoice, f"refund-{uuid.uuid4()}")

    assert (failed.status, failed.outcome, failed.failure_code) == ("FAILED", "failed", "ACCOUNT_ACCESS_BLOCKED")


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("invoices/{invoice}/refund_answer", {"status": "MAYBE"}, 400),
        ("invoices/{invoice}/refund_answer", {"status": "FAILED", "failure_code": ""}, 400),
        ("invoices/000000000000000000000000/refund_answer", {"status": "PENDING"}, 404),
        ("refunds/{refund}/complete", {"status": "PENDING"}, 400),
        ("refunds/{refund}/complete", {"status": "SUCCEEDED", "callback": "no"}, 400),
        ("refunds/rfd-nobody/complete", {"status": "SUCCEEDED"}, 404),
        ("refunds/{refund}/callback", None, 404),
    ],
)
def test_refund_controls_refuse_what_xendit_could_not_do(
    invoices: XenditInvoices, standin: str, path: str, body: dict[str, Any] | None, status: int
) -> None:
    invoice = paid_invoice(invoices, standin, refunds="PENDING")
    pending = refund(invoices, invoice, f"refund-{uuid.uuid4()}")
    url = f"{standin}/_standin/" + path.format(invoice=invoice.invoice_id, refund=pending.refund_id)

    answer = requests.post(url, json=body, timeout=5)

    assert answer.status_code == status, answer.text
    assert set(answer.json()) == {"error_code", "message"}


def test_with_halo_host_an_invoice_page_is_handed_out_and_served_at_the_address_phones_use(
    receiver: CallbackReceiver, tmp_path: Path
) -> None:
    """`HALO_HOST=<LAN address> make dev` runs the stand-in like this: a phone opening invoice_url reaches it."""
    lan = lan_address()
    if lan is None:
        pytest.skip("this machine has no network address besides loopback")
    process, url = start_standin(tmp_path, receiver.url, public_host=lan)
    try:
        created = XenditInvoices(secret_key=SECRET_KEY, host=url).create_invoice(
            external_id=new_external_id(), amount=20_000, description="Sesi curhat", invoice_duration_s=900
        )
        assert created.invoice_url.startswith(f"http://{lan}:")
        page = requests.get(created.invoice_url, timeout=5)
        assert page.status_code == 200 and created.invoice_id in page.text
    finally:
        process.stop()
