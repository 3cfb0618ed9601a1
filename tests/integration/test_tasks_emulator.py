"""The Cloud Tasks emulator, run as a real process and driven by the production client, and the adapter on it.

Each test works in its own queue, so they share one emulator and one HTTP receiver standing in for our handlers.
"""

from __future__ import annotations

import base64
import itertools
import json
import signal
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit

import grpc
import pytest
from google.api_core import exceptions
from google.auth import jwt as google_jwt
from google.cloud import tasks_v2
from google.cloud.tasks_v2.services.cloud_tasks import transports
from google.protobuf import field_mask_pb2
from google.rpc import code_pb2

from emulators.oidc_issuer import LocalIssuer, ensure_key
from emulators.process import ManagedProcess, free_port
from shared.adapters.cloud_tasks import CloudTasksScheduler

REPO = Path(__file__).resolve().parents[2]
PROJECT = "demo-halo"
LOCATION = "asia-southeast2"
PARENT = f"projects/{PROJECT}/locations/{LOCATION}"
SERVICE_ACCOUNT = "tasks-invoker@demo-halo.iam.gserviceaccount.com"
# How far off schedule a dispatch may land.
TOLERANCE_S = 0.2

T = TypeVar("T")


# The stand-in for our handlers


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-cased names
    body: bytes
    at: float


class Receiver:
    """Records every request; `?status=500&sleep=1.5` in the URL says how to answer it."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._requests: list[Received] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                receiver._handle(self)

            def do_PUT(self) -> None:
                receiver._handle(self)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # the deadline test hangs up on a sleeping handler on purpose

        self._server = Server(("127.0.0.1", free_port()), Handler)
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def url(self, path: str = "/ok", **query: Any) -> str:
        return f"{self.base_url}{path}" + (f"?{urlencode(query)}" if query else "")

    def requests_for(self, queue_id: str) -> list[Received]:
        with self._cond:
            return [r for r in self._requests if r.headers.get("x-cloudtasks-queuename") == queue_id]

    def wait_for(self, queue_id: str, count: int = 1, timeout: float = 5.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.requests_for(queue_id)) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"{queue_id}: {len(self.requests_for(queue_id))} of {count} requests")
                self._cond.wait(remaining)
            return self.requests_for(queue_id)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        url = urlsplit(handler.path)
        query = dict(parse_qsl(url.query))
        body = handler.rfile.read(int(handler.headers.get("Content-Length") or 0))
        received = Received(
            method=handler.command,
            path=url.path,
            query=query,
            headers={k.lower(): v for k, v in handler.headers.items()},
            body=body,
            at=time.time(),
        )
        with self._cond:
            self._requests.append(received)
            self._cond.notify_all()
        time.sleep(float(query.get("sleep", 0)))
        handler.send_response(int(query.get("status", 200)))
        handler.send_header("Content-Length", "0")
        handler.end_headers()


# Fixtures and helpers


def start_emulator(log_dir: Path, *extra: str, port: int | None = None) -> tuple[ManagedProcess, str]:
    port = port or free_port()
    key = ensure_key(log_dir / "oidc-key.pem")
    argv = [sys.executable, "-m", "emulators.tasks_emulator", "--host", "127.0.0.1", "--port", str(port)]
    argv += ["--oidc-key", str(key), *extra]
    process = ManagedProcess("tasks-emulator", argv, log_dir=log_dir, cwd=REPO).start()
    process.wait_port(port, timeout=30)
    return process, f"127.0.0.1:{port}"


@pytest.fixture(scope="module")
def emulator_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("tasks-emulator")


@pytest.fixture(scope="module")
def emulator(emulator_dir: Path) -> Iterator[str]:
    process, host = start_emulator(emulator_dir)
    try:
        yield host
    finally:
        process.stop()


@pytest.fixture(scope="module")
def client(emulator: str) -> Iterator[tasks_v2.CloudTasksClient]:
    channel = grpc.insecure_channel(emulator)
    yield tasks_v2.CloudTasksClient(transport=transports.CloudTasksGrpcTransport(channel=channel))
    channel.close()


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    yield receiver
    receiver.close()


def new_queue(client: tasks_v2.CloudTasksClient, **retry: Any) -> tuple[str, str]:
    """A fresh queue with fast retries unless told otherwise; returns (queue id, queue name)."""
    queue_id = f"q-{uuid.uuid4().hex[:12]}"
    config = {"min_backoff": timedelta(milliseconds=100), "max_backoff": timedelta(seconds=1), **retry}
    name = f"{PARENT}/queues/{queue_id}"
    client.create_queue(parent=PARENT, queue=tasks_v2.Queue(name=name, retry_config=tasks_v2.RetryConfig(**config)))
    return queue_id, name


def http_task(url: str, name: str = "", **fields: Any) -> tasks_v2.Task:
    return tasks_v2.Task(name=name, http_request=tasks_v2.HttpRequest(url=url), **fields)


def eventually(check: Callable[[], T], timeout: float = 5.0) -> T:
    """Poll until `check` returns without an AssertionError or NotFound, then hand back what it returned."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return check()
        except (AssertionError, exceptions.NotFound):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def assert_gone(client: tasks_v2.CloudTasksClient, name: str) -> None:
    try:
        client.get_task(name=name)
    except exceptions.NotFound:
        return
    raise AssertionError(f"{name} still exists")


