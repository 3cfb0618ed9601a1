"""Every queue and task, their schedule and their tombstones, behind one lock.

The schedule is a heap of (due time, sequence, task, version, forced). Rescheduling or claiming a task bumps its version
instead of searching the heap, so outdated heap entries are recognised and dropped when they surface.
"""

from __future__ import annotations

import base64
import heapq
import itertools
import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
from google.cloud import tasks_v2
from google.protobuf import field_mask_pb2
from google.rpc import status_pb2

from emulators.tasks_emulator import names, retry
from emulators.tasks_emulator.errors import ApiError, already_exists, invalid, not_found

log = logging.getLogger("tasks_emulator")

# Cloud Tasks refuses a deleted or finished task's name for about an hour; so does the emulator.
TOMBSTONE_TTL_S = 3600.0
_DEFAULT_DEADLINE = timedelta(minutes=10)
_MAX_DEADLINE = timedelta(minutes=30)
_MAX_SCHEDULE_AHEAD = timedelta(days=30)
_BODY_METHODS = {tasks_v2.HttpMethod.POST, tasks_v2.HttpMethod.PUT, tasks_v2.HttpMethod.PATCH}
_QUEUE_SETTINGS = ("app_engine_routing_override", "http_target", "rate_limits", "retry_config")
# proto-plus enums are untyped, so mypy takes their members for ints; calling the enum types them.
_RUNNING = tasks_v2.Queue.State(tasks_v2.Queue.State.RUNNING)
_PAUSED = tasks_v2.Queue.State(tasks_v2.Queue.State.PAUSED)
_DEFAULT_RATE_LIMITS = tasks_v2.RateLimits(
    max_dispatches_per_second=500, max_burst_size=100, max_concurrent_dispatches=1000
)


@dataclass(eq=False)
class _Entry:
    task: tasks_v2.Task
    queue_name: str
    task_id: str
    version: int = 0
    in_flight: int = 0
    first_dispatch_at: float | None = None
    # X-CloudTasks-TaskExecutionCount counts responses other than 5xx; nothing in the Task message keeps that.
    executions: int = 0
    previous_response: int | None = None


@dataclass(eq=False)
class _Queue:
    queue: tasks_v2.Queue
    tasks: dict[str, _Entry] = field(default_factory=dict)


@dataclass(frozen=True)
class Dispatch:
    """One attempt, as the dispatcher needs it: a snapshot taken under the lock."""

    entry: _Entry
    queue_id: str
    task_id: str
    request: tasks_v2.HttpRequest
    deadline_s: float
    eta: float
    retry_count: int
    execution_count: int
    previous_response: int | None


@dataclass(frozen=True)
class Outcome:
    rpc_code: int
    message: str
    http_status: int | None = None

    @property
    def succeeded(self) -> bool:
        return self.http_status is not None and 200 <= self.http_status < 300


