"""Billing end to end: apps call functions through the gateway, the Xendit stand-in takes the payment and calls our
webhook back as Xendit does (or loses the callback), Cloud Tasks fires the timeout, Cloud Scheduler the refund sweep,
and PostgreSQL is checked for what really moved."""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emulators.simulator import App, Reply, Watch
from emulators.stack import PROJECT, TASKS_SERVICE_ACCOUNT, XENDIT_CALLBACK_TOKEN, XENDIT_SECRET_KEY, LocalStack
from shared.adapters.cloud_tasks import CloudTasksScheduler
from shared.adapters.postgres.database import Database
from shared.adapters.xendit_payments import XenditInvoices
from tests.support.delivery import push_event
from tests.support.people import uid_of

SESSION_30 = {"tier_id": "sesi-30", "purpose": "session"}


# -- helpers -------------------------------------------------------------------------------------------------------


class Money:
    """The payment side of a test: the Xendit stand-in as a customer and Xendit use it, and PostgreSQL's record."""

    def __init__(self, stack: LocalStack, halo_db: Database) -> None:
        self.stack = stack
        self.db = halo_db
        self.standin = f"http://127.0.0.1:{stack.ports.xendit}"
        # Our production adapter, to look at invoices as Xendit's dashboard would.
        self.xendit = XenditInvoices(secret_key=XENDIT_SECRET_KEY, host=self.standin)

    def checkout(self, client: App, body: dict[str, Any] = SESSION_30) -> tuple[str, str]:
        """A pending transaction: (transaction id, Xendit invoice id)."""
        opened = client.post("billing_checkout", body)
        assert opened.status == 200, opened.body
        transaction_id = opened.body["transaction_id"]
        return transaction_id, self.transaction(transaction_id)["xendit_invoice_id"]

    def pay(self, invoice_id: str, **options: Any) -> None:
        """The customer pays on Xendit's page; the stand-in then sends its callback to our webhook."""
        paid = requests.post(f"{self.standin}/_standin/invoices/{invoice_id}/pay", json=options, timeout=10)
        assert paid.status_code == 200, paid.text

    def paid_credit(self, client: App, **options: Any) -> str:
        transaction_id, invoice_id = self.checkout(client)
        self.pay(invoice_id, **options)
        _wait_until(lambda: self.transaction(transaction_id)["status"] == "paid")
        return transaction_id

    def deliver(self, payload: dict[str, Any], token: str | None = XENDIT_CALLBACK_TOKEN) -> requests.Response:
        """A callback posted as Xendit posts it, for orders of events the stand-in cannot produce by itself."""
        headers = {"x-callback-token": token} if token is not None else {}
        return requests.post(f"{self.stack.functions_url}/xendit_webhook", json=payload, headers=headers, timeout=10)

    def refunds_at_xendit(self, transaction_id: str) -> list[dict[str, Any]]:
        """Every attempt's refund, oldest first (`refund-<transaction>`, then `refund-<transaction>-2`, ...)."""
        refunds = requests.get(f"{self.standin}/_standin/refunds", timeout=10).json()
        return [r for r in refunds if r["reference_id"].startswith(f"refund-{transaction_id}")]

    def refunds_answer(self, transaction_id: str, status: str, **options: Any) -> None:
        """How Xendit answers this payment's refunds from now on: SUCCEEDED, PENDING (until completed) or FAILED."""
        invoice_id = self.transaction(transaction_id)["xendit_invoice_id"]
        url = f"{self.standin}/_standin/invoices/{invoice_id}/refund_answer"
        answered = requests.post(url, json={"status": status, **options}, timeout=10)
        assert answered.status_code == 200, answered.text

    def complete_refund(self, refund_id: str, status: str, **options: Any) -> dict[str, Any]:
        """The payment channel settles a pending refund; the stand-in then sends Xendit's refund callback (unless
        `callback=False` loses it; `replay_refund_callback` delivers it late)."""
        url = f"{self.standin}/_standin/refunds/{refund_id}/complete"
        completed = requests.post(url, json={"status": status, **options}, timeout=10)
        assert completed.status_code == 200, completed.text
        callback: dict[str, Any] = completed.json()
        return callback

    def replay_refund_callback(self, refund_id: str) -> None:
        replayed = requests.post(f"{self.standin}/_standin/refunds/{refund_id}/callback", timeout=10)
        assert replayed.status_code == 200, replayed.text

    def pending_since(self, transaction_id: str, *, minutes: int) -> None:
        """As if Xendit had accepted the transaction's open refund that long ago."""
        with self.db.transaction() as tx:
            tx.execute(
                """UPDATE credit_refunds SET updated_at = now() - make_interval(mins => :minutes)
                   WHERE transaction_id = CAST(:id AS uuid) AND status = 'pending'""",
                {"id": transaction_id, "minutes": minutes},
            )

    def settlements(self, transaction_id: str) -> list[tuple[str, str, str | None]]:
        """How its refund attempts were settled, as audited: (action, where Xendit's word came from, who asked)."""
        with self.db.transaction() as tx:
            rows = tx.all(
                """SELECT action, new_value FROM audit_log
                   WHERE target = :target AND action LIKE 'billing.refund\\_%' ORDER BY id""",
                {"target": f"customer_transactions/{transaction_id}"},
            )
        return [(row["action"], row["new_value"]["source"], row["new_value"].get("asked_by")) for row in rows]

    def refund_events(self, transaction_id: str) -> list[dict[str, Any]]:
        with self.db.transaction() as tx:
            return tx.all(
                """SELECT outcome, reason FROM payment_events
                   WHERE kind = 'refund' AND transaction_id = CAST(:id AS uuid) ORDER BY id""",
                {"id": transaction_id},
            )

    def audit(self, transaction_id: str) -> list[tuple[str, str]]:
        with self.db.transaction() as tx:
            rows = tx.all(
                "SELECT action, actor_role FROM audit_log WHERE target = :target ORDER BY id",
                {"target": f"customer_transactions/{transaction_id}"},
            )
        return [(row["action"], row["actor_role"]) for row in rows]

    def transaction(self, transaction_id: str) -> dict[str, Any]:
        with self.db.transaction() as tx:
            row = tx.one(
                """SELECT t.status, t.amount, t.xendit_invoice_id, c.status AS credit
                   FROM customer_transactions t LEFT JOIN session_credits c ON c.transaction_id = t.id
                   WHERE t.id = CAST(:id AS uuid)""",
                {"id": transaction_id},
            )
        assert row is not None
        return row

    def ledger(self, transaction_id: str) -> list[str]:
        with self.db.transaction() as tx:
            rows = tx.all(
                "SELECT kind FROM ledger_entries WHERE transaction_id = CAST(:id AS uuid) ORDER BY id",
                {"id": transaction_id},
            )
        return [row["kind"] for row in rows]

    def events(self, transaction_id: str) -> list[dict[str, Any]]:
        with self.db.transaction() as tx:
            return tx.all(
                "SELECT outcome, reason FROM payment_events WHERE external_id = :id ORDER BY id", {"id": transaction_id}
            )


