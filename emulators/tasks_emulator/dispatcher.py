"""Sends due tasks to their URLs the way Cloud Tasks does, and reports each outcome back to the store."""

from __future__ import annotations

import http.client
import logging
import threading
import time
from urllib.parse import urlsplit

from google.rpc import code_pb2

from emulators.oidc_issuer import LocalIssuer
from emulators.tasks_emulator import oidc
from emulators.tasks_emulator.store import Dispatch, Outcome, TaskStore

log = logging.getLogger("tasks_emulator")

# Headers Cloud Tasks computes, replaces or reserves, whatever the task says.
_RESERVED_PREFIXES = ("x-google-", "x-appengine-", "x-cloudtasks-")
_RESERVED = {"host", "content-length", "user-agent"}

# google.rpc codes for HTTP statuses, as Google's APIs map them; other 4xx/5xx are FAILED_PRECONDITION/UNKNOWN.
_RPC_CODES = {
    400: code_pb2.INVALID_ARGUMENT,
    401: code_pb2.UNAUTHENTICATED,
    403: code_pb2.PERMISSION_DENIED,
    404: code_pb2.NOT_FOUND,
    409: code_pb2.ABORTED,
    429: code_pb2.RESOURCE_EXHAUSTED,
    499: code_pb2.CANCELLED,
    500: code_pb2.INTERNAL,
    501: code_pb2.UNIMPLEMENTED,
    503: code_pb2.UNAVAILABLE,
    504: code_pb2.DEADLINE_EXCEEDED,
}


class Dispatcher:
    """One scheduler thread hands due tasks to at most `workers` sender threads.

    Senders are daemon threads rather than a ThreadPoolExecutor, whose workers are joined at interpreter exit:
    a handler that hangs until its dispatch deadline must not hold up SIGTERM.
    """

    def __init__(self, store: TaskStore, *, workers: int, issuer: LocalIssuer | None = None) -> None:
        self._store = store
        self._issuer = issuer
        self._slots = threading.BoundedSemaphore(workers)
        self._thread = threading.Thread(target=self._run, name="tasks-scheduler", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._store.close()
        # With every sender busy the scheduler waits for a slot, not on the store; being a daemon, it may stay.
        self._thread.join(timeout=1.0)

    def _run(self) -> None:
        while True:
            # Claim only with a sender free, so a task's dispatch time is when it is really sent.
            self._slots.acquire()
            dispatch = self._store.claim_next()
            if dispatch is None:
                return
            threading.Thread(target=self._send, args=(dispatch,), name="tasks-sender", daemon=True).start()

    def _send(self, dispatch: Dispatch) -> None:
        try:
            started = time.monotonic()
            outcome = send(dispatch, self._issuer)
            log.info(
                "task response %s/%s: %s in %.0f ms",
                dispatch.queue_id,
                dispatch.task_id,
                outcome.message,
                (time.monotonic() - started) * 1000,
            )
            self._store.finish(dispatch, outcome)
        finally:
            self._slots.release()


def send(dispatch: Dispatch, issuer: LocalIssuer | None = None) -> Outcome:
    request = dispatch.request
    url = urlsplit(request.url)
    connection_type = http.client.HTTPSConnection if url.scheme == "https" else http.client.HTTPConnection
    # The deadline bounds each socket operation, so it is approximate, as Cloud Tasks says its own is.
    connection = connection_type(url.netloc, timeout=dispatch.deadline_s)
    target = (url.path or "/") + (f"?{url.query}" if url.query else "")
    sent = headers(dispatch, issuer)
    try:
        connection.request(request.http_method.name, target, body=request.body or None, headers=sent)
        response = connection.getresponse()
        response.read()
    except TimeoutError:
        return Outcome(code_pb2.DEADLINE_EXCEEDED, f"no response within {dispatch.deadline_s:g}s")
    except (OSError, ValueError, http.client.HTTPException) as exc:  # ValueError: a header http.client refuses
        return Outcome(code_pb2.UNAVAILABLE, f"request failed: {exc!r}")
    finally:
        connection.close()
    return Outcome(_rpc_code(response.status), f"HTTP status code {response.status}", response.status)


def headers(dispatch: Dispatch, issuer: LocalIssuer | None = None) -> dict[str, str]:
    request = dispatch.request
    reserved = _RESERVED | ({"authorization"} if "oidc_token" in request else set())
    sent = {
        key: value
        for key, value in request.headers.items()
        if key.lower() not in reserved and not key.lower().startswith(_RESERVED_PREFIXES)
    }
    sent.update(
        {
            "User-Agent": "Google-Cloud-Tasks",
            "X-CloudTasks-QueueName": dispatch.queue_id,
            "X-CloudTasks-TaskName": dispatch.task_id,
            "X-CloudTasks-TaskRetryCount": str(dispatch.retry_count),
            "X-CloudTasks-TaskExecutionCount": str(dispatch.execution_count),
            "X-CloudTasks-TaskETA": f"{dispatch.eta:.6f}",
        }
    )
    if dispatch.previous_response is not None:
        sent["X-CloudTasks-TaskPreviousResponse"] = str(dispatch.previous_response)
    if "oidc_token" in request:
        token = request.oidc_token
        audience = token.audience or request.url
        bearer = oidc.id_token(email=token.service_account_email, audience=audience, now=time.time(), issuer=issuer)
        sent["Authorization"] = f"Bearer {bearer}"
    return sent


def _rpc_code(status: int) -> int:
    if 200 <= status < 300:
        return int(code_pb2.OK)
    return int(_RPC_CODES.get(status, code_pb2.FAILED_PRECONDITION if status < 500 else code_pb2.UNKNOWN))
