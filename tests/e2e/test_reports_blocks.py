"""Reports and blocks end to end through the gateway on PostgreSQL, Firestore and FCM: either side reports the
other into the control center's queue (the admin on duty's phone is told), a client's report of a crisis raises a
crisis alert, an admin decides a report once (audited); a blocked pair is never offered to each other again, an
offer made before the block cannot be accepted, and each side lists and lifts its own blocks."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from emulators.simulator import App, Watch
from emulators.stack import LocalStack
from shared.adapters.postgres.database import Database
from tests.support.delivery import pushes_to, register_device
from tests.support.people import Pair, account_id, add_tier, pay_checkout, retire_tiers, uid_of

pytestmark = pytest.mark.needs_gcloud


@pytest.fixture
def tier(halo_db: Database) -> Iterator[str]:
    """A paid tier, for a client's second request (their free trial is spent)."""
    tier_id = add_tier(halo_db, 600)
    yield tier_id
    retire_tiers(halo_db, [tier_id])


def _close(db: Database, session_id: str) -> None:
    with db.transaction() as tx:
        tx.execute(
            "UPDATE sessions SET status = 'closed', closed_at = now() WHERE id = CAST(:s AS uuid)", {"s": session_id}
        )


def _paid_request(stack: LocalStack, db: Database, client: App, tier_id: str) -> str:
    pay_checkout(client, db, stack.ports.xendit, {"tier_id": tier_id, "purpose": "session"})
    asked = client.post("pairing_request", {"tier_id": tier_id})
    assert asked.status == 200 and asked.body["status"] == "searching", asked.body
    return str(asked.body["request_id"])


def _offered(db: Database, request_id: str) -> set[str]:
    with db.transaction() as tx:
        rows = tx.all(
            "SELECT m.firebase_uid FROM pairing_offers o JOIN mitras m ON m.id = o.mitra_id"
            " WHERE o.request_id = CAST(:r AS uuid)",
            {"r": request_id},
        )
    return {row["firebase_uid"] for row in rows}


def _sees_the_offer(mitra: App, request_id: str) -> None:
    """Waits until the request's offer document is on the mitra's Firestore listener."""
    offers = Watch.collection(f"mitras/{uid_of(mitra)}/offers")
    try:
        offers.wait_for(lambda docs: any(path.endswith(request_id) for path in docs))
    finally:
        offers.close()


# -- reports -----------------------------------------------------------------------------------------------------------


def test_a_report_joins_the_queue_the_admin_on_duty_is_pushed_and_it_is_decided_once(
    stack: LocalStack, paired: Callable[..., Pair], admin: App, halo_db: Database
) -> None:
    pair = paired()
    admin_token = register_device(admin)

    body = {"session_id": pair.session_id, "category": "abusive_language", "text": "memaki terus"}
    filed = pair.mitra.post("session_report", body, idempotency_key="lapor-1")
    retried = pair.mitra.post("session_report", body, idempotency_key="lapor-1")

    assert filed.status == 200, filed.body
    report_id = filed.body["report_id"]
    assert (filed.body["status"], filed.body["category"]) == ("open", "abusive_language")
    assert retried.status == 200 and retried.body == filed.body, "a keyed retry gets the first report"
    pushed = [p for p in pushes_to(stack, admin_token) if p["data"].get("report_id") == report_id]
    assert [p["data"]["type"] for p in pushed] == ["report_filed"]
    assert "memaki" not in json.dumps(pushed)
    queue = admin.get("admin_reports", status="open", category="abusive_language")
    assert queue.status == 200, queue.body
    (listed,) = [r for r in queue.body["reports"] if r["report_id"] == report_id]
    assert (listed["reporter_role"], listed["text"], listed["session_id"]) == ("mitra", "memaki terus", pair.session_id)

    decided = admin.post("admin_reports", {"action": "resolve", "report_id": report_id, "note": "klien ditegur"})

    assert decided.status == 200, decided.body
    assert decided.body["reports"][0]["status"] == "resolved"
    again = admin.post("admin_reports", {"action": "dismiss", "report_id": report_id})
    assert (again.status, again.body["error"]["code"]) == (409, "report_decided")
    with halo_db.transaction() as tx:
        audits = tx.all("SELECT action, new_value FROM audit_log WHERE target = :t ORDER BY id", {"t": report_id})
    assert audits == [{"action": "report.resolved", "new_value": {"status": "resolved"}}], "audited, no note"
    with halo_db.transaction() as tx:
        reads = tx.all(
            "SELECT new_value FROM audit_log WHERE action = 'reports.read' AND actor_uid = :u AND target = :t",
            {"u": uid_of(admin), "t": "abusive_language"},
        )
    assert {"status": "open", "reports": len(queue.body["reports"])} in [r["new_value"] for r in reads]
    bad = pair.client.post("session_report", {"session_id": pair.session_id, "category": "rude", "text": "x"})
    assert bad.status == 400 and [f["field"] for f in bad.body["error"]["fields"]] == ["category"]
    assert pair.client.get("admin_reports").status == 403