class TaskStore:
    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._queues: dict[str, _Queue] = {}
        # Insertion order is expiry order (one TTL for all), so expired names are always at the front.
        self._tombstones: dict[str, float] = {}
        self._heap: list[tuple[float, int, _Entry, int, bool]] = []
        self._sequence = itertools.count()
        self._closed = False

    # Queues

    def create_queue(self, parent: str, queue: tasks_v2.Queue) -> tasks_v2.Queue:
        queue_parent, _ = names.split_queue(queue.name)
        if queue_parent != names.check_parent(parent):
            raise invalid(f"Queue {queue.name!r} is not in {parent!r}")
        with self._cond:
            if queue.name in self._queues:
                raise already_exists(queue.name)
            stored = _with_queue_defaults(queue)
            stored.state = _RUNNING
            self._queues[queue.name] = _Queue(stored)
            log.info("queue created %s", queue.name)
            return tasks_v2.Queue(stored)

    def get_queue(self, name: str) -> tasks_v2.Queue:
        with self._cond:
            return tasks_v2.Queue(self._queue(name).queue)

    def list_queues(self, parent: str) -> list[tasks_v2.Queue]:
        prefix = names.check_parent(parent) + "/queues/"
        with self._cond:
            return [tasks_v2.Queue(q.queue) for name, q in sorted(self._queues.items()) if name.startswith(prefix)]

    def update_queue(self, queue: tasks_v2.Queue, mask: field_mask_pb2.FieldMask) -> tasks_v2.Queue:
        parent, _ = names.split_queue(queue.name)
        with self._cond:
            current = self._queues.get(queue.name)
            if current is None:
                # UpdateQueue creates a queue that does not exist yet.
                return self.create_queue(parent, queue)
            updated = tasks_v2.Queue(current.queue)
            _merge_settings(queue, updated, mask)
            current.queue = _with_queue_defaults(updated)
            log.info("queue updated %s", queue.name)
            return tasks_v2.Queue(current.queue)

    def delete_queue(self, name: str) -> None:
        with self._cond:
            self._queue(name)
            del self._queues[name]
            # Forgetting the tombstones makes a re-created queue a clean slate (see the package docstring).
            prefix = name + "/tasks/"
            for task_name in [t for t in self._tombstones if t.startswith(prefix)]:
                del self._tombstones[task_name]
            log.info("queue deleted %s", name)

    def purge_queue(self, name: str) -> tasks_v2.Queue:
        with self._cond:
            queue = self._queue(name)
            for entry in list(queue.tasks.values()):
                self._remove(queue, entry)
            queue.queue.purge_time = datetime.now(UTC)
            log.info("queue purged %s", name)
            return tasks_v2.Queue(queue.queue)

    def pause_queue(self, name: str) -> tasks_v2.Queue:
        with self._cond:
            queue = self._queue(name)
            queue.queue.state = _PAUSED
            log.info("queue paused %s", name)
            return tasks_v2.Queue(queue.queue)

    def resume_queue(self, name: str) -> tasks_v2.Queue:
        with self._cond:
            queue = self._queue(name)
            queue.queue.state = _RUNNING
            # Heap entries of a paused queue were dropped as they came due; put every waiting task back.
            for entry in queue.tasks.values():
                if entry.in_flight == 0:
                    self._push(entry)
            log.info("queue resumed %s", name)
            return tasks_v2.Queue(queue.queue)

    # Tasks

    def create_task(self, parent: str, task: tasks_v2.Task) -> tasks_v2.Task:
        with self._cond:
            queue = self._queue(parent)
            stored = _new_task(parent, task)
            self._forget_expired_tombstones()
            queue_name, task_id = names.split_task(stored.name)
            if stored.name in self._tombstones or task_id in queue.tasks:
                raise already_exists(stored.name)
            entry = _Entry(stored, queue_name, task_id)
            queue.tasks[task_id] = entry
            self._push(entry)
            log.info("task created %s due %s", stored.name, stored.schedule_time.isoformat())
            return tasks_v2.Task(stored)

    def get_task(self, name: str) -> tasks_v2.Task:
        with self._cond:
            return tasks_v2.Task(self._entry(name)[1].task)

    def list_tasks(self, parent: str) -> list[tasks_v2.Task]:
        with self._cond:
            queue = self._queue(parent)
            return [tasks_v2.Task(entry.task) for _, entry in sorted(queue.tasks.items())]

    def delete_task(self, name: str) -> None:
        with self._cond:
            queue, entry = self._entry(name)
            self._remove(queue, entry)
            log.info("task deleted %s", name)

    def run_task(self, name: str) -> tasks_v2.Task:
        """Due now, even if the queue is paused or the task is already running, as RunTask promises."""
        with self._cond:
            _, entry = self._entry(name)
            entry.task.schedule_time = datetime.now(UTC)
            self._push(entry, forced=True)
            log.info("task run %s", name)
            return tasks_v2.Task(entry.task)

    # Dispatch

    def claim_next(self) -> Dispatch | None:
        """Block until a task is due and mark it dispatched; None once the store is closed."""
        with self._cond:
            while not self._closed:
                now = time.time()
                if self._heap and self._heap[0][0] <= now:
                    _, _, entry, version, forced = heapq.heappop(self._heap)
                    if self._dispatchable(entry, version, forced):
                        return self._start(entry, now)
                    continue
                self._cond.wait(self._heap[0][0] - now if self._heap else None)
            return None

    def finish(self, dispatch: Dispatch, outcome: Outcome) -> None:
        with self._cond:
            entry = dispatch.entry
            queue = self._live_queue(entry)
            if queue is None:
                return  # deleted or purged while it ran
            entry.in_flight -= 1
            now = time.time()
            task = entry.task
            task.last_attempt.response_time = datetime.fromtimestamp(now, UTC)
            task.last_attempt.response_status = status_pb2.Status(code=outcome.rpc_code, message=outcome.message)
            if outcome.http_status is not None:
                task.response_count += 1
                entry.previous_response = outcome.http_status
                if outcome.http_status < 500:
                    entry.executions += 1
            if outcome.succeeded:
                self._remove(queue, entry)
                log.info("task done %s", task.name)
                return
            config = task.retry_config if "retry_config" in task else queue.queue.retry_config
            assert entry.first_dispatch_at is not None  # set by the first _start
            if retry.gives_up(config, task.dispatch_count, now - entry.first_dispatch_at):
                self._remove(queue, entry)
                log.info("task gave up %s after %d attempts: %s", task.name, task.dispatch_count, outcome.message)
                return
            delay = retry.retry_delay(config, task.dispatch_count - 1)
            task.schedule_time = datetime.fromtimestamp(now + delay, UTC)
            self._push(entry)
            log.info("task retry %s in %.3fs: %s", task.name, delay, outcome.message)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    # Keeping state between runs (`make dev KEEP=1`): Cloud Tasks keeps its queues and tasks through anything.

    def snapshot(self) -> dict[str, Any]:
        """Every queue and task, as base64 protobuf (a task that was being sent is due again), and the tombstones
        with the seconds each has left (a name that ran stays refused after a restart, as in Cloud Tasks)."""
        with self._cond:
            now = time.monotonic()
            return {
                "queues": [_b64(tasks_v2.Queue.serialize(queue.queue)) for queue in self._queues.values()],
                "tasks": [
                    _b64(tasks_v2.Task.serialize(entry.task))
                    for queue in self._queues.values()
                    for entry in queue.tasks.values()
                ],
                "tombstones": {name: until - now for name, until in self._tombstones.items() if until > now},
            }

    def restore(self, snapshot: dict[str, Any]) -> None:
        with self._cond:
            now = time.monotonic()
            for name, left in sorted(snapshot.get("tombstones", {}).items(), key=lambda item: item[1]):
                self._tombstones.setdefault(name, now + float(left))
            for raw in snapshot.get("queues", []):
                queue = tasks_v2.Queue.deserialize(base64.b64decode(raw))
                self._queues.setdefault(queue.name, _Queue(queue))
            for raw in snapshot.get("tasks", []):
                task = tasks_v2.Task.deserialize(base64.b64decode(raw))
                queue_name, task_id = names.split_task(task.name)
                queue = self._queues.get(queue_name)
                if queue is None or task_id in queue.tasks:
                    continue
                entry = _Entry(task, queue_name, task_id)
                queue.tasks[task_id] = entry
                self._push(entry)
            log.info("restored %d queues and %d tasks", len(self._queues), len(snapshot.get("tasks", [])))

    # Under the lock

    def _queue(self, name: str) -> _Queue:
        names.split_queue(name)
        queue = self._queues.get(name)
        if queue is None:
            raise not_found(name)
        return queue

    def _entry(self, name: str) -> tuple[_Queue, _Entry]:
        queue_name, task_id = names.split_task(name)
        queue = self._queues.get(queue_name)
        entry = queue.tasks.get(task_id) if queue else None
        if queue is None or entry is None:
            raise not_found(name)
        return queue, entry

    def _push(self, entry: _Entry, *, forced: bool = False) -> None:
        entry.version += 1
        due = entry.task.schedule_time.timestamp()
        heapq.heappush(self._heap, (due, next(self._sequence), entry, entry.version, forced))
        self._cond.notify_all()

    def _live_queue(self, entry: _Entry) -> _Queue | None:
        """The entry's queue, unless the entry was deleted (and perhaps its name reused) since."""
        queue = self._queues.get(entry.queue_name)
        return queue if queue is not None and queue.tasks.get(entry.task_id) is entry else None

    def _dispatchable(self, entry: _Entry, version: int, forced: bool) -> bool:
        queue = self._live_queue(entry)
        if queue is None or entry.version != version:
            return False
        return forced or (queue.queue.state == _RUNNING and entry.in_flight == 0)

    def _start(self, entry: _Entry, now: float) -> Dispatch:
        entry.version += 1
        entry.in_flight += 1
        task = entry.task
        task.dispatch_count += 1
        dispatched = datetime.fromtimestamp(now, UTC)
        if entry.first_dispatch_at is None:
            entry.first_dispatch_at = now
            # Cloud Tasks keeps only the dispatch time of the first attempt.
            task.first_attempt = tasks_v2.Attempt(dispatch_time=dispatched)
        task.last_attempt = tasks_v2.Attempt(schedule_time=task.schedule_time, dispatch_time=dispatched)
        log.info("task dispatch %s attempt %d to %s", task.name, task.dispatch_count, task.http_request.url)
        return Dispatch(
            entry=entry,
            queue_id=names.split_queue(entry.queue_name)[1],
            task_id=entry.task_id,
            request=tasks_v2.HttpRequest(task.http_request),
            deadline_s=task.dispatch_deadline.total_seconds(),
            eta=task.schedule_time.timestamp(),
            retry_count=task.dispatch_count - 1,
            execution_count=entry.executions,
            previous_response=entry.previous_response,
        )

    def _remove(self, queue: _Queue, entry: _Entry) -> None:
        del queue.tasks[entry.task_id]
        self._tombstones[entry.task.name] = time.monotonic() + TOMBSTONE_TTL_S

    def _forget_expired_tombstones(self) -> None:
        now = time.monotonic()
        while self._tombstones:
            oldest = next(iter(self._tombstones))
            if self._tombstones[oldest] > now:
                return
            del self._tombstones[oldest]


