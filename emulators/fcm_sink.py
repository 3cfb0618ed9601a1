"""Local stand-in for FCM's HTTP v1 send endpoint: validates like FCM, records what would reach devices.

FCM cannot be reached from development machines or CI. Our FcmSender posts here unchanged, and tests read back
exactly what was sent, mark tokens as uninstalled (FCM's UNREGISTERED) or make FCM briefly unavailable.

    python -m emulators.fcm_sink --host 127.0.0.1 --port 8092
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import secrets
import signal
import threading
import time
from datetime import UTC, datetime
from typing import Any, NoReturn

from flask import Flask, Response, jsonify, request
from werkzeug.serving import make_server

log = logging.getLogger("fcm_sink")

FCM_ERROR = "type.googleapis.com/google.firebase.fcm.v1.FcmError"
BAD_REQUEST = "type.googleapis.com/google.rpc.BadRequest"
TARGETS = ("token", "topic", "condition")
MESSAGE_FIELDS = {"name", "data", "notification", "android", "webpush", "apns", "fcm_options", *TARGETS}
NOTIFICATION_FIELDS = {"title", "body", "image"}
ANDROID_FIELDS = {
    "collapse_key",
    "priority",
    "ttl",
    "restricted_package_name",
    "data",
    "notification",
    "fcm_options",
    "direct_boot_ok",
}
# Keys FCM keeps for itself in a data payload ("from" is a tempting name for a chat message's sender).
RESERVED_DATA_KEYS = {"from", "message_type"}
RESERVED_DATA_PREFIXES = ("google", "gcm")
TOKEN = re.compile(r"^[A-Za-z0-9_:\-]+$")
TOPIC = re.compile(r"^[A-Za-z0-9\-_.~%]{1,900}$")
TTL = re.compile(r"^\d+(\.\d{1,9})?s$")
# What FCM answers while it is overloaded or failing, for the statuses a test may ask for.
OUTAGES = {
    429: ("RESOURCE_EXHAUSTED", "QUOTA_EXCEEDED", "Quota exceeded for quota metric 'Send requests'."),
    500: ("INTERNAL", "INTERNAL", "Internal error encountered."),
    503: ("UNAVAILABLE", "UNAVAILABLE", "The service is currently unavailable."),
}


class GoogleError(Exception):
    """An answer in Google's error shape, with FCM's error code and the offending field when there is one."""

    def __init__(
        self,
        message: str,
        *,
        code: int = 400,
        status: str = "INVALID_ARGUMENT",
        fcm_code: str | None = "INVALID_ARGUMENT",
        field: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status
        self.fcm_code = fcm_code
        self.field = field

    def body(self) -> dict[str, Any]:
        details: list[dict[str, Any]] = []
        if self.fcm_code:
            details.append({"@type": FCM_ERROR, "errorCode": self.fcm_code})
        if self.field:
            details.append(
                {"@type": BAD_REQUEST, "fieldViolations": [{"field": self.field, "description": self.message}]}
            )
        return {"error": {"code": self.code, "message": self.message, "status": self.status, "details": details}}


def unknown_field(name: str, at: str) -> GoogleError:
    return GoogleError(
        f"Invalid JSON payload received. Unknown name \"{name}\" at '{at}': Cannot find field.", field=at
    )


def not_a_string(path: str, value: Any) -> GoogleError:
    return GoogleError(f"Invalid value at '{path}' (TYPE_STRING), {json.dumps(value)}", field=path)


def check_string_map(value: Any, path: str) -> None:
    if not isinstance(value, dict):
        raise GoogleError(f"Invalid value at '{path}' (type.googleapis.com/google.protobuf.Struct)", field=path)
    # FCM names a map entry by its position, as the protobuf JSON parser sees it.
    for index, (key, item) in enumerate(value.items()):
        if not isinstance(item, str):
            raise not_a_string(f"{path}[{index}].value", item)
        if key in RESERVED_DATA_KEYS or key.startswith(RESERVED_DATA_PREFIXES):
            raise GoogleError(f"Invalid data payload key: {key}", field=path)


def check_fields(value: Any, allowed: set[str], path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise GoogleError(f"Invalid value at '{path}' (type.googleapis.com/google.protobuf.Struct)", field=path)
    for name in value:
        if name not in allowed:
            raise unknown_field(name, path)
    return value


def check_target(message: dict[str, Any]) -> None:
    present = [target for target in TARGETS if target in message]
    if not present:
        raise GoogleError("Recipient of the message is not set.")
    if len(present) > 1:
        raise GoogleError(
            f"Invalid value at 'message' (oneof), oneof field 'target' is already set. Cannot set '{present[1]}'",
            field="message",
        )
    target = present[0]
    value = message[target]
    if not isinstance(value, str):
        raise not_a_string(f"message.{target}", value)
    if target == "token" and not TOKEN.match(value):
        raise GoogleError("The registration token is not a valid FCM registration token", field="message.token")
    if target == "topic" and not TOPIC.match(value):
        raise GoogleError("Invalid topic name", field="message.topic")
    if target == "condition" and not value.strip():
        raise GoogleError("Invalid condition expression", field="message.condition")


def check_android(android: Any) -> None:
    check_fields(android, ANDROID_FIELDS, "message.android")
    priority = android.get("priority")
    # The protobuf enum is NORMAL/HIGH; FCM also takes the lower-case names Firebase's own SDKs send.
    if priority is not None and (not isinstance(priority, str) or priority.upper() not in ("NORMAL", "HIGH")):
        raise GoogleError(
            "Invalid value at 'message.android.priority' "
            f"(type.googleapis.com/google.firebase.fcm.v1.AndroidMessagePriority), {json.dumps(priority)}",
            field="message.android.priority",
        )
    ttl = android.get("ttl")
    if ttl is not None and (not isinstance(ttl, str) or not TTL.match(ttl)):
        raise GoogleError(
            f"Invalid value at 'message.android.ttl' (type.googleapis.com/google.protobuf.Duration), {json.dumps(ttl)}",
            field="message.android.ttl",
        )
    if "data" in android:
        check_string_map(android["data"], "message.android.data")


def parse_send_request(body: Any) -> tuple[dict[str, Any], bool]:
    """Returns (message, validate_only) or raises the GoogleError FCM would answer with."""
    if not isinstance(body, dict):
        raise GoogleError("Invalid JSON payload received. Expected an object.", fcm_code=None)
    for name in body:
        if name not in ("message", "validate_only"):
            raise GoogleError(
                f'Invalid JSON payload received. Unknown name "{name}": Cannot find field.', fcm_code=None
            )
    validate_only = body.get("validate_only", False)
    if not isinstance(validate_only, bool):
        raise GoogleError(
            f"Invalid value at 'validate_only' (TYPE_BOOL), {json.dumps(validate_only)}", field="validate_only"
        )
    if "message" not in body:
        raise GoogleError("Request contains an invalid argument.", field="message")
    message = check_fields(body["message"], MESSAGE_FIELDS, "message")
    check_target(message)
    if "data" in message:
        check_string_map(message["data"], "message.data")
    if "notification" in message:
        notification = check_fields(message["notification"], NOTIFICATION_FIELDS, "message.notification")
        for name, value in notification.items():
            if not isinstance(value, str):
                raise not_a_string(f"message.notification.{name}", value)
    if "android" in message:
        check_android(message["android"])
    return message, validate_only


class Sink:
    """What FCM would have delivered, which tokens are dead, and how many upcoming sends should hit an outage."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._messages: list[dict[str, Any]] = []
        self._unregistered: set[str] = set()
        # (status, only for this token or any, only for sends whose data holds all of these or any)
        self._outages: list[tuple[int, str | None, dict[str, str]]] = []

    def send(self, project: str, body: Any) -> str:
        message, validate_only = parse_send_request(body)
        with self._lock:
            outage = next((o for o in self._outages if _hits(o, message)), None)
            if outage is not None:
                self._outages.remove(outage)
        if outage is not None:
            status, fcm_code, text = OUTAGES[outage[0]]
            raise GoogleError(text, code=outage[0], status=status, fcm_code=fcm_code)
        if validate_only:
            # FCM's dry run answers with this fixed name and delivers nothing.
            return f"projects/{project}/messages/fake_message_id"
        token = message.get("token")
        with self._lock:
            if token in self._unregistered:
                raise GoogleError(
                    "Requested entity was not found.", code=404, status="NOT_FOUND", fcm_code="UNREGISTERED"
                )
            name = f"projects/{project}/messages/0:{time.time_ns() // 1000}%{secrets.token_hex(8)}"
            received_at = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
            self._messages.append({"name": name, "project": project, "message": message, "received_at": received_at})
        return name

    def messages(self, token: str | None) -> list[dict[str, Any]]:
        with self._lock:
            return [m for m in self._messages if token is None or m["message"].get("token") == token]

    def clear(self) -> int:
        with self._lock:
            count = len(self._messages)
            self._messages.clear()
            return count

    def unregister(self, token: str) -> None:
        with self._lock:
            self._unregistered.add(token)

    def fail_next(self, status: int, count: int, token: str | None = None, data: dict[str, str] | None = None) -> None:
        """The next `count` sends that match answer `status`: all sends, or only those to `token` and/or those whose
        data carries every field of `data` (so a test can fail one push while other pushes reach the same device)."""
        with self._lock:
            self._outages.extend([(status, token, dict(data or {}))] * count)


