"""The google.cloud.tasks.v2.CloudTasks gRPC service over the store.

`google-cloud-tasks` ships message types but no servicer base class, so the methods are registered by name with
a generic handler, (de)serialised with the same proto-plus types the client uses.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import grpc
from google.cloud import tasks_v2
from google.protobuf import empty_pb2

from emulators.tasks_emulator.errors import ApiError, invalid
from emulators.tasks_emulator.store import TaskStore

SERVICE = "google.cloud.tasks.v2.CloudTasks"
_MAX_QUEUES_PAGE = 9800
_MAX_TASKS_PAGE = 1000

# proto-plus enums are untyped, so mypy takes their members for ints; calling the enum types them.
_BASIC = tasks_v2.Task.View(tasks_v2.Task.View.BASIC)
_FULL = tasks_v2.Task.View(tasks_v2.Task.View.FULL)

Item = TypeVar("Item")


class CloudTasksServicer:
    def __init__(self, store: TaskStore) -> None:
        self._store = store

    def create_queue(self, request: tasks_v2.CreateQueueRequest) -> tasks_v2.Queue:
        return self._store.create_queue(request.parent, request.queue)

    def get_queue(self, request: tasks_v2.GetQueueRequest) -> tasks_v2.Queue:
        return self._store.get_queue(request.name)

    def list_queues(self, request: tasks_v2.ListQueuesRequest) -> tasks_v2.ListQueuesResponse:
        queues = self._store.list_queues(request.parent)
        page, token = _page(queues, request.page_size, request.page_token, _MAX_QUEUES_PAGE)
        return tasks_v2.ListQueuesResponse(queues=page, next_page_token=token)

    def update_queue(self, request: tasks_v2.UpdateQueueRequest) -> tasks_v2.Queue:
        return self._store.update_queue(request.queue, request.update_mask)

    def delete_queue(self, request: tasks_v2.DeleteQueueRequest) -> empty_pb2.Empty:
        self._store.delete_queue(request.name)
        return empty_pb2.Empty()

    def purge_queue(self, request: tasks_v2.PurgeQueueRequest) -> tasks_v2.Queue:
        return self._store.purge_queue(request.name)

    def pause_queue(self, request: tasks_v2.PauseQueueRequest) -> tasks_v2.Queue:
        return self._store.pause_queue(request.name)

    def resume_queue(self, request: tasks_v2.ResumeQueueRequest) -> tasks_v2.Queue:
        return self._store.resume_queue(request.name)

    def create_task(self, request: tasks_v2.CreateTaskRequest) -> tasks_v2.Task:
        return _view(self._store.create_task(request.parent, request.task), request.response_view)

    def get_task(self, request: tasks_v2.GetTaskRequest) -> tasks_v2.Task:
        return _view(self._store.get_task(request.name), request.response_view)

    def list_tasks(self, request: tasks_v2.ListTasksRequest) -> tasks_v2.ListTasksResponse:
        tasks = self._store.list_tasks(request.parent)
        page, token = _page(tasks, request.page_size, request.page_token, _MAX_TASKS_PAGE)
        return tasks_v2.ListTasksResponse(
            tasks=[_view(task, request.response_view) for task in page], next_page_token=token
        )

    def delete_task(self, request: tasks_v2.DeleteTaskRequest) -> empty_pb2.Empty:
        self._store.delete_task(request.name)
        return empty_pb2.Empty()

    def run_task(self, request: tasks_v2.RunTaskRequest) -> tasks_v2.Task:
        return _view(self._store.run_task(request.name), request.response_view)

    def handler(self) -> grpc.GenericRpcHandler:
        methods = {
            "CreateQueue": _unary(self.create_queue, tasks_v2.CreateQueueRequest),
            "GetQueue": _unary(self.get_queue, tasks_v2.GetQueueRequest),
            "ListQueues": _unary(self.list_queues, tasks_v2.ListQueuesRequest),
            "UpdateQueue": _unary(self.update_queue, tasks_v2.UpdateQueueRequest),
            "DeleteQueue": _unary(self.delete_queue, tasks_v2.DeleteQueueRequest),
            "PurgeQueue": _unary(self.purge_queue, tasks_v2.PurgeQueueRequest),
            "PauseQueue": _unary(self.pause_queue, tasks_v2.PauseQueueRequest),
            "ResumeQueue": _unary(self.resume_queue, tasks_v2.ResumeQueueRequest),
            "CreateTask": _unary(self.create_task, tasks_v2.CreateTaskRequest),
            "GetTask": _unary(self.get_task, tasks_v2.GetTaskRequest),
            "ListTasks": _unary(self.list_tasks, tasks_v2.ListTasksRequest),
            "DeleteTask": _unary(self.delete_task, tasks_v2.DeleteTaskRequest),
            "RunTask": _unary(self.run_task, tasks_v2.RunTaskRequest),
        }
        return grpc.method_handlers_generic_handler(SERVICE, methods)


def build_server(store: TaskStore, address: str, *, workers: int = 16) -> grpc.Server:
    server = grpc.server(ThreadPoolExecutor(max_workers=workers, thread_name_prefix="tasks-grpc"))
    server.add_generic_rpc_handlers((CloudTasksServicer(store).handler(),))
    if server.add_insecure_port(address) == 0:
        raise OSError(f"cannot listen on {address}")
    return server


def _unary(method: Callable[[Any], Any], request_type: Any) -> grpc.RpcMethodHandler:
    def behaviour(request: Any, context: grpc.ServicerContext) -> Any:
        try:
            return method(request)
        except ApiError as exc:
            context.abort(exc.code, exc.message)

    return grpc.unary_unary_rpc_method_handler(
        behaviour, request_deserializer=request_type.deserialize, response_serializer=_serialize
    )


def _serialize(message: Any) -> bytes:
    """Responses are proto-plus messages, except Empty, which is a plain protobuf message."""
    if isinstance(message, empty_pb2.Empty):
        return bytes(message.SerializeToString())
    return bytes(type(message).serialize(message))


def _view(task: tasks_v2.Task, view: tasks_v2.Task.View) -> tasks_v2.Task:
    """BASIC, the default, leaves out the body: it can be large and sensitive."""
    if view == _FULL:
        task.view = _FULL
    else:
        task.http_request.body = b""
        task.view = _BASIC
    return task


def _page(items: Sequence[Item], size: int, token: str, max_size: int) -> tuple[Sequence[Item], str]:
    """Page tokens are offsets: the emulator has no snapshot to resume from, and its lists are small."""
    if size < 0:
        raise invalid("page_size must not be negative")
    try:
        start = int(token) if token else 0
    except ValueError:
        raise invalid(f"Invalid page_token {token!r}") from None
    end = start + min(size or max_size, max_size)
    return items[start:end], str(end) if end < len(items) else ""
