"""One JSON line per event on stdout, in the shape Cloud Logging reads (severity, message, trace)."""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any

_trace: contextvars.ContextVar[str | None] = contextvars.ContextVar("trace", default=None)
_configured = False


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "severity": record.levelname,
            "message": record.getMessage(),
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "logger": record.name,
        }
        trace = _trace.get()
        if trace:
            entry["logging.googleapis.com/trace"] = trace
        fields = getattr(record, "fields", None)
        if fields:
            entry.update(fields)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure(level: str = "INFO") -> None:
    global _configured  # noqa: PLW0603 - logging is process-wide by nature
    if _configured:
        return
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    _configured = True


# How a trace travels past the request that started it: a Pub/Sub message attribute and a Cloud Task's header,
# both stamped when the outbox row is recorded (shared/adapters/postgres/outbox.py `traced`).
TRACE_ATTRIBUTE = "halo_trace"
TRACE_HEADER = "X-Halo-Trace"
_TRACE_ID = re.compile(r"[0-9a-fA-F]{1,32}")


def set_trace(header: str | None, project_id: str) -> None:
    """`X-Cloud-Trace-Context: TRACE_ID/SPAN;o=1` (or a bare TRACE_ID, as TRACE_HEADER and TRACE_ATTRIBUTE carry
    it) → the resource name Cloud Logging joins on. Anything else is no trace: the header is the sender's text."""
    trace_id = header.split("/", 1)[0].strip() if header else None
    valid = trace_id is not None and _TRACE_ID.fullmatch(trace_id) is not None
    _trace.set(f"projects/{project_id}/traces/{trace_id}" if valid else None)


def trace_id() -> str | None:
    """The bare trace id of the request being served, if it came with one."""
    trace = _trace.get()
    return trace.rsplit("/", 1)[-1] if trace else None


def event(logger: logging.Logger, message: str, level: int = logging.INFO, **fields: Any) -> None:
    """Log an event with structured fields. Never pass message texts or personal data."""
    logger.log(level, message, extra={"fields": fields})