@pytest.fixture
def money(stack: LocalStack, halo_db: Database) -> Money:
    return Money(stack, halo_db)


def _wait_until(check: Callable[[], bool], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


def _callback(transaction_id: str, invoice_id: str, status: str, amount: int, **extra: Any) -> dict[str, Any]:
    now = datetime.now(UTC).isoformat()
    return {
        "id": invoice_id,
        "external_id": transaction_id,
        "user_id": "64a1b2c3d4e5f6a7b8c9d0e1",
        "status": status,
        "merchant_name": "Halo Bestie",
        "amount": amount,
        "created": now,
        "updated": now,
        "currency": "IDR",
        **extra,
    }


def _credits(client: App) -> list[dict[str, Any]]:
    quote = client.get("pricing_quote")
    assert quote.status == 200, quote.body
    return list(quote.body["credits"])


def _matched(
    client: App, mitra: App, watches: Callable[[Watch], Watch], tier_id: str = "sesi-30"
) -> tuple[str, dict[str, Any]]:
    """A paid pairing request accepted by `mitra`: (request id, the accept's reply)."""
    offers = watches(Watch.collection(f"mitras/{uid_of(mitra)}/offers"))
    request = client.post("pairing_request", {"tier_id": tier_id})
    assert (request.status, request.body.get("status")) == (200, "searching"), request.body
    request_id = request.body["request_id"]
    offers.wait_for(lambda docs: any(path.endswith(f"/offers/{request_id}") for path in docs))
    accepted = mitra.post("pairing_accept", {"request_id": request_id})
    assert accepted.status == 200, accepted.body
    return request_id, accepted.body


def _refund_callback(refund: dict[str, Any], settled: str, /, **changes: Any) -> dict[str, Any]:
    """Xendit's refund callback about a refund the stand-in holds, as it would send it once the refund `settled`
    (SUCCEEDED or FAILED), fields changed as given: for orders of events the stand-in cannot produce by itself."""
    event = {"SUCCEEDED": "refund.succeeded", "FAILED": "refund.failed"}[settled]
    now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    data = {**refund, "status": settled, "updated": now, **changes}
    return {"event": event, "business_id": "64a1b2c3d4e5f6a7b8c9d0e1", "created": now, "data": data}


def _refund(admin: App, transaction_id: str) -> Reply:
    return admin.post("admin_refund", {"transaction_id": transaction_id, "reason": "klien minta dana kembali"})


ONE_SESSION_30 = [{"tier_id": "sesi-30", "minutes": 30, "duration_s": 1800, "available": 1}]


# -- the whole way ---------------------------------------------------------------------------------------------------


@pytest.mark.needs_gcloud
@pytest.mark.usefixtures("quiet_world")
def test_quote_checkout_pay_and_a_paired_session_lasts_the_tiers_length(
    money: Money, new_client: Callable[..., App], new_mitra: Callable[..., App], watches: Callable[[Watch], Watch]
) -> None:
    client = new_client()
    quote = client.get("pricing_quote").body
    tier = next(t for t in quote["tiers"] if t["id"] == "sesi-30")
    assert quote["credits"] == []

    opened = client.post("billing_checkout", SESSION_30)

    assert opened.status == 200, opened.body
    transaction_id = opened.body["transaction_id"]
    expires_in = datetime.fromisoformat(opened.body["expires_at"]) - datetime.now(UTC)
    assert timedelta(minutes=14) < expires_in <= timedelta(minutes=15), "the configured 15 minutes"
    invoice = money.xendit.get_invoice(money.transaction(transaction_id)["xendit_invoice_id"])
    assert (invoice.external_id, invoice.amount, invoice.currency) == (transaction_id, tier["price"], "IDR")
    assert opened.body["invoice_url"] == invoice.invoice_url
    payment = watches(Watch.document(f"payments/{transaction_id}"))
    shown = payment.wait_for(lambda docs: any(d.get("status") == "pending" for d in docs.values()))
    assert next(iter(shown.values()))["client_uid"] == uid_of(client)

    money.pay(invoice.invoice_id, payment_method="EWALLET", payment_channel="OVO")

    payment.wait_for(lambda docs: any(d.get("status") == "paid" for d in docs.values()))
    assert _credits(client) == ONE_SESSION_30
    request_id, accepted = _matched(client, new_mitra(), watches)
    with money.db.transaction() as tx:
        session = tx.one(
            "SELECT started_at, ends_at FROM sessions WHERE id = CAST(:id AS uuid)", {"id": accepted["session_id"]}
        )
        held_by = tx.scalar(
            "SELECT transaction_id::text FROM pairing_requests WHERE id = CAST(:r AS uuid)", {"r": request_id}
        )
    assert session is not None
    assert session["ends_at"] - session["started_at"] == timedelta(seconds=tier["duration_s"])
    assert held_by == transaction_id
    assert money.transaction(transaction_id)["credit"] == "consumed"
    assert money.ledger(transaction_id) == ["payment_received", "credit_reserved", "credit_consumed"]
    assert [e["outcome"] for e in money.events(transaction_id)] == ["applied"]
    assert _credits(client) == []


# -- the webhook -----------------------------------------------------------------------------------------------------


def test_a_callback_replayed_100_times_concurrently_and_out_of_order_pays_once(
    money: Money, new_client: Callable[..., App]
) -> None:
    client = new_client()
    transaction_id, invoice_id = money.checkout(client)
    amount = money.transaction(transaction_id)["amount"]
    # Before the payment: the expiry of a spare invoice (a racing checkout's) must not expire this order.
    spare = money.deliver(_callback(transaction_id, "64b0000000000000000spare1", "EXPIRED", amount))
    assert (spare.status_code, spare.json()) == (200, {"outcome": "ignored"})

    money.pay(invoice_id)
    replay = f"{money.standin}/_standin/invoices/{invoice_id}/callback"
    with ThreadPoolExecutor(25) as pool:
        replays = list(pool.map(lambda _: requests.post(replay, timeout=10).status_code, range(100)))

    assert replays == [200] * 100
    _wait_until(lambda: len(money.events(transaction_id)) == 1 + 1 + 100, timeout=30)
    # After the payment: an expiry reported late changes nothing.
    late = money.deliver(_callback(transaction_id, invoice_id, "EXPIRED", amount))
    assert (late.status_code, late.json()) == (200, {"outcome": "ignored"})
    outcomes = Counter((e["outcome"], e["reason"]) for e in money.events(transaction_id))
    assert outcomes == {
        ("applied", None): 1,
        ("duplicate", None): 100,
        ("ignored", "invoice_mismatch"): 1,
        ("ignored", "expired_after_paid"): 1,
    }
    assert money.transaction(transaction_id)["status"] == "paid"
    assert money.ledger(transaction_id) == ["payment_received"]
    assert _credits(client) == ONE_SESSION_30


def test_a_callback_without_the_right_token_is_refused_and_changes_nothing(
    money: Money, new_client: Callable[..., App]
) -> None:
    transaction_id, invoice_id = money.checkout(new_client())
    forged = _callback(transaction_id, invoice_id, "PAID", money.transaction(transaction_id)["amount"])

    refused = [money.deliver(forged, token) for token in (None, "", "wrong", XENDIT_CALLBACK_TOKEN + "x")]

    assert [(r.status_code, r.json()["error"]["code"]) for r in refused] == [(401, "unauthenticated")] * 4
    assert money.transaction(transaction_id)["status"] == "pending"
    assert money.events(transaction_id) == []
    assert money.ledger(transaction_id) == []


def test_a_signed_body_that_is_no_invoice_callback_is_recorded_and_acknowledged(money: Money) -> None:
    marker = uuid.uuid4().hex
    webhook = f"{money.stack.functions_url}/xendit_webhook"
    signed = {"x-callback-token": XENDIT_CALLBACK_TOKEN}

    stranger = money.deliver({"event": "payment_method.activated", "marker": marker})
    not_json = requests.post(webhook, data=b"{", headers=signed, timeout=10)
    not_post = requests.get(webhook, headers=signed, timeout=10)

    assert (stranger.status_code, stranger.json()) == (200, {"outcome": "ignored"}), "retrying it cannot help"
    with money.db.transaction() as tx:
        recorded = tx.one("SELECT outcome, reason FROM payment_events WHERE payload->>'marker' = :m", {"m": marker})
    assert recorded == {"outcome": "ignored", "reason": "malformed"}
    assert (not_json.status_code, not_json.json()["error"]["code"]) == (400, "invalid_request")
    assert (not_post.status_code, not_post.json()["error"]["code"]) == (405, "method_not_allowed")


def test_a_payment_of_another_amount_or_currency_is_quarantined(money: Money, new_client: Callable[..., App]) -> None:
    client = new_client()
    transaction_id, invoice_id = money.checkout(client)
    amount = money.transaction(transaction_id)["amount"]

    money.pay(invoice_id, paid_amount=amount - 5_000)

    _wait_until(lambda: bool(money.events(transaction_id)))
    assert money.events(transaction_id) == [{"outcome": "quarantined", "reason": "amount_mismatch"}]
    in_dollars = money.deliver(
        _callback(transaction_id, invoice_id, "PAID", amount, paid_amount=amount) | {"currency": "USD"}
    )
    assert in_dollars.json() == {"outcome": "quarantined"}
    assert money.events(transaction_id)[-1] == {"outcome": "quarantined", "reason": "currency_mismatch"}
    assert money.transaction(transaction_id)["status"] == "pending"
    assert money.transaction(transaction_id)["credit"] is None
    assert money.ledger(transaction_id) == []
    assert _credits(client) == []
    with money.db.transaction() as tx:
        to_review = tx.scalar(
            """SELECT count(*) FROM payment_events
               WHERE external_id = :id AND outcome = 'quarantined' AND reviewed_at IS NULL""",
            {"id": transaction_id},
        )
    assert to_review == 2


def test_quarantined_payments_page_newest_first(money: Money, new_client: Callable[..., App], admin: App) -> None:
    client = new_client()
    transaction_id, invoice_id = money.checkout(client)
    amount = money.transaction(transaction_id)["amount"]
    money.pay(invoice_id, paid_amount=amount - 5_000)
    _wait_until(lambda: bool(money.events(transaction_id)))
    money.deliver(_callback(transaction_id, invoice_id, "PAID", amount, paid_amount=amount) | {"currency": "USD"})

    first = admin.get("admin_payment_events", status="unreviewed", limit=1)
    second = admin.get("admin_payment_events", status="unreviewed", limit=1, cursor=first.body["next_cursor"])
    bad = admin.get("admin_payment_events", cursor="not-ours")

    assert [e["reason"] for e in first.body["events"] + second.body["events"]] == [
        "currency_mismatch",
        "amount_mismatch",
    ], "the newest first, then the one before it"
    assert {e["transaction_id"] for e in first.body["events"] + second.body["events"]} == {transaction_id}
    assert (bad.status, bad.error_code) == (400, "invalid_request")


def test_an_admin_reviews_a_quarantined_payment_once_audited(
    money: Money, new_client: Callable[..., App], admin: App
) -> None:
    client = new_client()
    transaction_id, invoice_id = money.checkout(client)
    amount = money.transaction(transaction_id)["amount"]
    money.pay(invoice_id, paid_amount=amount - 5_000)
    _wait_until(lambda: bool(money.events(transaction_id)))

    listed = admin.get("admin_payment_events", status="unreviewed", limit=200)
    assert listed.status == 200, listed.body
    (event,) = [e for e in listed.body["events"] if e["transaction_id"] == transaction_id]
    assert (event["reason"], event["amount"], event["paid_amount"], event["reviewed_at"]) == (
        "amount_mismatch",
        amount,
        amount - 5_000,
        None,
    )
    assert "payload" not in event, "the raw callback (payer details) stays in PostgreSQL"

    note = "Refunded Rp5.000 short payment in Xendit dashboard; client told."
    reviewed = admin.post("admin_payment_events", {"action": "review", "event_id": event["event_id"], "note": note})
    again = admin.post("admin_payment_events", {"action": "review", "event_id": event["event_id"], "note": "again"})
    missing = admin.post("admin_payment_events", {"action": "review", "event_id": event["event_id"]})
    unknown = admin.post("admin_payment_events", {"action": "review", "event_id": 2**40, "note": "x"})
    as_client = client.get("admin_payment_events")

    assert reviewed.status == 200 and reviewed.body["events"][0]["review_note"] == note, reviewed.body
    assert reviewed.body["events"][0]["reviewed_by"] == uid_of(admin)
    assert again.body["events"][0]["review_note"] == note, "the first review stands"
    assert (missing.status, missing.error_code) == (400, "invalid_request")
    assert [f["field"] for f in missing.body["error"]["fields"]] == ["note"]
    assert (unknown.status, unknown.error_code) == (404, "not_found")
    assert as_client.status == 403
    still_open = admin.get("admin_payment_events", status="unreviewed", limit=200).body["events"]
    assert event["event_id"] not in [e["event_id"] for e in still_open]
    assert money.transaction(transaction_id)["status"] == "pending", "reviewing moves no money"
    with money.db.transaction() as tx:
        audited = tx.all(
            "SELECT actor_uid, new_value FROM audit_log WHERE action = 'payment_event.review' AND target = :t",
            {"t": str(event["event_id"])},
        )
    assert audited == [{"actor_uid": uid_of(admin), "new_value": {"reviewed": True, "note": note}}]


# -- expiry ----------------------------------------------------------------------------------------------------------


def test_an_unpaid_invoice_expires_when_its_timeout_task_fires(money: Money, new_client: Callable[..., App]) -> None:
    client = new_client()
    transaction_id, invoice_id = money.checkout(client)
    tasks = CloudTasksScheduler(
        project=PROJECT,
        location="asia-southeast2",
        target_base_url=money.stack.functions_url,
        service_account_email=TASKS_SERVICE_ACCOUNT,
        emulator_host=f"127.0.0.1:{money.stack.ports.tasks}",
    )
    timeout = {
        "queue": "payment-timeouts",
        "handler": "task_payment_timeout",
        "payload": {"transaction_id": transaction_id},
    }
    assert not tasks.schedule(task_id=f"payment-timeout-{transaction_id}", at=None, **timeout), (
        "checkout scheduled its timeout under the deterministic name"
    )
    # The configured window is at least a minute; close it now instead of waiting.
    with money.db.transaction() as tx:
        tx.execute(
            "UPDATE customer_transactions SET expires_at = now() WHERE id = CAST(:id AS uuid)", {"id": transaction_id}
        )

    tasks.schedule(task_id=f"payment-timeout-{transaction_id}-now", at=datetime.now(UTC), **timeout)

    _wait_until(lambda: money.transaction(transaction_id)["status"] == "expired")
    assert money.xendit.get_invoice(invoice_id).status == "EXPIRED"
    too_late = requests.post(f"{money.standin}/_standin/invoices/{invoice_id}/pay", timeout=10)
    assert too_late.status_code == 409, "Xendit no longer takes money for it"
    # Xendit's own expiry callback races the task's commit: whichever lands second finds it done.
    _wait_until(lambda: bool(money.events(transaction_id)))
    assert [e["outcome"] for e in money.events(transaction_id)] in (["applied"], ["duplicate"])
    assert money.ledger(transaction_id) == [], "no money moved"
    refused = client.post("pairing_request", {"tier_id": "sesi-30"})
    assert (refused.status, refused.error_code) == (409, "payment_required")


def test_an_invoice_expired_at_xendit_expires_the_transaction_by_callback(
    money: Money, new_client: Callable[..., App]
) -> None:
    transaction_id, invoice_id = money.checkout(new_client())

    expired = requests.post(f"{money.standin}/_standin/invoices/{invoice_id}/expire", timeout=10)

    assert expired.status_code == 200
    _wait_until(lambda: money.transaction(transaction_id)["status"] == "expired")
    assert money.events(transaction_id) == [{"outcome": "applied", "reason": None}]
    assert money.ledger(transaction_id) == []


# -- credits and pairing ---------------------------------------------------------------------------------------------


@pytest.mark.needs_gcloud
@pytest.mark.usefixtures("quiet_world")
def test_a_paid_request_nobody_takes_keeps_the_credit_for_the_next_request(
    money: Money,
    new_client: Callable[..., App],
    new_mitra: Callable[..., App],
    app_config: Callable[..., None],
    watches: Callable[[Watch], Watch],
) -> None:
    client = new_client()
    transaction_id = money.paid_credit(client)
    app_config(wait_when_nobody_online=False)

    nobody_online = client.post("pairing_request", {"tier_id": "sesi-30"})

    assert nobody_online.body["status"] == "no_mitra"
    assert _credits(client) == ONE_SESSION_30
    app_config(pairing_search_window_s=5)
    mitra = new_mitra()
    unanswered = client.post("pairing_request", {"tier_id": "sesi-30"})
    assert unanswered.body["status"] == "searching"
    assert _credits(client) == [], "held by the searching request"
    request = watches(Watch.document(f"pairing_requests/{unanswered.body['request_id']}"))
    request.wait_for(lambda docs: any(d.get("status") == "no_mitra" for d in docs.values()), timeout=15)
    assert _credits(client) == ONE_SESSION_30
    _matched(client, mitra, watches)
    assert _credits(client) == []
    assert money.ledger(transaction_id) == [
        "payment_received",
        *["credit_reserved", "credit_released"] * 2,
        "credit_reserved",
        "credit_consumed",
    ]


@pytest.mark.needs_gcloud
@pytest.mark.usefixtures("quiet_world")
def test_a_cancelled_paid_request_gives_the_credit_back(
    money: Money, new_client: Callable[..., App], new_mitra: Callable[..., App]
) -> None:
    new_mitra()
    client = new_client()
    transaction_id = money.paid_credit(client)
    request_id = client.post("pairing_request", {"tier_id": "sesi-30"}).body["request_id"]

    assert client.post("pairing_cancel", {"request_id": request_id}).body["status"] == "cancelled"

    assert _credits(client) == ONE_SESSION_30
    assert money.ledger(transaction_id) == ["payment_received", "credit_reserved", "credit_released"]


# -- checkout --------------------------------------------------------------------------------------------------------


def test_checkout_with_the_same_idempotency_key_gives_the_same_invoice(
    money: Money, new_client: Callable[..., App]
) -> None:
    client = new_client()

    first = client.post("billing_checkout", SESSION_30, idempotency_key="bayar-1")
    again = client.post("billing_checkout", SESSION_30, idempotency_key="bayar-1")
    with ThreadPoolExecutor(8) as pool:
        racing = list(
            pool.map(lambda _: client.post("billing_checkout", SESSION_30, idempotency_key="bayar-2"), range(8))
        )
    other_tier = client.post("billing_checkout", {**SESSION_30, "tier_id": "sesi-60"}, idempotency_key="bayar-1")
    without_key = [client.post("billing_checkout", SESSION_30) for _ in range(2)]

    assert first.status == 200, first.body
    assert again.body == first.body
    assert [r.status for r in racing] == [200] * 8, [r.body for r in racing]
    assert {(r.status, r.body["transaction_id"], r.body["invoice_url"]) for r in racing} == {
        (200, racing[0].body["transaction_id"], racing[0].body["invoice_url"])
    }
    assert (other_tier.status, other_tier.error_code) == (409, "idempotency_key_reused")
    assert without_key[0].body["transaction_id"] != without_key[1].body["transaction_id"]
    with money.db.transaction() as tx:
        keyed = tx.all(
            """SELECT idempotency_key, count(*) AS n FROM customer_transactions t JOIN clients c ON c.id = t.client_id
               WHERE c.firebase_uid = :uid AND idempotency_key IS NOT NULL GROUP BY idempotency_key""",
            {"uid": uid_of(client)},
        )
    assert {row["idempotency_key"]: row["n"] for row in keyed} == {"bayar-1": 1, "bayar-2": 1}
    invoices = requests.get(
        f"{money.standin}/v2/invoices",
        params={"external_id": racing[0].body["transaction_id"]},
        auth=(XENDIT_SECRET_KEY, ""),
        timeout=10,
    ).json()
    assert [inv["status"] for inv in invoices].count("PENDING") == 1, "a spare invoice of the race is expired"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"tier_id": "sesi-30", "purpose": "extension"}, "body"),
        ({"tier_id": "sesi-30", "purpose": "session", "extension_id": str(uuid.uuid4())}, "body"),
        ({"tier_id": "sesi-30", "purpose": "gift"}, "purpose"),
        ({"tier_id": "sesi-999", "purpose": "session"}, "tier_id"),
    ],
)
def test_checkout_refuses_bad_input(new_client: Callable[..., App], body: dict[str, Any], field: str) -> None:
    reply = new_client().post("billing_checkout", body)

    assert (reply.status, reply.error_code) == (400, "invalid_request"), reply.body
    assert field in [f["field"] for f in reply.body["error"]["fields"]]


