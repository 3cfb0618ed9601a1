"""The shape every Cloud Tasks handler shares.

Tasks are delivered at least once and may fire after the world has moved on, so every handler re-checks the
state in PostgreSQL and does nothing when it is stale. 2xx ends the task; 503 asks Cloud Tasks to retry with the
queue's backoff; a payload that can never be parsed is acknowledged with 200 so it does not retry forever.

Before any of that, the body is bounded (413 over the limit) and the caller must be Cloud Tasks: the tasks invoker's
OIDC token for this handler's URL (functions/_callers.py), or 401.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import TypeVar

import flask
import functions_framework
from pydantic import BaseModel, ValidationError

from functions._callers import verify_task_caller
from functions._replies import HttpFunction, error_response, json_response, read_body, with_retry_after
from shared.config import get_settings
from shared.errors import AppError
from shared.logging import TRACE_HEADER, configure, event, set_trace

log = logging.getLogger("halo.tasks")

Payload = TypeVar("Payload", bound=BaseModel)


def task_handler(
    model: type[Payload],
) -> Callable[[Callable[[Payload], str]], Callable[[flask.Request], flask.Response]]:
    """The handler returns a short outcome word (`expired`, `stale`, ...) that is logged and returned."""

    def decorate(handler: Callable[[Payload], str]) -> HttpFunction:
        @functions_framework.http
        @functools.wraps(handler)
        def task_function(req: flask.Request) -> flask.Response:
            configure(get_settings().log_level)
            # The trace of the request that set the timer (recorded with its outbox row), else Cloud Run's own.
            trace = req.headers.get(TRACE_HEADER) or req.headers.get("X-Cloud-Trace-Context")
            set_trace(trace, get_settings().project_id)
            task = req.headers.get("X-CloudTasks-TaskName", "")
            try:
                data = read_body(req)
                verify_task_caller(req, handler.__name__)
            except AppError as err:
                return error_response(err)
            try:
                payload = model.model_validate_json(data or b"{}")
            except ValidationError:
                event(log, "unparseable task dropped", logging.ERROR, function=handler.__name__, task=task)
                return json_response(200, {"outcome": "dropped"})
            try:
                outcome = handler(payload)
            except AppError as err:
                event(log, "task will retry", logging.WARNING, function=handler.__name__, task=task, code=err.code)
                return with_retry_after(json_response(503, err.envelope()), err)
            event(log, "task done", function=handler.__name__, task=task, outcome=outcome)
            return json_response(200, {"outcome": outcome})

        return task_function

    return decorate
