"""Cloud Tasks: POST a JSON payload to one of our handlers at a given time, at most once per task id.

The task id is the de-duplication key: Cloud Tasks refuses a name that exists or existed recently, so scheduling
the same work twice is harmless. `google.cloud.tasks_v2` and gRPC are imported on first use, not at import time,
because every function that merely can schedule a task would otherwise pay for them on a cold start.
"""

from __future__ import annotations

import json
import re
import threading
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from shared import metering
from shared.logging import TRACE_HEADER

if TYPE_CHECKING:
    from google.cloud.tasks_v2 import CloudTasksClient

_TASK_ID = re.compile(r"[A-Za-z0-9_-]{1,500}")


class CloudTasksScheduler:
    def __init__(
        self,
        *,
        project: str,
        location: str,
        target_base_url: str,
        service_account_email: str,
        emulator_host: str | None = None,
    ) -> None:
        self._location_path = f"projects/{project}/locations/{location}"
        self._target_base_url = target_base_url.rstrip("/")
        self._service_account_email = service_account_email
        self._emulator_host = emulator_host
        self._client: CloudTasksClient | None = None
        self._client_lock = threading.Lock()

    def schedule(
        self,
        *,
        queue: str,
        task_id: str,
        handler: str,
        payload: dict[str, Any],
        at: datetime | None = None,
        trace: str | None = None,
    ) -> bool:
        """Create the task; False when a task with this id exists or ran recently (nothing is created)."""
        from google.api_core import exceptions
        from google.cloud import tasks_v2

        if at is not None and at.tzinfo is None:
            raise ValueError("`at` must be timezone-aware")
        url = f"{self._target_base_url}/{handler}"
        task = tasks_v2.Task(
            name=self._task_name(queue, task_id),
            http_request=tasks_v2.HttpRequest(
                http_method=tasks_v2.HttpMethod.POST,
                url=url,
                headers={"Content-Type": "application/json", **({TRACE_HEADER: trace} if trace else {})},
                body=json.dumps(payload, separators=(",", ":")).encode(),
                oidc_token=tasks_v2.OidcToken(service_account_email=self._service_account_email, audience=url),
            ),
            schedule_time=at,
        )
        metering.count("tasks.create")
        try:
            self._tasks().create_task(parent=self._queue_path(queue), task=task)
        except exceptions.AlreadyExists:
            return False
        return True

    def cancel(self, *, queue: str, task_id: str) -> bool:
        """Delete the task; False when there is none (never created, already ran, or already cancelled)."""
        from google.api_core import exceptions

        metering.count("tasks.delete")
        try:
            self._tasks().delete_task(name=self._task_name(queue, task_id))
        except exceptions.NotFound:
            return False
        return True

    def ensure_queue(
        self, *, queue: str, max_attempts: int, min_backoff_s: float, max_backoff_s: float, max_doublings: int
    ) -> None:
        """Create the queue unless it exists (an existing queue keeps its settings). Infra owns production's."""
        from google.api_core import exceptions
        from google.cloud import tasks_v2

        retry_config = tasks_v2.RetryConfig(
            max_attempts=max_attempts,
            min_backoff=timedelta(seconds=min_backoff_s),
            max_backoff=timedelta(seconds=max_backoff_s),
            max_doublings=max_doublings,
        )
        try:
            self._tasks().create_queue(
                parent=self._location_path,
                queue=tasks_v2.Queue(name=self._queue_path(queue), retry_config=retry_config),
            )
        except exceptions.AlreadyExists:
            return

    def purge_queue(self, queue: str) -> None:
        """Every task of the queue deleted (Cloud Tasks' PurgeQueue): for local stacks and benchmarks, never called by
        a function."""
        self._tasks().purge_queue(name=self._queue_path(queue))

    def warm(self) -> None:
        """Import the client library and open the channel ahead of the first task (shared/bootstrap.py)."""
        self._tasks()

    def _tasks(self) -> CloudTasksClient:
        with self._client_lock:
            if self._client is None:
                self._client = self._new_client()
            return self._client

    def _new_client(self) -> CloudTasksClient:
        from google.cloud import tasks_v2

        if self._emulator_host is None:
            return tasks_v2.CloudTasksClient()
        import grpc
        from google.cloud.tasks_v2.services.cloud_tasks import transports

        # The emulator speaks plain gRPC without credentials; everything above the channel is production code.
        channel = grpc.insecure_channel(self._emulator_host)
        return tasks_v2.CloudTasksClient(transport=transports.CloudTasksGrpcTransport(channel=channel))

    def _queue_path(self, queue: str) -> str:
        return f"{self._location_path}/queues/{queue}"

    def _task_name(self, queue: str, task_id: str) -> str:
        if not _TASK_ID.fullmatch(task_id):
            raise ValueError(f"task id must match [A-Za-z0-9_-]{{1,500}}: {task_id!r}")
        return f"{self._queue_path(queue)}/tasks/{task_id}"