def _with_queue_defaults(queue: tasks_v2.Queue) -> tasks_v2.Queue:
    stored = tasks_v2.Queue(queue)
    stored.retry_config = retry.with_defaults(stored.retry_config if "retry_config" in stored else None)
    if "rate_limits" not in stored:
        stored.rate_limits = _DEFAULT_RATE_LIMITS
    return stored


def _merge_settings(source: tasks_v2.Queue, target: tasks_v2.Queue, mask: field_mask_pb2.FieldMask) -> None:
    """An empty mask replaces every setting; otherwise only the masked paths, which may name sub-fields."""
    paths = list(mask.paths) or list(_QUEUE_SETTINGS)
    for path in paths:
        if path.split(".", 1)[0] not in _QUEUE_SETTINGS:
            raise invalid(f"update_mask path {path!r} cannot be updated")
    try:
        field_mask_pb2.FieldMask(paths=paths).MergeMessage(
            tasks_v2.Queue.pb(source), tasks_v2.Queue.pb(target), replace_message_field=True
        )
    except ValueError as exc:
        raise invalid(f"Invalid update_mask: {exc}") from exc


def _new_task(parent: str, request: tasks_v2.Task) -> tasks_v2.Task:
    if "app_engine_http_request" in request:
        raise ApiError(grpc.StatusCode.UNIMPLEMENTED, "App Engine tasks are not emulated; use http_request")
    if "http_request" not in request:
        raise invalid("Task must have an http_request")
    http = request.http_request
    if not http.url.startswith(("http://", "https://")) or len(http.url) > 2083:
        raise invalid(f"http_request.url must be an absolute http(s) URL of at most 2083 characters: {http.url!r}")
    method = http.http_method or tasks_v2.HttpMethod.POST
    if http.body and method not in _BODY_METHODS:
        raise invalid("http_request.body is only allowed with POST, PUT or PATCH")

    now = datetime.now(UTC)
    if request.name:
        queue_name, _ = names.split_task(request.name)
        if queue_name != parent:
            raise invalid(f"Task {request.name!r} does not belong to queue {parent!r}")
    if "dispatch_deadline" in request and not timedelta(0) < request.dispatch_deadline <= _MAX_DEADLINE:
        raise invalid("dispatch_deadline must be positive and at most 30 minutes")
    if "schedule_time" in request and request.schedule_time > now + _MAX_SCHEDULE_AHEAD:
        raise invalid("schedule_time must be at most 30 days ahead")

    # Only what the caller may set is kept; the rest is output only.
    task = tasks_v2.Task(
        name=request.name or f"{parent}/tasks/{names.generated_task_id()}",
        http_request=tasks_v2.HttpRequest(http, http_method=method),
        schedule_time=max(request.schedule_time, now) if "schedule_time" in request else now,
        create_time=now.replace(microsecond=0),
        dispatch_deadline=request.dispatch_deadline if "dispatch_deadline" in request else _DEFAULT_DEADLINE,
    )
    if "retry_config" in request:
        task.retry_config = retry.with_defaults(request.retry_config)
    return task


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
