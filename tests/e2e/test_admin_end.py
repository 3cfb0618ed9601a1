"""An admin ends a session, end to end: through the gateway, on PostgreSQL, seen on the session document both apps
listen to and pushed to both phones; the unused paid time credited back shows in the client's `pricing_quote` and
pays (all or part of) the client's next checkouts; a repeat with the key answers the same; the session's own timers
change nothing afterwards."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
import requests

from emulators.simulator import App, Watch
from emulators.stack import XENDIT_SECRET_KEY, LocalStack
from shared.adapters.postgres.database import Database
from tests.support import world
from tests.support.delivery import pushes_to, register_device
from tests.support.people import Pair, uid_of

pytestmark = pytest.mark.needs_gcloud


@pytest.fixture(autouse=True)
def short_goodbyes(app_config: Callable[..., None]) -> None:
    app_config(goodbye_window_s=3)


def _doc(snapshot: dict[str, dict[str, object]]) -> dict[str, object]:
    return next(iter(snapshot.values()), {})


def _status(status: str) -> Callable[[dict[str, dict[str, object]]], bool]:
    return lambda snapshot: _doc(snapshot).get("status") == status


def _end(admin: App, session_id: str, *, goodbye: bool, credit_unused: bool, key: str | None = None) -> Any:
    body = {"session_id": session_id, "reason": "abusive messages", "goodbye": goodbye, "credit_unused": credit_unused}
    return admin.post("admin_session_end", body, idempotency_key=key)


def _closing_pushes(stack: LocalStack, token: str, timeout: float = 20) -> list[dict[str, Any]]:
    """The `session_closing` pushes this device got, once one has arrived (another push, e.g. the `matched` one of
    the pairing just before, may come first)."""
    deadline = time.monotonic() + timeout
    while True:
        closing = [p for p in pushes_to(stack, token, timeout=0) if p["data"]["type"] == "session_closing"]
        if closing or time.monotonic() > deadline:
            return closing
        time.sleep(0.2)


def _audited(db: Database, session_id: str) -> list[dict[str, Any]]:
    with db.transaction() as tx:
        return tx.all(
            "SELECT actor_uid, old_value, new_value FROM audit_log WHERE action = 'session.end' AND target = :t",
            {"t": session_id},
        )


def test_an_admin_closes_a_paid_session_at_once_and_its_unused_time_is_credited_back(
    stack: LocalStack,
    admin: App,
    timed_session: Callable[[int], Pair],
    halo_db: Database,
    watches: Callable[[Watch], Watch],
) -> None:
    pair = timed_session(600)
    client_token, mitra_token = register_device(pair.client), register_device(pair.mitra)
    watch = watches(Watch.document(f"sessions/{pair.session_id}"))
    watch.wait_for(_status("active"))
    key = f"end-{uuid.uuid4()}"

    ended = _end(admin, pair.session_id, goodbye=False, credit_unused=True, key=key)

    assert ended.status == 200, ended.body
    body = ended.body
    assert (body["status"], body["close_reason"], body["goodbye_until"]) == ("closed", "admin", None)
    assert 540 < body["credited_s"] <= 600
    assert body["credited_amount"] == 5000 * body["credited_s"] // 600
    shown = _doc(watch.wait_for(_status("closed"), timeout=10))
    assert shown["close_reason"] == "admin" and shown["closed_at"] is not None
    for token in (client_token, mitra_token):
        (push,) = _closing_pushes(stack, token)
        assert push["data"] == {"type": "session_closing", "session_id": pair.session_id, "reason": "admin"}
    refused = pair.client.post(
        "chat_send", {"session_id": pair.session_id, "client_message_id": str(uuid.uuid4()), "text": "halo?"}
    )
    assert (refused.status, refused.error_code) == (409, "session_not_active")
    quote = pair.client.get("pricing_quote")
    assert [(c["session_id"], c["unused_s"], c["amount"]) for c in quote.body["credited_back"]] == [
        (pair.session_id, body["credited_s"], body["credited_amount"])
    ]
    (audit,) = _audited(halo_db, pair.session_id)
    assert audit["actor_uid"] == uid_of(admin) and audit["old_value"]["status"] == "active"
    assert audit["new_value"]["reason"] == "abusive messages"
    assert audit["new_value"]["credited_amount"] == body["credited_amount"]

    again = _end(admin, pair.session_id, goodbye=False, credit_unused=True, key=key)
    unkeyed = _end(admin, pair.session_id, goodbye=False, credit_unused=True)

    assert (again.status, again.body) == (200, body), "a lost reply asked again with its key"
    assert (unkeyed.status, unkeyed.error_code) == (409, "session_not_active")
    assert len(_audited(halo_db, pair.session_id)) == 1
    assert len(pair.client.get("pricing_quote").body["credited_back"]) == 1


def _invoices(stack: LocalStack, transaction_id: str) -> list[dict[str, Any]]:
    """The invoices Xendit (the stand-in) holds for a transaction, as its dashboard would list them."""
    found = requests.get(
        f"http://127.0.0.1:{stack.ports.xendit}/v2/invoices",
        params={"external_id": transaction_id},
        auth=(XENDIT_SECRET_KEY, ""),
        timeout=10,
    )
    assert found.status_code == 200, found.text
    listed: list[dict[str, Any]] = found.json()
    return listed


def test_the_credited_back_balance_pays_the_next_checkouts_whole_or_in_part(
    stack: LocalStack,
    admin: App,
    timed_session: Callable[[int], Pair],
    short_tier: Callable[..., str],
    halo_db: Database,
) -> None:
    pair = timed_session(600)
    ended = _end(admin, pair.session_id, goodbye=False, credit_unused=True)
    assert ended.status == 200, ended.body
    credited = ended.body["credited_amount"]
    cheap = short_tier(600, 1000)
    quote = pair.client.get("pricing_quote").body
    charges = {t["id"]: (t["price"], t["charge"]) for t in quote["tiers"]}
    assert quote["credit_back_balance"] == credited > 1000
    assert charges[cheap] == (1000, 0) and charges["sesi-30"] == (35_000, 35_000 - credited)

    # Covered whole: paid at once from the balance, a session credit, no invoice at Xendit.
    whole = pair.client.post("billing_checkout", {"tier_id": cheap, "purpose": "session"}, idempotency_key="beli-1")
    again = pair.client.post("billing_checkout", {"tier_id": cheap, "purpose": "session"}, idempotency_key="beli-1")

    assert whole.status == 200, whole.body
    assert (whole.body["status"], whole.body["invoice_url"], whole.body["credit_back_used"]) == ("paid", None, 1000)
    assert again.body == whole.body, "the same key, the same answer, the balance used once"
    assert _invoices(stack, whole.body["transaction_id"]) == []
    quote = pair.client.get("pricing_quote").body
    assert [(c["tier_id"], c["available"]) for c in quote["credits"]] == [(cheap, 1)]
    assert quote["credit_back_balance"] == credited - 1000

    # Covered in part: Xendit's invoice is for the rest.
    part = pair.client.post("billing_checkout", {"tier_id": "sesi-30", "purpose": "session"})

    assert part.status == 200, part.body
    assert (part.body["status"], part.body["credit_back_used"]) == ("pending", credited - 1000)
    (invoice,) = _invoices(stack, part.body["transaction_id"])
    assert invoice["amount"] == part.body["amount"] == 35_000 - (credited - 1000)
    world.pay_invoice(halo_db, stack.ports.xendit, part.body["transaction_id"])
    quote = pair.client.get("pricing_quote").body
    assert quote["credit_back_balance"] == 0
    assert sorted((c["tier_id"], c["available"]) for c in quote["credits"]) == sorted([(cheap, 1), ("sesi-30", 1)])
    with halo_db.transaction() as tx:
        uses = tx.all(
            """SELECT u.kind, u.amount FROM credit_back_uses u JOIN clients c ON c.id = u.client_id
               WHERE c.firebase_uid = :uid ORDER BY u.id""",
            {"uid": uid_of(pair.client)},
        )
    assert [(u["kind"], u["amount"]) for u in uses] == [("use", 1000), ("use", credited - 1000)]


def _status_of(db: Database, transaction_id: str) -> str:
    with db.transaction() as tx:
        return str(
            tx.scalar("SELECT status FROM customer_transactions WHERE id = CAST(:id AS uuid)", {"id": transaction_id})
        )


def test_what_a_checkout_took_from_the_balance_comes_back_on_refund_and_on_expiry(
    stack: LocalStack,
    admin: App,
    timed_session: Callable[[int], Pair],
    short_tier: Callable[..., str],
    halo_db: Database,
) -> None:
    pair = timed_session(600)
    ended = _end(admin, pair.session_id, goodbye=False, credit_unused=True)
    assert ended.status == 200, ended.body
    credited = ended.body["credited_amount"]
    cheap = short_tier(600, 1000)

    # A credit the balance paid whole, refunded: at once, to the balance, nothing through Xendit.
    whole = pair.client.post("billing_checkout", {"tier_id": cheap, "purpose": "session"})
    assert whole.body["status"] == "paid", whole.body
    refunded = admin.post("admin_refund", {"transaction_id": whole.body["transaction_id"], "reason": "klien minta"})

    assert refunded.status == 200, refunded.body
    assert (refunded.body["status"], refunded.body["refund_id"], refunded.body["amount"]) == ("refunded", None, 0)
    assert pair.client.get("pricing_quote").body["credit_back_balance"] == credited

    # A checkout covered in part whose invoice expires at Xendit: what it took comes back.
    part = pair.client.post("billing_checkout", {"tier_id": "sesi-30", "purpose": "session"})
    assert part.body["credit_back_used"] == credited, part.body
    assert pair.client.get("pricing_quote").body["credit_back_balance"] == 0
    (invoice,) = _invoices(stack, part.body["transaction_id"])
    expired = requests.post(
        f"http://127.0.0.1:{stack.ports.xendit}/_standin/invoices/{invoice['id']}/expire", timeout=10
    )
    assert expired.status_code == 200, expired.text
    deadline = time.monotonic() + 15
    while _status_of(halo_db, part.body["transaction_id"]) != "expired":
        assert time.monotonic() < deadline, "the expiry callback never landed"
        time.sleep(0.1)
    assert pair.client.get("pricing_quote").body["credit_back_balance"] == credited


def test_with_the_goodbye_window_both_may_say_goodbye_then_it_closes(
    admin: App, paired: Callable[..., Pair], halo_db: Database, watches: Callable[[Watch], Watch]
) -> None:
    pair = paired()
    watch = watches(Watch.document(f"sessions/{pair.session_id}"))

    ended = _end(admin, pair.session_id, goodbye=True, credit_unused=True)

    assert ended.status == 200, ended.body
    assert (ended.body["status"], ended.body["credited_s"], ended.body["credited_amount"]) == ("closing", 0, 0)
    closing = _doc(watch.wait_for(_status("closing"), timeout=10))
    assert (closing["close_reason"], closing["goodbye_until"] is not None) == ("admin", True)
    said = pair.mitra.post("session_goodbye", {"session_id": pair.session_id, "text": "jaga dirimu ya"})
    assert said.status == 200, said.body
    started = time.monotonic()
    watch.wait_for(_status("closed"), timeout=15)
    assert time.monotonic() - started < 15
    with halo_db.transaction() as tx:
        credited = tx.scalar(
            "SELECT count(*) FROM session_credit_backs WHERE session_id = CAST(:s AS uuid)", {"s": pair.session_id}
        )
    assert credited == 0, "a free trial has nothing to credit back"


def test_bad_input_names_the_field_and_an_unknown_session_is_not_found(admin: App) -> None:
    no_reason = {"session_id": str(uuid.uuid4()), "goodbye": True, "credit_unused": False}
    missing = admin.post("admin_session_end", no_reason)
    blank = _end(admin, "not-a-uuid", goodbye=True, credit_unused=False)
    unknown = _end(admin, str(uuid.uuid4()), goodbye=True, credit_unused=False)

    assert (missing.status, [f["field"] for f in missing.body["error"]["fields"]]) == (400, ["reason"])
    assert (blank.status, [f["field"] for f in blank.body["error"]["fields"]]) == (400, ["session_id"])
    assert (unknown.status, unknown.error_code) == (404, "not_found")