def test_an_amount_sent_with_a_checkout_is_ignored_the_price_is_ours(
    money: Money, new_client: Callable[..., App]
) -> None:
    """Unknown fields are ignored, not refused (docs/contract.md, Compatibility): a client cannot name its price."""
    client = new_client()
    price = next(tier["price"] for tier in client.get("pricing_quote").body["tiers"] if tier["id"] == "sesi-30")

    transaction_id, _ = money.checkout(client, {"tier_id": "sesi-30", "purpose": "session", "amount": 1})

    assert money.transaction(transaction_id)["amount"] == price != 1


def test_an_extension_checkout_needs_an_extension_awaiting_payment(new_client: Callable[..., App]) -> None:
    reply = new_client().post(
        "billing_checkout", {"tier_id": "sesi-30", "purpose": "extension", "extension_id": str(uuid.uuid4())}
    )

    assert (reply.status, reply.error_code) == (409, "extension_not_found")


def test_only_a_client_checks_out(admin: App) -> None:
    assert admin.post("billing_checkout", SESSION_30).status == 403


# -- refunds ---------------------------------------------------------------------------------------------------------


def test_an_admin_refunds_an_unused_credit_once(money: Money, new_client: Callable[..., App], admin: App) -> None:
    client = new_client()
    transaction_id = money.paid_credit(client, payment_method="EWALLET", payment_channel="DANA")
    body = {"transaction_id": transaction_id, "reason": "klien minta dana kembali"}

    refunded = admin.post("admin_refund", body)
    again = admin.post("admin_refund", body)

    assert refunded.status == 200, refunded.body
    assert refunded.body["amount"] == money.transaction(transaction_id)["amount"]
    assert (refunded.body["status"], refunded.body["currency"]) == ("refunded", "IDR")
    assert again.body == refunded.body
    assert [(r["id"], r["amount"]) for r in money.refunds_at_xendit(transaction_id)] == [
        (refunded.body["refund_id"], refunded.body["amount"])
    ]
    assert money.transaction(transaction_id)["credit"] == "refunded"
    assert money.ledger(transaction_id) == ["payment_received", "refund"]
    with money.db.transaction() as tx:
        audit = tx.one(
            "SELECT actor_role, new_value FROM audit_log WHERE action = 'billing.refund' AND target = :target",
            {"target": f"customer_transactions/{transaction_id}"},
        )
    assert audit is not None
    assert (audit["actor_role"], audit["new_value"]["reason"]) == ("admin", body["reason"])
    assert _credits(client) == []
    assert client.post("pairing_request", {"tier_id": "sesi-30"}).error_code == "payment_required"
    assert client.post("admin_refund", body).status == 403