def _hits(outage: tuple[int, str | None, dict[str, str]], message: dict[str, Any]) -> bool:
    _, token, fields = outage
    data = message.get("data")
    carried = data if isinstance(data, dict) else {}
    return (token is None or token == message.get("token")) and all(carried.get(k) == v for k, v in fields.items())


def describe_target(message: Any) -> str:
    """For the log: which kind of target, and only the tail of a token (tokens address a person's phone)."""
    if not isinstance(message, dict):
        return "?"
    if isinstance(message.get("token"), str):
        return f"token=…{message['token'][-6:]}"
    return ", ".join(f"{t}={message[t]}" for t in TARGETS[1:] if t in message) or "none"


def create_app(sink: Sink) -> Flask:
    app = Flask("fcm_sink")

    @app.errorhandler(GoogleError)
    def google_error(exc: GoogleError) -> tuple[Response, int]:
        return jsonify(exc.body()), exc.code

    @app.post("/v1/projects/<project>/messages:send")
    def send(project: str) -> Response:
        body = request.get_json(silent=True)
        target = describe_target(body.get("message") if isinstance(body, dict) else None)
        auth = request.headers.get("Authorization")
        # Any OAuth access token will do here; another scheme is what FCM rejects outright.
        if auth is not None and not auth.startswith("Bearer "):
            log.info("send rejected %s: not a Bearer token", target)
            raise GoogleError(
                "Request had invalid authentication credentials. Expected OAuth 2 access token.",
                code=401,
                status="UNAUTHENTICATED",
                fcm_code="THIRD_PARTY_AUTH_ERROR",
            )
        try:
            name = sink.send(project, body)
        except GoogleError as exc:
            log.info("send %s -> %d %s: %s", target, exc.code, exc.fcm_code or exc.status, exc.message)
            raise
        log.info("send %s -> %s", target, name)
        return jsonify(name=name)

    @app.get("/_sink/messages")
    def messages() -> Response:
        return jsonify(messages=sink.messages(request.args.get("token")))

    @app.delete("/_sink/messages")
    def clear() -> Response:
        return jsonify(deleted=sink.clear())

    @app.post("/_sink/unregistered")
    def unregister() -> tuple[Response, int]:
        body = request.get_json(silent=True)
        token = body.get("token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            return jsonify(error='body must be {"token": "..."}'), 400
        sink.unregister(token)
        log.info("token …%s marked unregistered", token[-6:])
        return jsonify(token=token), 200

    @app.post("/_sink/failures")
    def failures() -> tuple[Response, int]:
        body = request.get_json(silent=True)
        status = body.get("status") if isinstance(body, dict) else None
        count = body.get("count", 1) if isinstance(body, dict) else None
        token = body.get("token") if isinstance(body, dict) else None
        data = body.get("data", {}) if isinstance(body, dict) else None
        if (
            status not in OUTAGES
            or not isinstance(count, int)
            or count < 1
            or not isinstance(token, str | None)
            or not isinstance(data, dict)
            or not all(isinstance(v, str) for v in data.values())
        ):
            return jsonify(
                error=f'body must be {{"status": one of {sorted(OUTAGES)}, "count": N >= 1, "token": optional,'
                ' "data": optional {"field": "value", ...} that the data of a failing send carries}'
            ), 400
        sink.fail_next(status, count, token, data)
        which = (" to one token" if token else "") + (" carrying " + ", ".join(sorted(data)) if data else "")
        log.info("next %d sends%s answer %d", count, which, status)
        return jsonify(status=status, count=count, token=token, data=data), 200

    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)

    logging.basicConfig(level=logging.INFO, format="%(asctime)s fcm-sink %(message)s")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)

    server = make_server(args.host, args.port, create_app(Sink()), threaded=True)

    def terminate(*_: object) -> NoReturn:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, terminate)
    log.info("listening on http://%s:%d", args.host, args.port)
    try:
        server.serve_forever()
    finally:
        server.server_close()
        log.info("stopped")


if __name__ == "__main__":
    main()