def assert_empty(client: tasks_v2.CloudTasksClient, queue: str) -> None:
    assert list(client.list_tasks(parent=queue)) == []


def jwt_parts(authorization: str) -> tuple[dict[str, Any], dict[str, Any], str]:
    scheme, token = authorization.split(" ", 1)
    assert scheme == "Bearer"
    header, claims, signature = token.split(".")

    def decode(segment: str) -> dict[str, Any]:
        return dict(json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))))

    return decode(header), decode(claims), signature


# Queues


def test_queue_lifecycle_keeps_retry_config_and_rate_limits(client: tasks_v2.CloudTasksClient) -> None:
    name = f"{PARENT}/queues/q-{uuid.uuid4().hex[:12]}"
    retry = tasks_v2.RetryConfig(
        max_attempts=7,
        min_backoff=timedelta(seconds=0.5),
        max_backoff=timedelta(seconds=20),
        max_doublings=3,
        max_retry_duration=timedelta(seconds=60),
    )
    limits = tasks_v2.RateLimits(max_dispatches_per_second=5, max_burst_size=10, max_concurrent_dispatches=2)

    created = client.create_queue(
        parent=PARENT, queue=tasks_v2.Queue(name=name, retry_config=retry, rate_limits=limits)
    )
    assert created.retry_config == retry
    assert created.rate_limits == limits
    assert created.state == tasks_v2.Queue.State.RUNNING
    assert client.get_queue(name=name) == created
    with pytest.raises(exceptions.AlreadyExists):
        client.create_queue(parent=PARENT, queue=tasks_v2.Queue(name=name))
    assert name in [q.name for q in client.list_queues(parent=PARENT)]

    assert client.pause_queue(name=name).state == tasks_v2.Queue.State.PAUSED
    assert client.get_queue(name=name).state == tasks_v2.Queue.State.PAUSED
    assert client.resume_queue(name=name).state == tasks_v2.Queue.State.RUNNING

    client.delete_queue(name=name)
    with pytest.raises(exceptions.NotFound):
        client.get_queue(name=name)
    with pytest.raises(exceptions.NotFound):
        client.delete_queue(name=name)
    assert name not in [q.name for q in client.list_queues(parent=PARENT)]


def test_queue_without_retry_config_gets_cloud_tasks_defaults_and_can_be_updated(
    client: tasks_v2.CloudTasksClient,
) -> None:
    name = f"{PARENT}/queues/q-{uuid.uuid4().hex[:12]}"
    retry = client.create_queue(parent=PARENT, queue=tasks_v2.Queue(name=name)).retry_config
    assert retry.max_attempts == 100
    assert retry.min_backoff == timedelta(seconds=0.1)
    assert retry.max_backoff == timedelta(seconds=3600)
    assert retry.max_doublings == 16

    change = tasks_v2.Queue(name=name, retry_config=tasks_v2.RetryConfig(max_attempts=3))
    updated = client.update_queue(
        queue=change, update_mask=field_mask_pb2.FieldMask(paths=["retry_config.max_attempts"])
    )
    assert updated.retry_config.max_attempts == 3
    assert updated.retry_config.max_doublings == 16
    assert client.get_queue(name=name).retry_config.max_attempts == 3


