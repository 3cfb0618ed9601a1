"""The foundation's vertical slice, exercised as the apps and Google's infrastructure would."""

from __future__ import annotations

import http.client
import json
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
import requests

from emulators.simulator import App, AuthEmulator, Watch
from emulators.stack import LocalStack
from shared.adapters.postgres.database import Database


def test_pricing_quote_through_the_gateway_with_an_emulator_token(new_client: Callable[..., App]) -> None:
    reply = new_client().get("pricing_quote")

    assert reply.status == 200, reply.body
    assert [tier["id"] for tier in reply.body["tiers"]] == ["sesi-30", "sesi-60", "sesi-90"]
    assert reply.body["tiers"][0] == {
        "id": "sesi-30",
        "minutes": 30,
        "duration_s": 1800,
        "price": 35000,
        "charge": 35000,
    }, "a new client has no credited-back balance: the checkout charges the whole price"
    assert reply.body["free_trial"] == {"available": True, "minutes": 15}
    assert reply.body["currency"] == "IDR"


@pytest.mark.parametrize(
    ("headers", "status", "code"),
    [
        ({}, 401, "unauthenticated"),
        ({"Authorization": "Basic abc"}, 401, "unauthenticated"),
        ({"Authorization": "Bearer not-a-jwt"}, 401, "unauthenticated"),
        ({"Authorization": "Bearer "}, 401, "unauthenticated"),
    ],
)
def test_missing_or_malformed_authorization_is_401_with_the_envelope(
    stack: LocalStack, headers: dict[str, str], status: int, code: str
) -> None:
    response = requests.get(f"{stack.functions_url}/pricing_quote", headers=headers, timeout=10)

    assert response.status_code == status
    assert response.json()["error"]["code"] == code
    assert response.json()["error"]["message"]


def test_a_signed_in_user_without_the_role_is_403(stack: LocalStack, auth: AuthEmulator) -> None:
    app = App(stack.functions_url, auth.sign_in_with_google(f"{uuid.uuid4().hex[:8]}@example.com"))

    reply = app.get("pricing_quote")

    assert (reply.status, reply.error_code) == (403, "forbidden")


def test_an_expired_token_is_401(stack: LocalStack, auth: AuthEmulator, new_client: Callable[..., App]) -> None:
    app = new_client()
    assert app.session is not None
    expired = auth.expired_token_for(app.session)

    response = requests.get(
        f"{stack.functions_url}/pricing_quote", headers={"Authorization": f"Bearer {expired}"}, timeout=10
    )

    assert response.status_code == 401
    assert "expired" in response.json()["error"]["message"]


def test_wrong_method_unknown_function_and_unknown_query_field(
    stack: LocalStack, new_client: Callable[..., App]
) -> None:
    app = new_client()

    assert app.post("pricing_quote").status == 405
    assert requests.get(f"{stack.functions_url}/no_such_function", timeout=10).status_code == 404
    unknown = app.get("pricing_quote", surprise="1")
    assert unknown.status == 200, "a newer app's parameter is ignored by an older backend (docs/contract.md)"
    assert unknown.body == app.get("pricing_quote").body


def test_openapi_document_is_served_and_lists_the_contract(stack: LocalStack) -> None:
    document = requests.get(f"{stack.functions_url}/openapi.json", timeout=10).json()

    assert document["openapi"].startswith("3.")
    assert "get" in document["paths"]["/pricing_quote"]


@pytest.mark.needs_gcloud
def test_pubsub_push_reaches_a_cloud_event_function_which_projects_the_outbox(stack: LocalStack) -> None:
    """A row committed to the outbox reaches a Firestore listener through the scheduled `outbox_sweep`:
    stack ticker → Pub/Sub emulator → push to the gateway → CloudEvent function → projector → Firestore."""
    from shared.adapters.postgres.uow import PostgresUnitOfWork
    from shared.domain.events import DocumentWrite, ts

    doc_id = uuid.uuid4().hex
    watch = Watch.document(f"slice_checks/{doc_id}", project=stack.env()["GOOGLE_CLOUD_PROJECT"])
    database = Database(lambda: stack.postgres.connect("halo"), max_idle=1)
    try:
        with PostgresUnitOfWork(database) as uow:  # committed, and left to the sweep to deliver
            uow.outbox.add(DocumentWrite.at(f"slice_checks/{doc_id}", {"hello": "world", "at": ts(_now())}))
            uow.commit()
        try:
            doc = watch.wait_for(bool, timeout=20)
        except TimeoutError:
            pytest.fail("the sweep never projected the row")
        assert doc[f"slice_checks/{doc_id}"]["hello"] == "world"
        assert _eventually(lambda: _published(database, f"slice_checks/{doc_id}")), "the row was never marked"
    finally:
        watch.close()
        database.close()


def test_a_cloud_task_fires_at_its_time_into_its_handler(stack: LocalStack) -> None:
    """The production Cloud Tasks client schedules `task_project_outbox`; the emulator dispatches it to the
    gateway at schedule_time with an OIDC header; the handler runs (here: nothing left to publish)."""
    from shared.bootstrap import tasks

    scheduler = tasks()
    at = _now().timestamp() + 1.5
    task_id = f"slice-{uuid.uuid4().hex}"
    assert scheduler.schedule(
        queue="outbox-retry",
        task_id=task_id,
        handler="task_project_outbox",
        payload={"ids": [987654321]},
        at=datetime.fromtimestamp(at, UTC),
    )
    assert not scheduler.schedule(
        queue="outbox-retry", task_id=task_id, handler="task_project_outbox", payload={"ids": [1]}, at=None
    )
    deadline = time.time() + 10
    gateway_log = stack.log_dir / "gateway.log"
    while time.time() < deadline:
        dispatched = [line for line in gateway_log.read_text().splitlines() if task_id in line]
        if dispatched:
            break
        time.sleep(0.1)
    else:
        pytest.fail("the task never reached its handler")
    entry = json.loads(dispatched[0])
    assert entry["outcome"] == "already_published"
    assert time.time() >= at - 0.2


def _published(database: Database, path: str) -> bool:
    with database.transaction() as tx:
        return bool(tx.scalar("SELECT published_at IS NOT NULL FROM outbox WHERE destination = :path", {"path": path}))


def _eventually(check: Callable[[], bool], timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return False


def _now() -> datetime:
    return datetime.now(UTC)


def test_an_idle_connection_is_kept_as_long_as_a_real_front_end_keeps_it(stack: LocalStack) -> None:
    """An app pausing between calls (the demo pauses 2 s) reuses its connection: gunicorn's default keep-alive of 2 s
    closed it under the next request (RemoteDisconnected); Google's front end keeps idle connections for minutes."""
    connection = http.client.HTTPConnection("127.0.0.1", stack.ports.functions, timeout=10)
    try:
        connection.request("GET", "/openapi.json")
        first = connection.getresponse()
        first.read()
        socket_before = connection.sock
        time.sleep(3)  # the scenario itself: longer than the old keep-alive, far shorter than the new one
        connection.request("GET", "/openapi.json")
        second = connection.getresponse()
        second.read()
        assert (first.status, second.status) == (200, 200)
        assert connection.sock is socket_before, "the same connection served both requests"
    finally:
        connection.close()