def test_xendit_refusing_a_refund_leaves_the_credit_with_the_client(
    money: Money, new_client: Callable[..., App], admin: App
) -> None:
    client = new_client()
    transaction_id = money.paid_credit(client, payment_method="BANK_TRANSFER")

    refused = admin.post("admin_refund", {"transaction_id": transaction_id, "reason": "klien minta dana kembali"})

    assert (refused.status, refused.error_code) == (409, "refund_refused")
    assert refused.body["error"]["provider_code"] == "REFUND_NOT_SUPPORTED"
    assert money.transaction(transaction_id)["credit"] == "available"
    assert money.ledger(transaction_id) == ["payment_received"]
    assert _credits(client) == ONE_SESSION_30


def test_an_unpaid_transaction_is_not_refundable(money: Money, new_client: Callable[..., App], admin: App) -> None:
    transaction_id, _ = money.checkout(new_client())

    refused = admin.post("admin_refund", {"transaction_id": transaction_id, "reason": "salah bayar"})
    unknown = admin.post("admin_refund", {"transaction_id": str(uuid.uuid4()), "reason": "salah bayar"})

    assert (refused.status, refused.error_code) == (409, "not_refundable")
    assert (unknown.status, unknown.error_code) == (404, "not_found")


@pytest.mark.needs_gcloud
@pytest.mark.usefixtures("quiet_world")
def test_a_credit_a_session_used_cannot_be_refunded(
    money: Money,
    new_client: Callable[..., App],
    new_mitra: Callable[..., App],
    admin: App,
    watches: Callable[[Watch], Watch],
) -> None:
    client = new_client()
    transaction_id = money.paid_credit(client, payment_method="EWALLET")
    _matched(client, new_mitra(), watches)

    refused = admin.post("admin_refund", {"transaction_id": transaction_id, "reason": "klien minta dana kembali"})

    assert (refused.status, refused.error_code) == (409, "credit_consumed")
    assert money.ledger(transaction_id) == ["payment_received", "credit_reserved", "credit_consumed"]
    assert money.refunds_at_xendit(transaction_id) == []


