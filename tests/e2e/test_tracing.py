"""One trace follows a change past its request: the Pub/Sub consumer and the task handler it wakes log under the
trace of the app's call (docs/operations.md "Reading logs"), carried by the outbox row's message attribute and the
task's header."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests

from emulators.stack import PROJECT, LocalStack
from tests.support.people import Pair

pytestmark = pytest.mark.needs_gcloud


def _post_traced(stack: LocalStack, pair_app: Any, function: str, body: dict[str, Any], trace: str) -> Any:
    headers = {
        "Authorization": f"Bearer {pair_app.session.id_token}",
        "X-Cloud-Trace-Context": f"{trace}/1;o=1",
    }
    response = requests.post(f"{stack.functions_url}/{function}", json=body, headers=headers, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def _lines_under(log: Path, trace: str, *, message: str, function: str, timeout: float = 20) -> list[dict[str, Any]]:
    """The gateway's log lines with this message, function and trace, once there is at least one."""
    wanted = f"projects/{PROJECT}/traces/{trace}"
    deadline = time.monotonic() + timeout
    while True:
        found = []
        for raw in log.read_text(errors="replace").splitlines():
            if wanted not in raw:
                continue
            try:
                line = json.loads(raw)
            except ValueError:
                continue
            if (
                line.get("logging.googleapis.com/trace") == wanted
                and line.get("message") == message
                and line.get("function") == function
            ):
                found.append(line)
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"no {message!r} line of {function} under trace {trace} within {timeout}s")
        time.sleep(0.2)


def test_the_push_of_a_message_logs_under_the_senders_trace(stack: LocalStack, paired: Callable[..., Pair]) -> None:
    pair = paired()
    trace = uuid.uuid4().hex

    _post_traced(
        stack,
        pair.client,
        "chat_send",
        {"session_id": pair.session_id, "client_message_id": str(uuid.uuid4()), "text": "halo kak"},
        trace,
    )

    [done] = _lines_under(stack.log_dir / "gateway.log", trace, message="event done", function="on_chat_message")
    assert done["severity"] == "INFO"


def test_a_timer_logs_under_the_trace_of_the_call_that_set_it(
    stack: LocalStack, paired: Callable[..., Pair], app_config: Callable[..., None]
) -> None:
    app_config(early_end_client=True, goodbye_window_s=2)
    pair = paired()
    trace = uuid.uuid4().hex

    _post_traced(stack, pair.client, "session_end", {"session_id": pair.session_id}, trace)

    # The end of the goodbye window, a Cloud Task created from the outbox row session_end recorded.
    [done] = _lines_under(stack.log_dir / "gateway.log", trace, message="task done", function="task_session_close")
    assert done["outcome"] == "closed"