def test_purge_deletes_every_task_and_keeps_their_names_taken(client: tasks_v2.CloudTasksClient) -> None:
    _, queue = new_queue(client)
    client.pause_queue(name=queue)
    names = [client.create_task(parent=queue, task=http_task("http://127.0.0.1:9/x")).name for _ in range(2)]

    purged = client.purge_queue(name=queue)

    assert purged.purge_time is not None
    assert list(client.list_tasks(parent=queue)) == []
    with pytest.raises(exceptions.AlreadyExists):
        client.create_task(parent=queue, task=http_task("http://127.0.0.1:9/x", name=names[0]))


def test_a_deleted_and_recreated_queue_dispatches(client: tasks_v2.CloudTasksClient, receiver: Receiver) -> None:
    queue_id, queue = new_queue(client)
    client.delete_queue(name=queue)
    client.create_queue(parent=PARENT, queue=tasks_v2.Queue(name=queue))

    client.create_task(parent=queue, task=http_task(receiver.url()))

    assert len(receiver.wait_for(queue_id)) == 1


# Tasks


def test_task_create_get_list_delete_and_not_found(client: tasks_v2.CloudTasksClient) -> None:
    _, queue = new_queue(client)
    client.pause_queue(name=queue)  # keep the tasks from being dispatched while they are looked at
    name = f"{queue}/tasks/booking-42_reminder"
    body = b'{"booking": 42}'

    created = client.create_task(
        parent=queue, task=tasks_v2.Task(name=name, http_request=tasks_v2.HttpRequest(url="http://x/y", body=body))
    )
    now = datetime.now(UTC)
    assert created.name == name
    assert created.http_request.http_method == tasks_v2.HttpMethod.POST
    assert abs((created.schedule_time - now).total_seconds()) < 1
    assert abs((created.create_time - now).total_seconds()) < 2
    assert created.dispatch_deadline == timedelta(minutes=10)
    assert (created.dispatch_count, created.response_count) == (0, 0)

    basic = client.get_task(name=name)
    assert (basic.view, basic.http_request.body) == (tasks_v2.Task.View.BASIC, b"")
    full = client.get_task(request={"name": name, "response_view": tasks_v2.Task.View.FULL})
    assert (full.view, full.http_request.body) == (tasks_v2.Task.View.FULL, body)

    unnamed = client.create_task(parent=queue, task=http_task("http://x/y"))
    assert unnamed.name.startswith(f"{queue}/tasks/")
    assert unnamed.name.rsplit("/", 1)[1].isdigit()
    client.create_task(parent=queue, task=http_task("http://x/y"))
    pages = client.list_tasks(request={"parent": queue, "page_size": 2}).pages
    assert [len(page.tasks) for page in pages] == [2, 1]

    with pytest.raises(exceptions.AlreadyExists):
        client.create_task(parent=queue, task=http_task("http://x/y", name=name))
    client.delete_task(name=name)
    assert_gone(client, name)
    with pytest.raises(exceptions.NotFound):
        client.delete_task(name=name)
    with pytest.raises(exceptions.AlreadyExists):  # deleted names stay taken (Cloud Tasks: for about an hour)
        client.create_task(parent=queue, task=http_task("http://x/y", name=name))

    missing_queue = f"{PARENT}/queues/no-such-queue"
    with pytest.raises(exceptions.NotFound):
        client.create_task(parent=missing_queue, task=http_task("http://x/y"))
    with pytest.raises(exceptions.NotFound):
        client.get_task(name=f"{missing_queue}/tasks/t")
    with pytest.raises(exceptions.NotFound):
        client.run_task(name=f"{queue}/tasks/never-created")


def test_invalid_tasks_are_rejected(client: tasks_v2.CloudTasksClient) -> None:
    _, queue = new_queue(client)
    _, other_queue = new_queue(client)
    get_with_body = tasks_v2.HttpRequest(url="http://x/y", http_method=tasks_v2.HttpMethod.GET, body=b"x")

    for task in (
        tasks_v2.Task(http_request=get_with_body),
        http_task("ftp://x/y"),
        http_task("http://x/y", name=f"{other_queue}/tasks/elsewhere"),
        http_task("http://x/y", name=f"{queue}/tasks/no spaces"),
        tasks_v2.Task(),
    ):
        with pytest.raises(exceptions.InvalidArgument):
            client.create_task(parent=queue, task=task)