# -- refunds Xendit confirms later -----------------------------------------------------------------------------------


def test_a_pending_refund_holds_the_credit_until_xendit_confirms_it(
    money: Money, new_client: Callable[..., App], admin: App
) -> None:
    client = new_client()
    transaction_id = money.paid_credit(client, payment_method="EWALLET", payment_channel="OVO")
    money.refunds_answer(transaction_id, "PENDING")

    pending = _refund(admin, transaction_id)
    again = _refund(admin, transaction_id)

    assert pending.status == 200, pending.body
    assert (pending.body["status"], pending.body["amount"]) == (
        "refunding",
        money.transaction(transaction_id)["amount"],
    )
    assert again.body == pending.body, "the same refund, not a second one"
    [at_xendit] = money.refunds_at_xendit(transaction_id)
    assert (at_xendit["id"], at_xendit["status"]) == (pending.body["refund_id"], "PENDING")
    assert money.transaction(transaction_id)["credit"] == "refunding"
    assert money.ledger(transaction_id) == ["payment_received"], "no money has gone back yet"
    assert _credits(client) == []
    assert client.post("pairing_request", {"tier_id": "sesi-30"}).error_code == "payment_required"

    money.complete_refund(pending.body["refund_id"], "SUCCEEDED")

    _wait_until(lambda: money.transaction(transaction_id)["credit"] == "refunded")
    assert money.ledger(transaction_id) == ["payment_received", "refund"]
    assert money.refund_events(transaction_id) == [{"outcome": "applied", "reason": None}]
    assert _refund(admin, transaction_id).body == {**pending.body, "status": "refunded"}
    assert money.audit(transaction_id) == [("billing.refund", "admin"), ("billing.refund_succeeded", "provider")]
    with money.db.transaction() as tx:
        refund_row = tx.one(
            """SELECT external_ref, note, created_by FROM ledger_entries
               WHERE transaction_id = CAST(:id AS uuid) AND kind = 'refund'""",
            {"id": transaction_id},
        )
    assert refund_row == {
        "external_ref": pending.body["refund_id"],
        "note": "klien minta dana kembali",
        "created_by": uid_of(admin),
    }
    assert _credits(client) == []


