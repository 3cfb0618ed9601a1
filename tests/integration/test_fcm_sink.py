"""The FCM sink, driven through our production FcmSender (plain session, no Google credentials)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from emulators.process import ManagedProcess, free_port
from shared.adapters.fcm import FcmSender
from shared.domain.notify import PushMessage, PushResult

ROOT = Path(__file__).resolve().parents[2]
PROJECT = "demo-halo"
FCM_ERROR = "type.googleapis.com/google.firebase.fcm.v1.FcmError"


@pytest.fixture(scope="module")
def sink(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    argv = [sys.executable, "-m", "emulators.fcm_sink", "--host", "127.0.0.1", "--port", str(port)]
    process = ManagedProcess("fcm-sink", argv, log_dir=tmp_path_factory.mktemp("fcm"), cwd=ROOT).start()
    try:
        process.wait_port(port, timeout=20)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.stop()


@pytest.fixture(autouse=True)
def empty_sink(sink: str) -> None:
    requests.delete(f"{sink}/_sink/messages", timeout=5).raise_for_status()


@pytest.fixture
def sender(sink: str) -> FcmSender:
    return FcmSender(project=PROJECT, base_url=sink, use_credentials=False, backoff_s=0.01)


def recorded(sink: str, token: str | None = None) -> list[dict[str, Any]]:
    params = {"token": token} if token else {}
    messages: list[dict[str, Any]] = requests.get(f"{sink}/_sink/messages", params=params, timeout=5).json()["messages"]
    return messages


def raw_send(sink: str, body: Any) -> requests.Response:
    return requests.post(f"{sink}/v1/projects/{PROJECT}/messages:send", json=body, timeout=5)


def test_send_is_recorded_with_the_exact_v1_payload(sender: FcmSender, sink: str) -> None:
    result = sender.send(
        token="device-token:APA91b-abc_123",
        data={"type": "chat_message", "session_id": "s-42"},
        notification={"title": "Bestie membalas", "body": "Ada pesan baru"},
    )

    assert result is PushResult.SENT
    [entry] = recorded(sink, "device-token:APA91b-abc_123")
    assert entry["message"] == {
        "token": "device-token:APA91b-abc_123",
        "data": {"type": "chat_message", "session_id": "s-42"},
        "notification": {"title": "Bestie membalas", "body": "Ada pesan baru"},
        "android": {"priority": "high"},
    }
    assert entry["name"].startswith(f"projects/{PROJECT}/messages/")
    assert entry["received_at"]


def test_data_only_message_has_no_notification(sender: FcmSender, sink: str) -> None:
    assert sender.send(token="silent-token", data={"type": "sync"}, android_priority="normal") is PushResult.SENT

    [entry] = recorded(sink, "silent-token")
    assert entry["message"] == {"token": "silent-token", "data": {"type": "sync"}, "android": {"priority": "normal"}}


def test_unregistered_token_is_reported_for_pruning(sender: FcmSender, sink: str) -> None:
    requests.post(f"{sink}/_sink/unregistered", json={"token": "uninstalled-app"}, timeout=5).raise_for_status()

    assert sender.send(token="uninstalled-app", data={"type": "x"}) is PushResult.UNREGISTERED

    assert recorded(sink, "uninstalled-app") == []
    raw = raw_send(sink, {"message": {"token": "uninstalled-app"}})
    assert raw.status_code == 404
    assert raw.json() == {
        "error": {
            "code": 404,
            "message": "Requested entity was not found.",
            "status": "NOT_FOUND",
            "details": [{"@type": FCM_ERROR, "errorCode": "UNREGISTERED"}],
        }
    }


def test_malformed_token_is_reported_for_pruning(sender: FcmSender) -> None:
    assert sender.send(token="not a token!", data={"type": "x"}) is PushResult.UNREGISTERED


def test_bad_payload_fails_without_blaming_the_token(sender: FcmSender, sink: str) -> None:
    # "from" is reserved by FCM: the message is wrong, the device is fine.
    assert sender.send(token="healthy-token", data={"from": "bestie-7"}) is PushResult.FAILED
    assert sender.send(token="healthy-token", data={"type": "x"}, android_priority="urgent") is PushResult.FAILED
    assert recorded(sink) == []


@pytest.mark.parametrize(
    ("message", "text", "field"),
    [
        ({"data": {"a": "b"}}, "Recipient of the message is not set.", None),
        (
            {"token": "t", "topic": "news"},
            "Invalid value at 'message' (oneof), oneof field 'target' is already set. Cannot set 'topic'",
            "message",
        ),
        (
            {"token": "t", "data": {"ok": "yes", "count": 3}},
            "Invalid value at 'message.data[1].value' (TYPE_STRING), 3",
            "message.data[1].value",
        ),
        (
            {"token": "t", "colour": "red"},
            "Invalid JSON payload received. Unknown name \"colour\" at 'message': Cannot find field.",
            "message",
        ),
    ],
)
def test_invalid_payload_gets_googles_400(sink: str, message: dict[str, Any], text: str, field: str | None) -> None:
    raw = raw_send(sink, {"message": message})

    assert raw.status_code == 400
    details: list[dict[str, Any]] = [{"@type": FCM_ERROR, "errorCode": "INVALID_ARGUMENT"}]
    if field:
        details.append(
            {
                "@type": "type.googleapis.com/google.rpc.BadRequest",
                "fieldViolations": [{"field": field, "description": text}],
            }
        )
    assert raw.json() == {"error": {"code": 400, "message": text, "status": "INVALID_ARGUMENT", "details": details}}
    assert recorded(sink) == []


def test_validate_only_checks_without_delivering(sink: str) -> None:
    raw = raw_send(sink, {"message": {"topic": "promo"}, "validate_only": True})

    assert raw.status_code == 200
    assert raw.json() == {"name": f"projects/{PROJECT}/messages/fake_message_id"}
    assert recorded(sink) == []


def test_non_bearer_credentials_are_rejected(sink: str) -> None:
    raw = requests.post(
        f"{sink}/v1/projects/{PROJECT}/messages:send",
        json={"message": {"token": "t"}},
        headers={"Authorization": "Basic dXNlcjpwYXNz"},
        timeout=5,
    )

    assert raw.status_code == 401
    assert raw.json()["error"]["status"] == "UNAUTHENTICATED"


def test_transient_outage_is_retried(sender: FcmSender, sink: str) -> None:
    requests.post(f"{sink}/_sink/failures", json={"status": 503, "count": 2}, timeout=5).raise_for_status()

    assert sender.send(token="patient-token", data={"type": "x"}) is PushResult.SENT

    assert len(recorded(sink, "patient-token")) == 1


def test_lasting_outage_fails_after_bounded_retries(sender: FcmSender, sink: str) -> None:
    requests.post(f"{sink}/_sink/failures", json={"status": 429, "count": 3}, timeout=5).raise_for_status()

    assert sender.send(token="unlucky-token", data={"type": "x"}) is PushResult.FAILED

    # All three attempts were used up, so the next send goes through.
    assert sender.send(token="unlucky-token", data={"type": "x"}) is PushResult.SENT


def test_an_outage_for_one_token_leaves_the_others_alone(sender: FcmSender, sink: str) -> None:
    outage = {"status": 503, "count": 3, "token": "stormy-token"}
    requests.post(f"{sink}/_sink/failures", json=outage, timeout=5).raise_for_status()

    assert sender.send(token="calm-token", data={"type": "x"}) is PushResult.SENT
    assert sender.send(token="stormy-token", data={"type": "x"}) is PushResult.FAILED
    assert sender.send(token="stormy-token", data={"type": "x"}) is PushResult.SENT
    assert len(recorded(sink, "calm-token")) == 1 and len(recorded(sink, "stormy-token")) == 1


def test_an_outage_for_one_push_leaves_other_pushes_to_the_same_device_alone(sender: FcmSender, sink: str) -> None:
    outage = {"status": 503, "count": 3, "token": "busy-token", "data": {"message_id": "m-1"}}
    requests.post(f"{sink}/_sink/failures", json=outage, timeout=5).raise_for_status()

    assert sender.send(token="busy-token", data={"type": "offer", "request_id": "r-1"}) is PushResult.SENT
    assert sender.send(token="busy-token", data={"type": "message", "message_id": "m-1"}) is PushResult.FAILED
    assert sender.send(token="busy-token", data={"type": "message", "message_id": "m-1"}) is PushResult.SENT
    assert [m["message"]["data"].get("type") for m in recorded(sink, "busy-token")] == ["offer", "message"]


@pytest.mark.parametrize("data", [["message_id"], {"message_id": 1}, "m-1"])
def test_an_outage_with_a_malformed_data_filter_is_refused(sink: str, data: object) -> None:
    answer = requests.post(f"{sink}/_sink/failures", json={"status": 503, "data": data}, timeout=5)

    assert answer.status_code == 400
    assert '"data"' in answer.json()["error"]


def test_unreachable_fcm_fails_without_raising() -> None:
    nowhere = FcmSender(project=PROJECT, base_url=f"http://127.0.0.1:{free_port()}", use_credentials=False, backoff_s=0)

    assert nowhere.send(token="t", data={"type": "x"}) is PushResult.FAILED


def test_send_many_reports_each_device_in_order(sender: FcmSender, sink: str) -> None:
    tokens = [f"device-{i:02d}" for i in range(20)]
    for dead in ("device-03", "device-17"):
        requests.post(f"{sink}/_sink/unregistered", json={"token": dead}, timeout=5).raise_for_status()
    messages = [PushMessage(token=t, data={"type": "broadcast", "n": str(i)}) for i, t in enumerate(tokens)]

    results = sender.send_many(messages)

    assert results == [PushResult.UNREGISTERED if t in ("device-03", "device-17") else PushResult.SENT for t in tokens]
    delivered = {entry["message"]["token"]: entry["message"]["data"] for entry in recorded(sink)}
    assert set(delivered) == set(tokens) - {"device-03", "device-17"}
    assert delivered["device-05"] == {"type": "broadcast", "n": "5"}
    assert sender.send_many([]) == []