# Dispatch


def test_dispatch_at_schedule_time_with_cloud_tasks_headers_and_oidc(
    client: tasks_v2.CloudTasksClient, receiver: Receiver, emulator_dir: Path
) -> None:
    queue_id, queue = new_queue(client)
    due = datetime.now(UTC) + timedelta(seconds=1)
    url = receiver.url("/tasks/remind", ref="a b")
    request = tasks_v2.HttpRequest(
        url=url,
        http_method=tasks_v2.HttpMethod.PUT,
        headers={"Content-Type": "application/json", "X-Custom": "1", "User-Agent": "mine", "X-CloudTasks-X": "no"},
        body=b'{"n": 1}',
        oidc_token=tasks_v2.OidcToken(service_account_email=SERVICE_ACCOUNT, audience="https://halo.example"),
    )
    named = client.create_task(
        parent=queue, task=tasks_v2.Task(name=f"{queue}/tasks/first", http_request=request, schedule_time=due)
    )
    plain_audience = tasks_v2.OidcToken(service_account_email=SERVICE_ACCOUNT)
    client.create_task(
        parent=queue,
        task=tasks_v2.Task(http_request=tasks_v2.HttpRequest(url=receiver.url("/plain"), oidc_token=plain_audience)),
    )

    by_path = {r.path: r for r in receiver.wait_for(queue_id, count=2)}
    first = by_path["/tasks/remind"]
    assert abs(first.at - due.timestamp()) <= TOLERANCE_S
    assert (first.method, first.query, first.body) == ("PUT", {"ref": "a b"}, b'{"n": 1}')
    headers = first.headers
    assert headers["content-type"] == "application/json"
    assert headers["x-custom"] == "1"
    assert headers["user-agent"] == "Google-Cloud-Tasks"
    assert "x-cloudtasks-x" not in headers
    assert headers["x-cloudtasks-queuename"] == queue_id
    assert headers["x-cloudtasks-taskname"] == "first"
    assert (headers["x-cloudtasks-taskretrycount"], headers["x-cloudtasks-taskexecutioncount"]) == ("0", "0")
    assert "x-cloudtasks-taskpreviousresponse" not in headers
    assert float(headers["x-cloudtasks-tasketa"]) == pytest.approx(named.schedule_time.timestamp(), abs=1e-6)

    jwt_header, claims, _ = jwt_parts(headers["authorization"])
    issuer = LocalIssuer(emulator_dir / "oidc-key.pem")
    assert (jwt_header["alg"], jwt_header["kid"]) == ("RS256", issuer.key_id)
    verified = google_jwt.decode(headers["authorization"].split(" ", 1)[1], certs=issuer.certs())
    assert verified == claims, "signed with the key whose certificate the functions verify against"
    assert claims["iss"] == "https://accounts.google.com"
    assert claims["aud"] == "https://halo.example"
    assert (claims["email"], claims["email_verified"]) == (SERVICE_ACCOUNT, True)
    assert claims["sub"].isdigit()
    assert claims["iat"] <= time.time() < claims["exp"]
    assert jwt_parts(by_path["/plain"].headers["authorization"])[1]["aud"] == receiver.url("/plain")

    # Done means gone, and the name stays taken.
    eventually(lambda: assert_gone(client, named.name))
    with pytest.raises(exceptions.AlreadyExists):
        client.create_task(parent=queue, task=http_task(receiver.url(), name=named.name))


def test_failures_are_retried_with_doubling_then_linear_backoff_until_max_attempts(
    client: tasks_v2.CloudTasksClient, receiver: Receiver
) -> None:
    # min 0.1 s, 1 doubling, max 0.5 s → retries after 0.1, 0.2, then linearly 0.4, then capped 0.5.
    queue_id, queue = new_queue(
        client,
        max_attempts=5,
        min_backoff=timedelta(seconds=0.1),
        max_backoff=timedelta(seconds=0.5),
        max_doublings=1,
    )
    task = client.create_task(parent=queue, task=http_task(receiver.url(status=500)))

    attempts = receiver.wait_for(queue_id, count=5)
    gaps = [later.at - earlier.at for earlier, later in itertools.pairwise(attempts)]
    assert gaps == pytest.approx([0.1, 0.2, 0.4, 0.5], abs=0.1)
    assert [a.headers["x-cloudtasks-taskretrycount"] for a in attempts] == ["0", "1", "2", "3", "4"]
    # 5xx answers never count as executions.
    assert {a.headers["x-cloudtasks-taskexecutioncount"] for a in attempts} == {"0"}
    assert [a.headers.get("x-cloudtasks-taskpreviousresponse") for a in attempts] == [None] + ["500"] * 4

    eventually(lambda: assert_gone(client, task.name))
    time.sleep(0.6)
    assert len(receiver.requests_for(queue_id)) == 5
    with pytest.raises(exceptions.AlreadyExists):
        client.create_task(parent=queue, task=http_task(receiver.url(), name=task.name))


