"""Chat end to end: two participants talk through the gateway and listen on Firestore."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator

import pytest

from emulators.simulator import App, Watch
from shared.adapters.postgres.database import Database
from tests.support.people import Pair

pytestmark = pytest.mark.needs_gcloud


@pytest.fixture
def pair(paired: Callable[..., Pair]) -> Pair:
    return paired()


@pytest.fixture
def messages_of(pair: Pair) -> Iterator[Watch]:
    watch = Watch.collection(f"sessions/{pair.session_id}/messages")
    yield watch
    watch.close()


def _send(app: App, session_id: str, text: str, client_message_id: str | None = None) -> dict[str, object]:
    reply = app.post(
        "chat_send",
        {"session_id": session_id, "client_message_id": client_message_id or str(uuid.uuid4()), "text": text},
    )
    assert reply.status == 200, reply.body
    return dict(reply.body)


def test_two_participants_exchange_200_messages_in_order(
    pair: Pair, messages_of: Watch, app_config: Callable[..., None]
) -> None:
    app_config(messages_per_minute=1000)
    sent = []
    for n in range(200):
        sender = pair.client if n % 3 else pair.mitra
        sent.append(_send(sender, pair.session_id, f"pesan {n}"))

    docs = messages_of.wait_for(lambda d: len(d) == 200, timeout=30)

    by_seq = sorted(docs.values(), key=lambda d: d["seq"])
    assert [d["seq"] for d in by_seq] == list(range(1, 201)), "seq is gap-free and ordered"
    assert [d["text"] for d in by_seq] == [f"pesan {n}" for n in range(200)]
    assert [d["sender_role"] for d in by_seq[:3]] == ["mitra", "client", "client"]
    assert all(d["status"] == "sent" for d in by_seq)
    assert [s["seq"] for s in sent] == list(range(1, 201))


def test_receipts_move_forward_only_and_reach_the_sender(pair: Pair) -> None:
    first = _send(pair.client, pair.session_id, "halo")
    second = _send(pair.client, pair.session_id, "apa kabar?")
    session = Watch.document(f"sessions/{pair.session_id}")
    try:
        read = pair.mitra.post(
            "chat_receipts", {"session_id": pair.session_id, "up_to_message_id": second["message_id"], "status": "read"}
        )
        back = pair.mitra.post(
            "chat_receipts",
            {"session_id": pair.session_id, "up_to_message_id": first["message_id"], "status": "delivered"},
        )

        assert read.body == {"delivered_seq": 2, "read_seq": 2}
        assert back.body == {"delivered_seq": 2, "read_seq": 2}, "receipts never go back"
        doc = session.wait_for(
            lambda d: any(v.get("receipts", {}).get("mitra", {}).get("read_seq") == 2 for v in d.values())
        )
        assert next(iter(doc.values()))["receipts"]["mitra"] == {"delivered_seq": 2, "read_seq": 2}
    finally:
        session.close()


def test_a_retried_send_yields_one_message(pair: Pair, messages_of: Watch, halo_db: Database) -> None:
    client_message_id = str(uuid.uuid4())

    first = _send(pair.client, pair.session_id, "sekali saja", client_message_id)
    again = _send(pair.client, pair.session_id, "sekali saja", client_message_id)

    assert first == again
    messages_of.wait_for(lambda d: len(d) == 1)
    with halo_db.transaction() as tx:
        count = tx.scalar(
            "SELECT count(*) FROM chat_messages WHERE session_id = CAST(:s AS uuid)", {"s": pair.session_id}
        )
    assert count == 1


def test_typing_is_throttled_and_expires_by_itself(pair: Pair) -> None:
    body = {"session_id": pair.session_id, "typing": True}

    first = pair.client.post("chat_typing", body)
    chatty = [pair.client.post("chat_typing", body).body["written"] for _ in range(5)]
    stop = pair.client.post("chat_typing", {"session_id": pair.session_id, "typing": False})

    assert first.body == {"written": True, "renew_after_s": 6}
    assert chatty == [False] * 5, "at most one write per 3 s"
    assert stop.body == {"written": True, "renew_after_s": 6}
    session = Watch.document(f"sessions/{pair.session_id}")
    try:
        doc = session.wait_for(
            lambda d: any(
                v.get("typing", {}).get("client", {"x": 1}).get("typing_until", 1) is None for v in d.values()
            )
        )
        assert next(iter(doc.values()))["typing"]["client"]["typing_until"] is None
    finally:
        session.close()


def test_typing_is_a_lease_that_messages_end_without_a_write(pair: Pair) -> None:
    typing = {"session_id": pair.session_id, "typing": True}
    session = Watch.document(f"sessions/{pair.session_id}")
    try:
        started = pair.client.post("chat_typing", typing)
        assert started.body["written"] is True, (started.status, started.body)
        doc = session.wait_for(lambda d: any(v.get("typing", {}).get("client", {}).get("since") for v in d.values()))
        lease = next(iter(doc.values()))["typing"]["client"]
        _send(pair.client, pair.session_id, "satu")
        after_send = pair.client.post("chat_typing", {"session_id": pair.session_id, "typing": False})
        still_typing = pair.client.post("chat_typing", typing)

        assert (lease["typing_until"] - lease["since"]).total_seconds() == 8
        assert after_send.body["written"] is False, "the message after `since` already hid the flag"
        assert still_typing.body["written"] is False, "the lease is renewed only when it is 6 s old"
    finally:
        session.close()


def test_receipts_ride_along_with_the_readers_typing_write(pair: Pair, halo_db: Database) -> None:
    first = _send(pair.client, pair.session_id, "halo")
    second = _send(pair.client, pair.session_id, "kakak di sana?")
    session = Watch.document(f"sessions/{pair.session_id}")
    try:
        for message in (first, second, first):
            pair.mitra.post(
                "chat_receipts",
                {"session_id": pair.session_id, "up_to_message_id": message["message_id"], "status": "delivered"},
            )
        read = pair.mitra.post(
            "chat_receipts", {"session_id": pair.session_id, "up_to_message_id": second["message_id"], "status": "read"}
        )
        typing = pair.mitra.post("chat_typing", {"session_id": pair.session_id, "typing": True})
        doc = session.wait_for(
            lambda d: any(v.get("receipts", {}).get("mitra", {}).get("read_seq") == 2 for v in d.values()), timeout=1.5
        )

        assert read.body == {"delivered_seq": 2, "read_seq": 2}
        assert typing.body["written"] is True
        data = next(iter(doc.values()))
        assert data["receipts"]["mitra"] == {"delivered_seq": 2, "read_seq": 2}
        assert data["typing"]["mitra"]["typing_until"] is not None, "one write carried both"
        with halo_db.transaction() as tx:
            rows = tx.all(
                "SELECT published_at FROM outbox WHERE destination = :path AND payload -> 'data' ? 'receipts'",
                {"path": f"sessions/{pair.session_id}"},
            )
        assert len(rows) == 1, "four receipts calls, one pending row brought up to date"
        assert rows[0]["published_at"] is not None, "the typing write published it"
    finally:
        session.close()


def test_receipts_nothing_carries_arrive_by_themselves_within_seconds(pair: Pair, halo_db: Database) -> None:
    message = _send(pair.client, pair.session_id, "halo")
    session = Watch.document(f"sessions/{pair.session_id}")
    try:
        started = time.monotonic()
        pair.mitra.post(
            "chat_receipts",
            {"session_id": pair.session_id, "up_to_message_id": message["message_id"], "status": "read"},
        )
        session.wait_for(
            lambda d: any(v.get("receipts", {}).get("mitra", {}).get("read_seq") == 1 for v in d.values()), timeout=6
        )
        waited = time.monotonic() - started

        assert 1.5 < waited < 5, f"held back about 2 s for a write to ride along with, then sent alone ({waited:.1f} s)"
    finally:
        session.close()


def test_sending_after_the_end_or_outside_the_session_is_refused(
    pair: Pair, paired: Callable[..., Pair], halo_db: Database
) -> None:
    stranger = paired("Orang Lain", "Mitra Lain")
    outsider = _send_raw(stranger.client, pair.session_id, "boleh ikut?")
    with halo_db.transaction() as tx:
        tx.execute("UPDATE sessions SET ends_at = now() WHERE id = CAST(:s AS uuid)", {"s": pair.session_id})

    late = _send_raw(pair.client, pair.session_id, "masih di sana?")

    assert (outsider.status, outsider.error_code) == (409, "session_not_active")
    assert (late.status, late.error_code) == (409, "session_not_active")


def _send_raw(app: App, session_id: str, text: str):  # type: ignore[no-untyped-def]
    return app.post("chat_send", {"session_id": session_id, "client_message_id": str(uuid.uuid4()), "text": text})


@pytest.mark.parametrize(
    ("text", "field"),
    [("   ", "text"), ("x" * 4001, "text"), ("halo\u0007", "text"), (5, "text")],
)
def test_bad_messages_are_400_with_the_field(pair: Pair, text: object, field: str) -> None:
    reply = pair.client.post(
        "chat_send", {"session_id": pair.session_id, "client_message_id": str(uuid.uuid4()), "text": text}
    )

    assert (reply.status, reply.error_code) == (400, "invalid_request")
    assert field in [f["field"] for f in reply.body["error"]["fields"]]


def test_history_pages_back_by_seq_and_the_transcript_has_everything(pair: Pair) -> None:
    for n in range(7):
        _send(pair.client if n % 2 else pair.mitra, pair.session_id, f"m{n}")

    newest = pair.client.get("chat_history", session_id=pair.session_id, limit=3).body
    older = pair.client.get("chat_history", session_id=pair.session_id, limit=3, before=newest["next_before"]).body
    oldest = pair.mitra.get("chat_history", session_id=pair.session_id, limit=3, before=older["next_before"]).body
    transcript = pair.mitra.get("session_transcript", session_id=pair.session_id).body

    assert [m["text"] for m in newest["messages"]] == ["m4", "m5", "m6"]
    assert [m["text"] for m in older["messages"]] == ["m1", "m2", "m3"]
    assert ([m["text"] for m in oldest["messages"]], oldest["next_before"]) == (["m0"], None)
    assert [m["seq"] for m in transcript["messages"]] == list(range(1, 8))
    assert transcript["session"]["client_name"].startswith("Bestie #"), "the mitra sees the alias"
    assert pair.client.get("session_transcript", session_id=pair.session_id).body["session"]["client_name"] == "Sari"


def test_sessions_list_is_newest_first_and_private(pair: Pair, paired: Callable[..., Pair]) -> None:
    other = paired("Dewi", "Mitra Dua")

    mine = pair.client.get("sessions_list").body
    theirs = other.client.get("sessions_list").body
    foreign = pair.client.get("chat_history", session_id=other.session_id)

    assert [s["session_id"] for s in mine["sessions"]] == [pair.session_id]
    assert [s["session_id"] for s in theirs["sessions"]] == [other.session_id]
    assert (foreign.status, foreign.error_code) == (404, "not_found")
    assert pair.client.get("sessions_list", cursor="garbage").status == 400


def test_sending_faster_than_configured_is_429_with_retry_after(pair: Pair, app_config: Callable[..., None]) -> None:
    app_config(messages_per_minute=3)
    for n in range(3):
        _send(pair.client, pair.session_id, f"cepat {n}")

    limited = _send_raw(pair.client, pair.session_id, "terlalu cepat")
    other_side = _send_raw(pair.mitra, pair.session_id, "aku masih boleh")

    assert (limited.status, limited.error_code) == (429, "rate_limited")
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    assert other_side.status == 200, "the limit is per sender"