def test_reports_are_one_per_session_side_and_category_and_at_most_reports_per_hour(
    paired: Callable[..., Pair], app_config: Callable[..., None], halo_db: Database
) -> None:
    app_config(reports_per_hour=2)
    pair = paired()

    def report(category: str, text: str = "dia kasar") -> Any:
        return pair.mitra.post("session_report", {"session_id": pair.session_id, "category": category, "text": text})

    first = report("harassment")
    again = report("harassment", "lagi dan lagi")
    second = report("abusive_language")
    limited = report("spam_or_scam")
    from_the_client = pair.client.post(
        "session_report", {"session_id": pair.session_id, "category": "other", "text": "mitra tidak sopan"}
    )
    crisis = report("crisis", "klien bilang ingin mengakhiri hidup")

    assert (first.status, second.status) == (200, 200), (first.body, second.body)
    assert again.status == 200 and again.body == first.body, "a second of the same category is answered the first"
    assert (limited.status, limited.error_code) == (429, "rate_limited")
    assert 3500 < int(limited.headers["Retry-After"]) <= 3600
    assert limited.body["error"]["retry_after_s"] == int(limited.headers["Retry-After"])
    assert from_the_client.status == 200, "the limit is per account"
    assert crisis.status == 200, "a report of a crisis is never refused by the hourly limit"
    with halo_db.transaction() as tx:
        filed = tx.all(
            "SELECT reporter_role, category, text FROM reports WHERE session_id = CAST(:s AS uuid)"
            " ORDER BY created_at, id",
            {"s": pair.session_id},
        )
    assert [(r["reporter_role"], r["category"], r["text"]) for r in filed] == [
        ("mitra", "harassment", "dia kasar"),
        ("mitra", "abusive_language", "dia kasar"),
        ("client", "other", "mitra tidak sopan"),
        ("mitra", "crisis", "klien bilang ingin mengakhiri hidup"),
    ]


def test_a_client_s_report_of_a_crisis_raises_a_crisis_alert(
    paired: Callable[..., Pair], admin: App, watches: Callable[[Watch], Watch]
) -> None:
    pair = paired()
    alerts = watches(Watch.collection("admin_alerts"))
    messages = watches(Watch.collection(f"sessions/{pair.session_id}/messages"))

    filed = pair.client.post(
        "session_report", {"session_id": pair.session_id, "category": "crisis", "text": "aku tidak aman malam ini"}
    )

    assert filed.status == 200, filed.body
    report_id = filed.body["report_id"]
    seen = alerts.wait_for(lambda docs: any(d.get("report_id") == report_id for d in docs.values()))
    (alert,) = [d for d in seen.values() if d.get("report_id") == report_id]
    assert (alert["session_id"], alert["category"], alert["status"]) == (pair.session_id, "acute_distress", "open")
    assert "aman" not in json.dumps(alert, default=str)
    listed = admin.get("admin_alerts", status="unacknowledged")
    assert [a["report_id"] for a in listed.body["alerts"] if a["alert_id"] == alert["alert_id"]] == [report_id]
    shown = messages.wait_for(lambda docs: any(d.get("kind") == "system" for d in docs.values()))
    (card,) = [d for d in shown.values() if d.get("kind") == "system"]
    assert card["sender_role"] == "system", "the session still running shows the hotline card"


# -- blocks ------------------------------------------------------------------------------------------------------------


def test_a_client_s_block_keeps_the_mitra_from_their_requests_until_lifted(
    stack: LocalStack,
    paired: Callable[..., Pair],
    new_mitra: Callable[..., App],
    halo_db: Database,
    tier: str,
) -> None:
    pair = paired("Sari", "Mitra Diblokir")
    _close(halo_db, pair.session_id)
    other = new_mitra("Mitra Lain")

    made = pair.client.post("blocks", {"action": "block", "session_id": pair.session_id})

    assert made.status == 200, made.body
    (block,) = made.body["blocks"]
    assert (block["blocked_by"], block["other_name"]) == ("client", "Mitra Diblokir")
    again = pair.client.post("blocks", {"action": "block", "session_id": pair.session_id})
    assert again.body["blocks"][0]["block_id"] == block["block_id"], "blocking again answers the same block"
    request_id = _paid_request(stack, halo_db, pair.client, tier)
    _sees_the_offer(other, request_id)
    assert _offered(halo_db, request_id) == {uid_of(other)}, "the blast left the blocked mitra out"
    assert pair.mitra.post("mitra_set_status", {"status": "offline"}).status == 200
    assert pair.mitra.post("mitra_set_status", {"status": "online"}).status == 200
    assert _offered(halo_db, request_id) == {uid_of(other)}, "coming online offers no blocked client's request"
    assert pair.client.post("pairing_cancel", {"request_id": request_id}).status == 200

    lifted = pair.client.post("blocks", {"action": "unblock", "block_id": block["block_id"]})

    assert lifted.status == 200 and lifted.body["blocks"] == []
    assert pair.client.get("blocks").body["blocks"] == []
    repeat = pair.client.post("blocks", {"action": "unblock", "block_id": block["block_id"]})
    assert (repeat.status, repeat.body["blocks"]) == (200, []), "a repeat is answered as the first, changing nothing"