def test_retries_stop_only_when_max_attempts_and_max_retry_duration_are_both_reached(
    client: tasks_v2.CloudTasksClient, receiver: Receiver
) -> None:
    # Two attempts are reached at 0.4 s, but retrying goes on until 1 s has passed: attempts at 0, .4, .8, 1.2 s.
    queue_id, queue = new_queue(
        client,
        max_attempts=2,
        max_retry_duration=timedelta(seconds=1),
        min_backoff=timedelta(seconds=0.4),
        max_backoff=timedelta(seconds=0.4),
    )
    task = client.create_task(parent=queue, task=http_task(receiver.url(status=503)))

    receiver.wait_for(queue_id, count=4)
    eventually(lambda: assert_gone(client, task.name))
    time.sleep(0.6)
    assert len(receiver.requests_for(queue_id)) == 4


def test_attempts_are_recorded_on_the_task_and_run_task_retries_now(
    client: tasks_v2.CloudTasksClient, receiver: Receiver
) -> None:
    queue_id, queue = new_queue(client, min_backoff=timedelta(seconds=30), max_backoff=timedelta(seconds=60))
    task = client.create_task(parent=queue, task=http_task(receiver.url(status=404)))
    receiver.wait_for(queue_id)

    def after_first_attempt() -> tasks_v2.Task:
        current = client.get_task(name=task.name)
        assert (current.dispatch_count, current.response_count) == (1, 1)
        return current

    failed = eventually(after_first_attempt)
    assert failed.first_attempt.dispatch_time == failed.last_attempt.dispatch_time
    assert failed.last_attempt.response_time >= failed.last_attempt.dispatch_time
    assert failed.last_attempt.response_status.code == code_pb2.NOT_FOUND
    retry_in = (failed.schedule_time - datetime.now(UTC)).total_seconds()
    assert 28 < retry_in <= 30

    started = time.time()
    client.run_task(name=task.name)
    second = receiver.wait_for(queue_id, count=2)[1]
    assert second.at - started < TOLERANCE_S
    assert second.headers["x-cloudtasks-taskretrycount"] == "1"
    assert second.headers["x-cloudtasks-taskexecutioncount"] == "1"  # a 404 is an execution, unlike a 5xx
    assert second.headers["x-cloudtasks-taskpreviousresponse"] == "404"
    client.delete_task(name=task.name)


def test_paused_queue_holds_tasks_until_resumed(client: tasks_v2.CloudTasksClient, receiver: Receiver) -> None:
    queue_id, queue = new_queue(client)
    client.pause_queue(name=queue)
    task = client.create_task(parent=queue, task=http_task(receiver.url()))

    time.sleep(0.5)
    assert receiver.requests_for(queue_id) == []
    assert client.get_task(name=task.name).dispatch_count == 0

    resumed = time.time()
    client.resume_queue(name=queue)
    assert receiver.wait_for(queue_id)[0].at - resumed < TOLERANCE_S


def test_run_task_dispatches_now_even_in_a_paused_queue(client: tasks_v2.CloudTasksClient, receiver: Receiver) -> None:
    queue_id, queue = new_queue(client)
    client.pause_queue(name=queue)
    later = datetime.now(UTC) + timedelta(hours=1)
    task = client.create_task(parent=queue, task=http_task(receiver.url(), schedule_time=later))

    started = time.time()
    ran = client.run_task(name=task.name)

    assert abs(ran.schedule_time.timestamp() - started) < 1
    assert receiver.wait_for(queue_id)[0].at - started < TOLERANCE_S
    eventually(lambda: assert_gone(client, task.name))


