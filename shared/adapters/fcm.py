"""Push notifications through FCM's HTTP v1 API.

Every outcome of a delivery is a PushResult, never an exception: a dead token is something to prune, a transient
failure something to log, and neither should abort a blast to hundreds of devices. Locally `base_url` points at
emulators/fcm_sink.py with `use_credentials=False`; in production the function's service account signs requests.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import requests
from requests.adapters import HTTPAdapter

from shared import metering
from shared.domain.notify import PushMessage, PushResult
from shared.logging import event

log = logging.getLogger(__name__)

FCM_SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
FCM_ERROR = "type.googleapis.com/google.firebase.fcm.v1.FcmError"
BAD_REQUEST = "type.googleapis.com/google.rpc.BadRequest"
# Enough parallel sends to finish a blast inside a request's deadline without hammering FCM or our own memory.
POOL_SIZE = 8
TIMEOUT_S = 10.0
MAX_RETRY_AFTER_S = 10.0


class FcmSender:
    def __init__(
        self,
        *,
        project: str,
        base_url: str = "https://fcm.googleapis.com",
        use_credentials: bool = True,
        max_attempts: int = 3,
        backoff_s: float = 0.5,
    ) -> None:
        self._url = f"{base_url.rstrip('/')}/v1/projects/{project}/messages:send"
        self._use_credentials = use_credentials
        self._max_attempts = max_attempts
        self._backoff_s = backoff_s
        self._lock = threading.Lock()
        self._session: requests.Session | None = None
        self._transient: tuple[type[Exception], ...] = (requests.RequestException,)

    def send(
        self,
        *,
        token: str,
        data: dict[str, str],
        notification: dict[str, str] | None = None,
        android_priority: str = "high",
    ) -> PushResult:
        return self._deliver(PushMessage(token, data, notification, android_priority))

    def send_many(self, messages: list[PushMessage]) -> list[PushResult]:
        """Results in the order of `messages`."""
        if not messages:
            return []
        with ThreadPoolExecutor(max_workers=min(POOL_SIZE, len(messages))) as pool:
            return list(pool.map(self._deliver, messages))

    def _deliver(self, message: PushMessage) -> PushResult:
        payload = {"message": encode(message)}
        metering.count("fcm.send")
        session = self._ready_session()
        for attempt in range(1, self._max_attempts + 1):
            retry_after: float | None = None
            try:
                response = session.post(self._url, json=payload, timeout=TIMEOUT_S)
            except self._transient as exc:
                reason = type(exc).__name__
            else:
                if response.status_code == 200:
                    return PushResult.SENT
                result = classify(response.status_code, _json(response))
                if result is not None:
                    _log_refusal(message, response, result)
                    return result
                reason = f"HTTP {response.status_code}"
                retry_after = _retry_after(response)
            if attempt < self._max_attempts:
                time.sleep(retry_after if retry_after is not None else self._backoff_s * 2 ** (attempt - 1))
        event(log, "push failed", logging.WARNING, token_tail=message.token[-6:], reason=reason, attempts=attempt)
        return PushResult.FAILED

    def _ready_session(self) -> requests.Session:
        with self._lock:
            if self._session is None:
                self._session = self._build_session()
            return self._session

    def _build_session(self) -> requests.Session:
        session: requests.Session
        if self._use_credentials:
            import google.auth
            import google.auth.exceptions
            from google.auth.transport.requests import AuthorizedSession

            credentials, _ = google.auth.default(scopes=[FCM_SCOPE])
            session = AuthorizedSession(credentials)  # type: ignore[no-untyped-call]
            # Fetching or refreshing the access token can fail like any network call.
            self._transient = (requests.RequestException, google.auth.exceptions.GoogleAuthError)
        else:
            session = requests.Session()
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=POOL_SIZE)
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        return session


def encode(message: PushMessage) -> dict[str, Any]:
    """The v1 `message` object. Data-only unless a notification is given, so the app decides how to show it."""
    body: dict[str, Any] = {
        "token": message.token,
        "data": message.data,
        "android": {"priority": message.android_priority},
    }
    if message.notification is not None:
        body["notification"] = message.notification
    return body


def classify(status: int, body: dict[str, Any]) -> PushResult | None:
    """A final result for an FCM error answer, or None when the same request is worth retrying."""
    if status == 429 or status >= 500:
        return None
    error = body.get("error")
    error = error if isinstance(error, dict) else {}
    details = error.get("details")
    details = details if isinstance(details, list) else []
    fcm_code = next((d.get("errorCode") for d in details if isinstance(d, dict) and d.get("@type") == FCM_ERROR), None)
    if status == 404 and fcm_code == "UNREGISTERED":
        return PushResult.UNREGISTERED
    if status == 400 and fcm_code == "INVALID_ARGUMENT" and _blames_token(error, details):
        return PushResult.UNREGISTERED
    return PushResult.FAILED


def _blames_token(error: dict[str, Any], details: list[Any]) -> bool:
    """INVALID_ARGUMENT also covers bad payloads, which must not cost a user their token; only the token field counts.

    FCM names the field in a BadRequest detail, though not always; its message for a malformed token is stable.
    """
    for detail in details:
        if isinstance(detail, dict) and detail.get("@type") == BAD_REQUEST:
            violations = detail.get("fieldViolations") or []
            if any(isinstance(v, dict) and v.get("field") == "message.token" for v in violations):
                return True
    return "registration token" in str(error.get("message", ""))


def _json(response: requests.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _retry_after(response: requests.Response) -> float | None:
    """FCM may say how long to back off on 429/503; honour it, within reason for a request-scoped blast."""
    value = response.headers.get("Retry-After", "")
    return min(float(value), MAX_RETRY_AFTER_S) if value.isdigit() else None


def _log_refusal(message: PushMessage, response: requests.Response, result: PushResult) -> None:
    error = _json(response).get("error")
    text = error.get("message") if isinstance(error, dict) else None
    level = logging.INFO if result is PushResult.UNREGISTERED else logging.WARNING
    event(log, f"push {result.value}", level, token_tail=message.token[-6:], status=response.status_code, error=text)