def test_a_failed_refund_gives_the_credit_back_and_a_new_attempt_refunds_it(
    money: Money, new_client: Callable[..., App], admin: App
) -> None:
    client = new_client()
    transaction_id = money.paid_credit(client, payment_method="EWALLET", payment_channel="DANA")
    money.refunds_answer(transaction_id, "PENDING")
    first = _refund(admin, transaction_id)
    assert (first.status, first.body["status"]) == (200, "refunding"), first.body

    money.complete_refund(first.body["refund_id"], "FAILED", failure_code="INSUFFICIENT_BALANCE")

    _wait_until(lambda: money.transaction(transaction_id)["credit"] == "available")
    assert _credits(client) == ONE_SESSION_30, "the client can use it again"
    assert money.ledger(transaction_id) == ["payment_received", "refund_failed"]
    assert money.refund_events(transaction_id) == [{"outcome": "applied", "reason": None}]
    assert money.audit(transaction_id)[-1] == ("billing.refund_failed", "provider")
    money.refunds_answer(transaction_id, "SUCCEEDED")

    second = _refund(admin, transaction_id)

    assert (second.status, second.body["status"]) == (200, "refunded"), second.body
    assert second.body["refund_id"] != first.body["refund_id"]
    assert [(r["id"], r["reference_id"], r["status"]) for r in money.refunds_at_xendit(transaction_id)] == [
        (first.body["refund_id"], f"refund-{transaction_id}", "FAILED"),
        (second.body["refund_id"], f"refund-{transaction_id}-2", "SUCCEEDED"),
    ]
    assert money.transaction(transaction_id)["credit"] == "refunded"
    assert money.ledger(transaction_id) == ["payment_received", "refund_failed", "refund"]
    assert _credits(client) == []


def test_a_refund_xendit_answers_failed_at_once_gives_the_credit_back(
    money: Money, new_client: Callable[..., App], admin: App
) -> None:
    client = new_client()
    transaction_id = money.paid_credit(client, payment_method="EWALLET")
    money.refunds_answer(transaction_id, "FAILED", failure_code="ACCOUNT_ACCESS_BLOCKED")

    failed = _refund(admin, transaction_id)

    assert (failed.status, failed.error_code) == (409, "refund_failed"), failed.body
    assert failed.body["error"]["provider_code"] == "ACCOUNT_ACCESS_BLOCKED"
    assert failed.body["error"]["refund_id"] == money.refunds_at_xendit(transaction_id)[0]["id"]
    assert money.transaction(transaction_id)["credit"] == "available"
    assert money.ledger(transaction_id) == ["payment_received", "refund_failed"]
    assert _credits(client) == ONE_SESSION_30


@pytest.mark.needs_gcloud
@pytest.mark.usefixtures("quiet_world")
def test_a_credit_whose_refund_failed_pays_for_a_session(
    money: Money,
    new_client: Callable[..., App],
    new_mitra: Callable[..., App],
    admin: App,
    watches: Callable[[Watch], Watch],
) -> None:
    client = new_client()
    transaction_id = money.paid_credit(client, payment_method="EWALLET")
    money.refunds_answer(transaction_id, "PENDING")
    refund_id = _refund(admin, transaction_id).body["refund_id"]
    money.complete_refund(refund_id, "FAILED")
    _wait_until(lambda: money.transaction(transaction_id)["credit"] == "available")

    _matched(client, new_mitra(), watches)

    assert money.transaction(transaction_id)["credit"] == "consumed"
    assert money.ledger(transaction_id) == ["payment_received", "refund_failed", "credit_reserved", "credit_consumed"]
    assert _refund(admin, transaction_id).error_code == "credit_consumed"


def test_refund_callbacks_replayed_100_times_concurrently_settle_the_refund_once(
    money: Money, new_client: Callable[..., App], admin: App
) -> None:
    transaction_id = money.paid_credit(new_client(), payment_method="EWALLET")
    money.refunds_answer(transaction_id, "PENDING")
    refund_id = _refund(admin, transaction_id).body["refund_id"]
    money.complete_refund(refund_id, "FAILED")

    # The replays race the first delivery: whichever the database takes first settles the refund.
    replay = f"{money.standin}/_standin/refunds/{refund_id}/callback"
    with ThreadPoolExecutor(25) as pool:
        replays = list(pool.map(lambda _: requests.post(replay, timeout=10).status_code, range(100)))

    assert replays == [200] * 100
    _wait_until(lambda: len(money.refund_events(transaction_id)) == 101, timeout=30)
    outcomes = Counter(e["outcome"] for e in money.refund_events(transaction_id))
    assert outcomes == {"applied": 1, "duplicate": 100}
    assert money.transaction(transaction_id)["credit"] == "available"
    assert money.ledger(transaction_id) == ["payment_received", "refund_failed"]


