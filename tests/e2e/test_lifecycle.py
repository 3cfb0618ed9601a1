"""The session's life with short durations: timer, warning, goodbyes, early end, extensions, replayed tasks."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta

import pytest
import requests

from emulators.simulator import Watch
from emulators.stack import LocalStack
from shared.adapters.postgres.database import Database
from tests.support.people import Pair, pay_checkout

pytestmark = pytest.mark.needs_gcloud


@pytest.fixture(autouse=True)
def short_goodbyes(app_config: Callable[..., None]) -> None:
    app_config(goodbye_window_s=3)


@pytest.fixture
def session_watch() -> Iterator[Callable[[str], Watch]]:
    opened: list[Watch] = []

    def watch(session_id: str) -> Watch:
        opened.append(Watch.document(f"sessions/{session_id}"))
        return opened[-1]

    yield watch
    for item in opened:
        item.close()


def _doc(snapshot: dict[str, dict[str, object]]) -> dict[str, object]:
    return next(iter(snapshot.values()), {})


def _status(status: str) -> Callable[[dict[str, dict[str, object]]], bool]:
    return lambda snapshot: _doc(snapshot).get("status") == status


def _row(halo_db: Database, sql: str, **params: object) -> dict[str, object]:
    with halo_db.transaction() as tx:
        row = tx.one(sql, params)
    assert row is not None
    return row


def test_a_session_expires_on_time_then_closes_after_the_goodbye_window(
    timed_session: Callable[[int], Pair], session_watch: Callable[[str], Watch], halo_db: Database
) -> None:
    pair = timed_session(3)
    watch = session_watch(pair.session_id)
    messages = Watch.collection(f"sessions/{pair.session_id}/messages")
    try:
        warned = messages.wait_for(lambda docs: any(d.get("kind") == "system" for d in docs.values()))
        closing = _doc(watch.wait_for(_status("closing"), timeout=10))
        closed = _doc(watch.wait_for(_status("closed"), timeout=10))
    finally:
        messages.close()

    assert "Sesi tinggal" in next(d for d in warned.values() if d["kind"] == "system")["text"], "the warning came first"
    ends_at: datetime = closing["ends_at"]  # type: ignore[assignment]
    closing_at: datetime = closing["closing_at"]  # type: ignore[assignment]
    assert abs(closing_at - ends_at) < timedelta(seconds=1), "expiry within 1 s of ends_at"
    assert closing["close_reason"] == "expired"
    assert closed["status"] == "closed"
    closure = _row(
        halo_db, "SELECT reason, closed_by FROM session_closures WHERE session_id = CAST(:s AS uuid)", s=pair.session_id
    )
    assert closure == {"reason": "expired", "closed_by": "system"}
    ended = _row(
        halo_db, "SELECT ends_at - started_at AS length FROM sessions WHERE id = CAST(:s AS uuid)", s=pair.session_id
    )
    assert ended["length"] == timedelta(seconds=3), "the session lasted its tier"


def test_goodbye_notes_once_per_side_inside_the_window_only(
    timed_session: Callable[[int], Pair], session_watch: Callable[[str], Watch]
) -> None:
    pair = timed_session(2)
    watch = session_watch(pair.session_id)
    watch.wait_for(_status("closing"), timeout=10)
    body = {"session_id": pair.session_id, "text": "Terima kasih, jaga diri ya"}

    chat = pair.client.post(
        "chat_send", {"session_id": pair.session_id, "client_message_id": str(uuid.uuid4()), "text": "satu lagi"}
    )
    first = pair.client.post("session_goodbye", body)
    again = pair.client.post("session_goodbye", {**body, "text": "Satu lagi"})
    watch.wait_for(_status("closed"), timeout=10)
    repeated = pair.client.post("session_goodbye", body)
    late = pair.mitra.post("session_goodbye", {**body, "text": "Sama-sama, semangat!"})

    assert (chat.status, chat.error_code) == (409, "session_not_active"), "no chat while closing"
    assert first.status == 200
    assert (again.status, again.error_code) == (409, "goodbye_already_sent")
    assert (repeated.status, repeated.body) == (200, first.body), "the same note again: its reply was lost"
    assert (late.status, late.error_code) == (409, "goodbye_window_closed")


def test_early_end_follows_the_toggle_per_role(
    paired: Callable[..., Pair],
    app_config: Callable[..., None],
    session_watch: Callable[[str], Watch],
    halo_db: Database,
) -> None:
    app_config(early_end_client=True, early_end_mitra=False)
    pair = paired()
    watch = session_watch(pair.session_id)

    refused = pair.mitra.post("session_end", {"session_id": pair.session_id})
    ended = pair.client.post("session_end", {"session_id": pair.session_id})
    twice = pair.client.post("session_end", {"session_id": pair.session_id})

    assert (refused.status, refused.error_code) == (403, "early_end_disabled")
    assert ended.body == {"session_id": pair.session_id, "status": "closing"}
    assert (twice.status, twice.body) == (200, ended.body), "asked again, the first answer"
    assert _doc(watch.wait_for(_status("closing")))["close_reason"] == "ended_by_client"
    watch.wait_for(_status("closed"), timeout=10)
    closure = _row(
        halo_db, "SELECT reason FROM session_closures WHERE session_id = CAST(:s AS uuid)", s=pair.session_id
    )
    assert closure["reason"] == "ended_by_client"


def test_an_accepted_and_paid_extension_moves_ends_at_and_the_old_timer_is_harmless(
    stack: LocalStack,
    timed_session: Callable[[int], Pair],
    short_tier: Callable[[int], str],
    session_watch: Callable[[str], Watch],
    halo_db: Database,
) -> None:
    pair = timed_session(5)
    extra = short_tier(4)
    watch = session_watch(pair.session_id)
    first_end: datetime = _doc(watch.wait_for(_status("active")))["ends_at"]  # type: ignore[assignment]

    requested = pair.client.post("extension_request", {"session_id": pair.session_id, "tier_id": extra})
    extension_id = requested.body["extension_id"]
    accepted = pair.mitra.post("extension_respond", {"extension_id": extension_id, "accept": True})
    pay_checkout(
        pair.client,
        halo_db,
        stack.ports.xendit,
        {"tier_id": extra, "purpose": "extension", "extension_id": extension_id},
    )

    moved = _doc(watch.wait_for(lambda s: _doc(s).get("version") == 2))
    assert requested.status == 200 and accepted.body["status"] == "accepted"
    assert moved["ends_at"] == first_end + timedelta(seconds=4)
    assert moved["extension"]["status"] == "applied"  # type: ignore[index]
    time.sleep(max(0.0, (first_end - datetime.now(first_end.tzinfo)).total_seconds()) + 1.0)
    assert _doc(watch.snapshots[-1])["status"] == "active", "the first expire task found a stale version"
    closing = _doc(watch.wait_for(_status("closing"), timeout=10))
    assert abs(closing["closing_at"] - moved["ends_at"]) < timedelta(seconds=1)  # type: ignore[operator]


def test_a_rejected_extension_and_one_nobody_answers(
    paired: Callable[..., Pair],
    app_config: Callable[..., None],
    short_tier: Callable[[int], str],
    session_watch: Callable[[str], Watch],
) -> None:
    app_config(extension_timeout_s=5)
    pair = paired()
    tier = short_tier(600)
    watch = session_watch(pair.session_id)

    first = pair.client.post("extension_request", {"session_id": pair.session_id, "tier_id": tier}).body
    pending = pair.client.post("extension_request", {"session_id": pair.session_id, "tier_id": short_tier(900)})
    rejected = pair.mitra.post("extension_respond", {"extension_id": first["extension_id"], "accept": False})
    second = pair.client.post("extension_request", {"session_id": pair.session_id, "tier_id": tier}).body
    timed_out = watch.wait_for(
        lambda s: _doc(s).get("extension", {}).get("status") == "expired",
        timeout=15,  # type: ignore[union-attr]
    )
    late = pair.mitra.post("extension_respond", {"extension_id": second["extension_id"], "accept": True})

    assert (pending.status, pending.error_code) == (409, "extension_pending")
    assert rejected.body["status"] == "rejected"
    assert _doc(timed_out)["extension"]["extension_id"] == second["extension_id"]  # type: ignore[index]
    assert (late.status, late.error_code) == (409, "extension_closed")


def test_a_session_that_expires_with_an_extension_pending_closes_and_voids_it(
    timed_session: Callable[[int], Pair],
    short_tier: Callable[[int], str],
    session_watch: Callable[[str], Watch],
) -> None:
    pair = timed_session(3)
    tier = short_tier(60)
    watch = session_watch(pair.session_id)
    extension = pair.client.post("extension_request", {"session_id": pair.session_id, "tier_id": tier}).body
    pair.mitra.post("extension_respond", {"extension_id": extension["extension_id"], "accept": True})

    closing = _doc(watch.wait_for(_status("closing"), timeout=10))
    checkout = pair.client.post(
        "billing_checkout", {"tier_id": tier, "purpose": "extension", "extension_id": extension["extension_id"]}
    )

    assert closing["extension"]["status"] == "void"  # type: ignore[index]
    assert checkout.status == 409, "a void extension is never charged"


def test_replayed_and_reordered_timer_tasks_leave_the_same_state(
    stack: LocalStack,
    timed_session: Callable[[int], Pair],
    session_watch: Callable[[str], Watch],
    halo_db: Database,
) -> None:
    pair = timed_session(2)
    watch = session_watch(pair.session_id)
    watch.wait_for(_status("closed"), timeout=15)
    before = _row(
        halo_db,
        "SELECT status, version, next_seq, closed_at FROM sessions WHERE id = CAST(:s AS uuid)",
        s=pair.session_id,
    )

    outcomes = [
        requests.post(f"{stack.functions_url}/{handler}", json=payload, timeout=10).json()["outcome"]
        for handler, payload in [
            ("task_session_close", {"session_id": pair.session_id}),
            ("task_session_expire", {"session_id": pair.session_id, "version": 1}),
            ("task_session_warning", {"session_id": pair.session_id, "version": 1}),
            ("task_session_expire", {"session_id": pair.session_id, "version": 1}),
            ("task_session_close", {"session_id": pair.session_id}),
        ]
    ]

    assert outcomes == ["stale"] * 5
    after = _row(
        halo_db,
        "SELECT status, version, next_seq, closed_at FROM sessions WHERE id = CAST(:s AS uuid)",
        s=pair.session_id,
    )
    assert after == before
    closures = _row(
        halo_db, "SELECT count(*) AS n FROM session_closures WHERE session_id = CAST(:s AS uuid)", s=pair.session_id
    )
    assert closures["n"] == 1
