"""A trace travels with the outbox: a Pub/Sub message carries it as an attribute, a Cloud Task as a header, so the
consumer's and the timer's log lines join the request that caused them (tests/e2e/test_tracing.py on the stack)."""

from __future__ import annotations

import contextvars
import json
import logging
from datetime import UTC, datetime

import pytest

from shared.adapters.postgres.outbox import traced
from shared.domain.events import DocumentWrite, TaskRequest, TopicMessage, decode, encode
from shared.logging import TRACE_ATTRIBUTE, JsonFormatter, set_trace, trace_id

TRACE = "0af7651916cd43dd8448eb211c80319c"


def _in_fresh_context(header: str | None) -> contextvars.Context:
    context = contextvars.copy_context()
    context.run(set_trace, header, "demo-halo")
    return context


def test_a_request_with_a_trace_stamps_the_messages_and_timers_it_records() -> None:
    message = TopicMessage("chat-messages", {"message_id": "m"}, {"kind": "text"})
    timer = TaskRequest("timers", "session-expire-s", "task_session_expire", {"session_id": "s"})
    document = DocumentWrite.at("sessions/s", {"status": "active"})

    context = _in_fresh_context(f"{TRACE}/1;o=1")
    stamped_message, stamped_timer, same_document = (context.run(traced, e) for e in (message, timer, document))

    assert stamped_message.attributes == {"kind": "text", TRACE_ATTRIBUTE: TRACE}
    assert stamped_timer.trace == TRACE
    assert same_document is document


def test_without_a_trace_nothing_is_stamped() -> None:
    message = TopicMessage("chat-messages", {"message_id": "m"})
    context = _in_fresh_context(None)

    assert context.run(traced, message) is message


def test_a_timers_trace_survives_its_outbox_row() -> None:
    timer = TaskRequest("timers", "t", "task_x", {"a": 1}, at=datetime(2026, 1, 1, tzinfo=UTC), trace=TRACE)
    untraced = TaskRequest("timers", "t", "task_x", {"a": 1})

    row = encode(timer)

    assert decode(row.kind, row.destination, json.loads(json.dumps(row.payload))) == timer
    assert "trace" not in encode(untraced).payload, "rows without a trace keep their old shape"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (f"{TRACE}/1;o=1", f"projects/demo-halo/traces/{TRACE}"),
        (TRACE, f"projects/demo-halo/traces/{TRACE}"),
        ("not-a-trace\n{injected}", None),
        ("a" * 33, None),
        ("", None),
        (None, None),
    ],
)
def test_only_a_trace_id_becomes_the_logged_trace(header: str | None, expected: str | None) -> None:
    context = _in_fresh_context(header)
    record = logging.LogRecord("halo", logging.INFO, __file__, 1, "hello", None, None)

    line = json.loads(context.run(JsonFormatter().format, record))

    assert line.get("logging.googleapis.com/trace") == expected
    assert context.run(trace_id) == (expected.rsplit("/", 1)[-1] if expected else None)
