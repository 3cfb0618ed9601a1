"""One JSON line per event on stdout, in the shape Cloud Logging reads (severity, message, trace)."""

from __future__ import annotations

import contextvars
import json
import logging
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


def set_trace(header: str | None, project_id: str) -> None:
    """`X-Cloud-Trace-Context: TRACE_ID/SPAN;o=1` → the resource name Cloud Logging joins on."""
    trace_id = header.split("/", 1)[0] if header else None
    _trace.set(f"projects/{project_id}/traces/{trace_id}" if trace_id else None)


def event(logger: logging.Logger, message: str, level: int = logging.INFO, **fields: Any) -> None:
    """Log an event with structured fields. Never pass message texts or personal data."""
    logger.log(level, message, extra={"fields": fields})