def test_callbacks_arriving_late_or_twice_never_move_the_money_again(
    money: Money, new_client: Callable[..., App], admin: App
) -> None:
    transaction_id = money.paid_credit(new_client(), payment_method="EWALLET")
    money.refunds_answer(transaction_id, "PENDING")
    first_id = _refund(admin, transaction_id).body["refund_id"]
    failed = money.complete_refund(first_id, "FAILED")
    _wait_until(lambda: money.transaction(transaction_id)["credit"] == "available")
    money.refunds_answer(transaction_id, "SUCCEEDED")
    second = _refund(admin, transaction_id).body
    first, refunded = money.refunds_at_xendit(transaction_id)

    # The first attempt's failure again, after the second attempt succeeded: it was settled long ago.
    stale_failure = money.deliver(failed)
    # Xendit confirming the refund its answer already confirmed.
    confirmed_again = money.deliver(_refund_callback(refunded, "SUCCEEDED"))

    assert (stale_failure.status_code, stale_failure.json()) == (200, {"outcome": "duplicate"})
    assert (confirmed_again.status_code, confirmed_again.json()) == (200, {"outcome": "duplicate"})
    assert money.transaction(transaction_id)["credit"] == "refunded"
    assert money.ledger(transaction_id) == ["payment_received", "refund_failed", "refund"]
    assert second["refund_id"] == refunded["id"] != first["id"]


# -- refunds whose callback was lost ---------------------------------------------------------------------------------


def test_a_refund_whose_callback_was_lost_is_settled_when_an_admin_asks_again(
    money: Money, new_client: Callable[..., App], admin: App
) -> None:
    client = new_client()
    transaction_id = money.paid_credit(client, payment_method="EWALLET", payment_channel="OVO")
    money.refunds_answer(transaction_id, "PENDING")
    pending = _refund(admin, transaction_id)
    assert (pending.status, pending.body["status"]) == (200, "refunding"), pending.body
    refund_id = pending.body["refund_id"]
    money.complete_refund(refund_id, "SUCCEEDED", callback=False)
    assert money.transaction(transaction_id)["credit"] == "refunding", "no callback came"

    refunded = _refund(admin, transaction_id)

    assert (refunded.status, refunded.body) == (200, {**pending.body, "status": "refunded"})
    assert money.transaction(transaction_id)["credit"] == "refunded"
    assert money.ledger(transaction_id) == ["payment_received", "refund"]
    assert money.settlements(transaction_id) == [("billing.refund_succeeded", "reconciled", uid_of(admin))]
    assert money.refund_events(transaction_id) == [], "no callback arrived"
    assert len(money.refunds_at_xendit(transaction_id)) == 1
    assert _credits(client) == []

    money.replay_refund_callback(refund_id)  # Xendit's callback, arriving after all

    _wait_until(lambda: money.refund_events(transaction_id) == [{"outcome": "duplicate", "reason": None}])
    assert money.ledger(transaction_id) == ["payment_received", "refund"]
    assert _refund(admin, transaction_id).body == refunded.body


def test_a_refund_whose_lost_callback_said_failed_gives_the_credit_back_and_a_new_attempt_refunds_it(
    money: Money, new_client: Callable[..., App], admin: App
) -> None:
    client = new_client()
    transaction_id = money.paid_credit(client, payment_method="EWALLET", payment_channel="DANA")
    money.refunds_answer(transaction_id, "PENDING")
    first = _refund(admin, transaction_id).body
    money.complete_refund(first["refund_id"], "FAILED", failure_code="INSUFFICIENT_BALANCE", callback=False)

    failed = _refund(admin, transaction_id)

    assert (failed.status, failed.error_code) == (409, "refund_failed"), failed.body
    assert (failed.body["error"]["provider_code"], failed.body["error"]["refund_id"]) == (
        "INSUFFICIENT_BALANCE",
        first["refund_id"],
    )
    assert money.transaction(transaction_id)["credit"] == "available"
    assert _credits(client) == ONE_SESSION_30, "the client can use it again"
    assert money.ledger(transaction_id) == ["payment_received", "refund_failed"]
    assert money.settlements(transaction_id) == [("billing.refund_failed", "reconciled", uid_of(admin))]
    money.refunds_answer(transaction_id, "SUCCEEDED")

    second = _refund(admin, transaction_id)

    assert (second.status, second.body["status"]) == (200, "refunded"), second.body
    assert [(r["reference_id"], r["status"]) for r in money.refunds_at_xendit(transaction_id)] == [
        (f"refund-{transaction_id}", "FAILED"),
        (f"refund-{transaction_id}-2", "SUCCEEDED"),
    ]
    assert money.ledger(transaction_id) == ["payment_received", "refund_failed", "refund"]
    assert _credits(client) == []


def test_the_refund_sweep_settles_a_lost_callback_without_an_admin_once_however_often_it_is_delivered(
    stack: LocalStack, money: Money, new_client: Callable[..., App], admin: App
) -> None:
    client = new_client()
    transaction_id = money.paid_credit(client, payment_method="EWALLET")
    money.refunds_answer(transaction_id, "PENDING")
    refund_id = _refund(admin, transaction_id).body["refund_id"]
    money.complete_refund(refund_id, "SUCCEEDED", callback=False)
    money.pending_since(transaction_id, minutes=60)

    # The tick delivered twice at once, and once more after (Pub/Sub delivers at least once).
    with ThreadPoolExecutor(2) as pool:
        ticks = list(pool.map(lambda _: push_event(stack, "refund_sweep"), range(2)))
    ticks.append(push_event(stack, "refund_sweep"))

    assert [tick.status_code in (200, 204) for tick in ticks] == [True] * 3, [tick.text for tick in ticks]
    assert money.transaction(transaction_id)["credit"] == "refunded"
    assert money.ledger(transaction_id) == ["payment_received", "refund"]
    assert money.settlements(transaction_id) == [("billing.refund_succeeded", "reconciled", "refund_sweep")]
    assert money.refund_events(transaction_id) == []
    assert _refund(admin, transaction_id).body["status"] == "refunded"
    assert _credits(client) == []

    money.replay_refund_callback(refund_id)

    _wait_until(lambda: money.refund_events(transaction_id) == [{"outcome": "duplicate", "reason": None}])
    assert money.ledger(transaction_id) == ["payment_received", "refund"]


def test_the_refund_sweep_leaves_a_refund_still_pending_at_xendit_to_its_callback(
    stack: LocalStack, money: Money, new_client: Callable[..., App], admin: App
) -> None:
    transaction_id = money.paid_credit(new_client(), payment_method="EWALLET")
    money.refunds_answer(transaction_id, "PENDING")
    refund_id = _refund(admin, transaction_id).body["refund_id"]
    money.pending_since(transaction_id, minutes=60)

    tick = push_event(stack, "refund_sweep")

    assert tick.status_code in (200, 204), tick.text
    assert money.transaction(transaction_id)["credit"] == "refunding"
    assert money.ledger(transaction_id) == ["payment_received"]
    money.complete_refund(refund_id, "SUCCEEDED")
    _wait_until(lambda: money.transaction(transaction_id)["credit"] == "refunded")
    assert money.refund_events(transaction_id) == [{"outcome": "applied", "reason": None}]
    assert money.settlements(transaction_id) == [("billing.refund_succeeded", "callback", None)]