def test_a_slow_handler_does_not_hold_up_other_tasks(client: tasks_v2.CloudTasksClient, receiver: Receiver) -> None:
    queue_id, queue = new_queue(client)
    client.create_task(parent=queue, task=http_task(receiver.url("/slow", sleep=1.5)))
    due = datetime.now(UTC) + timedelta(seconds=0.2)
    client.create_task(parent=queue, task=http_task(receiver.url("/fast"), schedule_time=due))

    fast = next(r for r in receiver.wait_for(queue_id, count=2) if r.path == "/fast")
    assert abs(fast.at - due.timestamp()) <= TOLERANCE_S


def test_dispatch_deadline_is_the_http_timeout(client: tasks_v2.CloudTasksClient, receiver: Receiver) -> None:
    queue_id, queue = new_queue(client, min_backoff=timedelta(seconds=30), max_backoff=timedelta(seconds=60))
    task = client.create_task(
        parent=queue,
        task=http_task(receiver.url(sleep=2), dispatch_deadline=timedelta(seconds=0.5)),
    )
    receiver.wait_for(queue_id)

    def timed_out() -> tasks_v2.Task:
        current = client.get_task(name=task.name)
        assert current.last_attempt.response_status.code == code_pb2.DEADLINE_EXCEEDED
        return current

    current = eventually(timed_out)
    waited = current.last_attempt.response_time - current.last_attempt.dispatch_time
    assert timedelta(seconds=0.45) <= waited < timedelta(seconds=1)
    assert (current.dispatch_count, current.response_count) == (1, 0)
    client.delete_task(name=task.name)


def test_sigterm_stops_the_emulator_cleanly(tmp_path: Path) -> None:
    process, _ = start_emulator(tmp_path)
    try:
        assert process.proc is not None
        process.proc.send_signal(signal.SIGTERM)
        assert process.proc.wait(timeout=5) == 0
        assert process.tail().splitlines()[-1].endswith("stopped")
    finally:
        process.stop()


def test_with_a_state_file_a_restart_keeps_queues_tasks_and_the_names_that_ran(
    tmp_path: Path, receiver: Receiver
) -> None:
    """As Cloud Tasks keeps them through anything: a restarted emulator still sends what was scheduled before it
    stopped, and still refuses the name of a task that ran."""
    state = str(tmp_path / "tasks.json")
    process, host = start_emulator(tmp_path, "--state-file", state)
    port = int(host.rsplit(":", 1)[1])
    channel = grpc.insecure_channel(host)
    client = tasks_v2.CloudTasksClient(transport=transports.CloudTasksGrpcTransport(channel=channel))
    try:
        queue_id, queue = new_queue(client)
        ran = client.create_task(parent=queue, task=http_task(receiver.url("/ran"), name=f"{queue}/tasks/ran"))
        receiver.wait_for(queue_id, count=1)
        eventually(lambda: assert_gone(client, ran.name))
        later = datetime.now(UTC) + timedelta(seconds=3)
        waiting = client.create_task(
            parent=queue, task=http_task(receiver.url("/later"), name=f"{queue}/tasks/later", schedule_time=later)
        )

        process.stop()
        process, _ = start_emulator(tmp_path, "--state-file", state, port=port)

        assert client.get_task(name=waiting.name).name == waiting.name
        with pytest.raises(exceptions.AlreadyExists):
            client.create_task(parent=queue, task=http_task(receiver.url("/ran"), name=ran.name))
        later_request = receiver.wait_for(queue_id, count=2, timeout=10)[1]
        assert later_request.path == "/later"
        assert later_request.at >= later.timestamp() - TOLERANCE_S
    finally:
        channel.close()
        process.stop()


# The production adapter


@pytest.fixture
def scheduler(emulator: str, receiver: Receiver) -> CloudTasksScheduler:
    return CloudTasksScheduler(
        project=PROJECT,
        location=LOCATION,
        target_base_url=receiver.base_url,
        service_account_email=SERVICE_ACCOUNT,
        emulator_host=emulator,
    )


def adapter_queue(scheduler: CloudTasksScheduler) -> str:
    queue_id = f"q-{uuid.uuid4().hex[:12]}"
    for _ in range(2):  # ensure_queue is idempotent
        scheduler.ensure_queue(queue=queue_id, max_attempts=3, min_backoff_s=0.1, max_backoff_s=1, max_doublings=2)
    return queue_id