def test_a_mitra_s_block_refuses_an_accept_of_an_offer_made_before_it(
    stack: LocalStack, paired: Callable[..., Pair], halo_db: Database, tier: str
) -> None:
    pair = paired("Sari", "Mitra Uji")
    _close(halo_db, pair.session_id)
    request_id = _paid_request(stack, halo_db, pair.client, tier)
    _sees_the_offer(pair.mitra, request_id)

    made = pair.mitra.post("blocks", {"action": "block", "session_id": pair.session_id})

    assert made.status == 200, made.body
    assert made.body["blocks"][0]["blocked_by"] == "mitra"
    refused = pair.mitra.post("pairing_accept", {"request_id": request_id})
    assert (refused.status, refused.body["error"]["code"]) == (409, "blocked")
    assert [b["block_id"] for b in pair.mitra.get("blocks").body["blocks"]] == [made.body["blocks"][0]["block_id"]]
    assert pair.client.get("blocks").body["blocks"] == [], "a block says nothing to the other side"
    assert pair.client.post("pairing_cancel", {"request_id": request_id}).status == 200


def test_an_admin_sees_who_blocked_whom_and_lifts_a_block_with_a_reason(
    stack: LocalStack, paired: Callable[..., Pair], admin: App, halo_db: Database, tier: str
) -> None:
    pair = paired("Sari", "Mitra Pemblokir")
    _close(halo_db, pair.session_id)
    made = pair.mitra.post("blocks", {"action": "block", "session_id": pair.session_id})
    assert made.status == 200, made.body
    block_id = made.body["blocks"][0]["block_id"]
    client_id, mitra_id = account_id(halo_db, pair.client), account_id(halo_db, pair.mitra)

    by_mitra = admin.get("admin_blocks", mitra_id=mitra_id)
    by_pair = admin.get("admin_blocks", client_id=client_id, mitra_id=mitra_id)

    assert by_mitra.status == 200, by_mitra.body
    (seen,) = by_mitra.body["blocks"]
    assert seen["block_id"] == block_id and seen["session_id"] == pair.session_id
    assert (seen["blocked_by"], seen["client_id"], seen["mitra_id"]) == ("mitra", client_id, mitra_id)
    assert (seen["client_name"], seen["mitra_name"]) == ("Sari", "Mitra Pemblokir")
    assert by_pair.body["blocks"] == by_mitra.body["blocks"]
    for person in (pair.client, pair.mitra):
        assert person.get("admin_blocks").status == 403, "the control center's alone"
    no_reason = admin.post("admin_blocks", {"action": "lift", "block_id": block_id})
    assert no_reason.status == 400 and "reason" in str(no_reason.body), no_reason.body
    bad_id = admin.get("admin_blocks", client_id="not-a-uuid")
    assert bad_id.status == 400 and "client_id" in str(bad_id.body), bad_id.body
    assert admin.get("admin_blocks", mitra_id=mitra_id).body["blocks"] == [seen], "refusals changed nothing"

    lifted = admin.post(
        "admin_blocks", {"action": "lift", "block_id": block_id, "reason": "diblokir karena salah tekan"}
    )

    assert lifted.status == 200, lifted.body
    assert [b["block_id"] for b in lifted.body["blocks"]] == [block_id]
    assert admin.get("admin_blocks", mitra_id=mitra_id).body["blocks"] == []
    assert pair.mitra.get("blocks").body["blocks"] == [], "gone from its maker's list too"
    with halo_db.transaction() as tx:
        audited = tx.all(
            "SELECT actor_uid, old_value, new_value FROM audit_log WHERE action = 'block.lift' AND target = :b",
            {"b": block_id},
        )
    assert admin.session is not None
    assert [row["actor_uid"] for row in audited] == [admin.session.uid]
    assert audited[0]["old_value"] == {
        "client_id": client_id,
        "mitra_id": mitra_id,
        "blocked_by": "mitra",
        "session_id": pair.session_id,
    }
    assert audited[0]["new_value"] == {"reason": "diblokir karena salah tekan"}
    repeat = admin.post(
        "admin_blocks", {"action": "lift", "block_id": block_id, "reason": "diblokir karena salah tekan"}
    )
    assert (repeat.status, repeat.body["blocks"]) == (200, []), "a repeat is answered as the first, changing nothing"
    with halo_db.transaction() as tx:
        assert (
            tx.scalar("SELECT count(*) FROM audit_log WHERE action = 'block.lift' AND target = :b", {"b": block_id})
            == 1
        )

    # The pair may meet again: the client's next request is offered to that mitra.
    request_id = _paid_request(stack, halo_db, pair.client, tier)
    _sees_the_offer(pair.mitra, request_id)
    assert pair.client.post("pairing_cancel", {"request_id": request_id}).status == 200