def test_a_refund_failing_after_xendit_said_it_succeeded_goes_to_an_admin(
    money: Money, new_client: Callable[..., App], admin: App
) -> None:
    transaction_id = money.paid_credit(new_client(), payment_method="EWALLET")
    refunded = _refund(admin, transaction_id)
    assert refunded.body["status"] == "refunded", refunded.body
    [at_xendit] = money.refunds_at_xendit(transaction_id)

    contradiction = money.deliver(_refund_callback(at_xendit, "FAILED", failure_code="REFUND_FAILED"))

    assert (contradiction.status_code, contradiction.json()) == (200, {"outcome": "quarantined"})
    assert money.refund_events(transaction_id) == [{"outcome": "quarantined", "reason": "refund_failed_after_success"}]
    assert money.transaction(transaction_id)["credit"] == "refunded", "money state is not flipped silently"
    assert money.ledger(transaction_id) == ["payment_received", "refund"]
    listed = admin.get("admin_payment_events", status="unreviewed", limit=200).body["events"]
    [quarantined] = [e for e in listed if e["xendit_refund_id"] == at_xendit["id"]]
    assert (quarantined["kind"], quarantined["reason"], quarantined["transaction_id"]) == (
        "refund",
        "refund_failed_after_success",
        transaction_id,
    )
    assert (quarantined["external_id"], quarantined["provider_status"]) == (f"refund-{transaction_id}", "FAILED")


def test_a_refund_callback_we_cannot_place_is_quarantined_for_an_admin(money: Money, admin: App) -> None:
    refund_id, reference = f"rfd-{uuid.uuid4()}", f"refund-{uuid.uuid4()}"
    stranger = {
        "id": refund_id,
        "payment_request_id": None,
        "invoice_id": "64b0000000000000000000aa",
        "amount": 35_000,
        "currency": "IDR",
        "reason": "REQUESTED_BY_CUSTOMER",
        "reference_id": reference,
        "failure_code": None,
        "refund_fee_amount": 0,
        "metadata": None,
    }

    unknown = money.deliver(_refund_callback(stranger, "SUCCEEDED"))

    assert (unknown.status_code, unknown.json()) == (200, {"outcome": "quarantined"})
    listed = admin.get("admin_payment_events", status="unreviewed", limit=200)
    assert listed.status == 200, listed.body
    [event] = [e for e in listed.body["events"] if e["xendit_refund_id"] == refund_id]
    assert (event["kind"], event["reason"], event["external_id"], event["transaction_id"]) == (
        "refund",
        "unknown_refund",
        reference,
        None,
    )
    assert (event["amount"], event["currency"], event["provider_status"]) == (35_000, "IDR", "SUCCEEDED")
    note = "No such refund in our records; checked Xendit's dashboard."
    reviewed = admin.post("admin_payment_events", {"action": "review", "event_id": event["event_id"], "note": note})
    assert reviewed.body["events"][0]["review_note"] == note


def test_a_refund_callback_without_the_right_token_is_refused_and_changes_nothing(
    money: Money, new_client: Callable[..., App], admin: App
) -> None:
    transaction_id = money.paid_credit(new_client(), payment_method="EWALLET")
    money.refunds_answer(transaction_id, "PENDING")
    _refund(admin, transaction_id)
    [at_xendit] = money.refunds_at_xendit(transaction_id)
    forged = _refund_callback(at_xendit, "SUCCEEDED")

    refused = [money.deliver(forged, token) for token in (None, "", "wrong", XENDIT_CALLBACK_TOKEN + "x")]

    assert [(r.status_code, r.json()["error"]["code"]) for r in refused] == [(401, "unauthenticated")] * 4
    assert money.transaction(transaction_id)["credit"] == "refunding"
    assert money.refund_events(transaction_id) == []
    assert money.ledger(transaction_id) == ["payment_received"]


@pytest.mark.parametrize(
    ("envelope", "refund", "field"),
    [
        ({"event": "refund.pending"}, {}, "event"),
        ({"data": None}, {}, "data"),
        ({}, {"id": None}, "data.id"),
        ({}, {"status": "FAILED"}, "data.status"),
        ({}, {"amount": "35000"}, "data.amount"),
        ({}, {"amount": -1}, "data.amount"),
        ({}, {"currency": None}, "data.currency"),
        ({}, {"reference_id": ""}, "data.reference_id"),
        ({}, {"id": "rfd-\u0000"}, "data.id"),
        ({}, {"reference_id": "refund-\ud800"}, "data.reference_id"),
    ],
)
def test_a_malformed_refund_callback_is_a_400_naming_the_field_and_changes_nothing(
    money: Money,
    new_client: Callable[..., App],
    admin: App,
    envelope: dict[str, Any],
    refund: dict[str, Any],
    field: str,
) -> None:
    transaction_id = money.paid_credit(new_client(), payment_method="EWALLET")
    money.refunds_answer(transaction_id, "PENDING")
    _refund(admin, transaction_id)
    [at_xendit] = money.refunds_at_xendit(transaction_id)
    marker = uuid.uuid4().hex
    callback = _refund_callback(at_xendit, "SUCCEEDED", metadata={"marker": marker}, **refund)

    refused = money.deliver({**callback, **envelope})

    assert (refused.status_code, refused.json()["error"]["code"]) == (400, "invalid_request"), refused.text
    assert field in [f["field"] for f in refused.json()["error"]["fields"]]
    assert money.transaction(transaction_id)["credit"] == "refunding"
    assert money.refund_events(transaction_id) == []
    with money.db.transaction() as tx:
        recorded = tx.scalar(
            "SELECT count(*) FROM payment_events WHERE payload->'data'->'metadata'->>'marker' = :m", {"m": marker}
        )
    assert recorded == 0


# Text includes what JSON can spell and PostgreSQL cannot store: NUL, and lone surrogates.
_TEXT = st.lists(st.characters() | st.integers(0xD800, 0xDFFF).map(chr), max_size=12).map("".join)
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | _TEXT,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(_TEXT, children, max_size=3),
    max_leaves=8,
)
_REFUND_FIELDS = ("id", "status", "amount", "currency", "reference_id", "invoice_id", "failure_code", "metadata")


@settings(max_examples=80, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    event=st.sampled_from(["refund.succeeded", "refund.failed"]) | _TEXT.map("refund.{}".format),
    envelope=st.dictionaries(st.sampled_from(["business_id", "created", "data"]), _JSON, max_size=2),
    data=st.dictionaries(st.sampled_from(_REFUND_FIELDS), _JSON, max_size=len(_REFUND_FIELDS)),
)
def test_no_signed_refund_callback_is_answered_with_a_5xx(
    money: Money, event: str, envelope: dict[str, Any], data: dict[str, Any]
) -> None:
    answered = money.deliver({"event": event, "data": data, **envelope})

    assert answered.status_code in (200, 400), answered.text