def test_adapter_schedules_a_json_post_with_an_oidc_token_at_the_given_time(
    scheduler: CloudTasksScheduler, client: tasks_v2.CloudTasksClient, receiver: Receiver
) -> None:
    queue_id = adapter_queue(scheduler)
    retry = client.get_queue(name=f"{PARENT}/queues/{queue_id}").retry_config
    assert (retry.max_attempts, retry.min_backoff, retry.max_doublings) == (3, timedelta(seconds=0.1), 2)
    at = datetime.now(UTC) + timedelta(seconds=1)

    assert scheduler.schedule(
        queue=queue_id, task_id="booking-7_reminder", handler="tasks/remind", payload={"booking": 7}, at=at
    )

    request = receiver.wait_for(queue_id)[0]
    assert abs(request.at - at.timestamp()) <= TOLERANCE_S
    assert (request.method, request.path) == ("POST", "/tasks/remind")
    assert request.headers["content-type"] == "application/json"
    assert json.loads(request.body) == {"booking": 7}
    assert request.headers["x-cloudtasks-taskname"] == "booking-7_reminder"
    claims = jwt_parts(request.headers["authorization"])[1]
    assert (claims["aud"], claims["email"]) == (f"{receiver.base_url}/tasks/remind", SERVICE_ACCOUNT)


def test_adapter_schedule_is_deduplicated_by_task_id(
    scheduler: CloudTasksScheduler, client: tasks_v2.CloudTasksClient, receiver: Receiver
) -> None:
    queue_id = adapter_queue(scheduler)
    args: dict[str, Any] = {"queue": queue_id, "task_id": "once", "handler": "tasks/once", "payload": {}}

    assert scheduler.schedule(**args) is True
    assert scheduler.schedule(**args) is False
    receiver.wait_for(queue_id)
    eventually(lambda: assert_gone(client, f"{PARENT}/queues/{queue_id}/tasks/once"))
    assert scheduler.schedule(**args) is False  # it ran; the id stays taken
    time.sleep(0.3)
    assert len(receiver.requests_for(queue_id)) == 1


def test_adapter_cancel_prevents_dispatch(scheduler: CloudTasksScheduler, receiver: Receiver) -> None:
    queue_id = adapter_queue(scheduler)
    at = datetime.now(UTC) + timedelta(seconds=0.5)
    scheduler.schedule(queue=queue_id, task_id="cancel-me", handler="tasks/x", payload={"a": 1}, at=at)

    assert scheduler.cancel(queue=queue_id, task_id="cancel-me") is True
    assert scheduler.cancel(queue=queue_id, task_id="cancel-me") is False
    assert scheduler.cancel(queue=queue_id, task_id="never-scheduled") is False
    time.sleep(0.8)
    assert receiver.requests_for(queue_id) == []


def test_adapter_purge_deletes_every_waiting_task(
    scheduler: CloudTasksScheduler, client: tasks_v2.CloudTasksClient
) -> None:
    queue_id = adapter_queue(scheduler)
    at = datetime.now(UTC) + timedelta(hours=1)
    for n in range(3):
        scheduler.schedule(queue=queue_id, task_id=f"later-{n}", handler="tasks/x", payload={}, at=at)
    assert len(list(client.list_tasks(parent=f"{PARENT}/queues/{queue_id}"))) == 3

    scheduler.purge_queue(queue_id)

    eventually(lambda: assert_empty(client, f"{PARENT}/queues/{queue_id}"))


@pytest.mark.parametrize("task_id", ["", "a/b", "has space", "ümlaut", "x" * 501])
def test_adapter_rejects_task_ids_cloud_tasks_would(scheduler: CloudTasksScheduler, task_id: str) -> None:
    with pytest.raises(ValueError, match="task id"):
        scheduler.schedule(queue="q", task_id=task_id, handler="h", payload={})
    with pytest.raises(ValueError, match="task id"):
        scheduler.cancel(queue="q", task_id=task_id)


def test_adapter_rejects_a_naive_time(scheduler: CloudTasksScheduler) -> None:
    with pytest.raises(ValueError, match="timezone"):
        scheduler.schedule(queue="q", task_id="t", handler="h", payload={}, at=datetime(2030, 1, 1))
