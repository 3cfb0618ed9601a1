"""PostgreSQL refusing or dropping connections, and the pool that keeps it a clean 503: against the real server.

"Too many clients" comes from a role with a connection limit (PostgreSQL's own check, SQLSTATE 53300, the same
refusal a full `max_connections` gives); a stale connection from a backend ended while it sat idle (a restart or a
failover does that to every connection); the cap from many threads asking at once.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import functions_framework
import pg8000.dbapi
import pytest

from emulators.simulator import AuthEmulator
from emulators.stack import LocalStack
from shared import bootstrap
from shared.adapters.postgres.database import RETRY_AFTER_S, Database
from shared.config import get_settings
from shared.errors import Unavailable

ROOT = Path(__file__).resolve().parents[2]


def _name(db: Database) -> str:
    with db.transaction() as tx:
        return str(tx.scalar("SELECT current_database()"))


def _admin(stack: LocalStack, sql: str) -> list[list[object]]:
    conn = stack.postgres.connect("postgres")
    conn.autocommit = True
    try:
        cursor = conn.cursor()
        cursor.execute(sql)
        return list(cursor.fetchall()) if cursor.description else []
    finally:
        conn.close()


def _connector(
    stack: LocalStack, database: str, *, user: str = "postgres", app: str = "halo-test"
) -> Callable[[], pg8000.dbapi.Connection]:
    def connect() -> pg8000.dbapi.Connection:
        return pg8000.dbapi.connect(
            host="127.0.0.1", port=stack.postgres.port, user=user, database=database, timeout=5, application_name=app
        )

    return connect


@pytest.fixture
def limited_role(stack: LocalStack, db: Database) -> Iterator[str]:
    """A role PostgreSQL lets hold one connection at a time."""
    role = f"limited_{uuid.uuid4().hex[:10]}"
    _admin(stack, f"CREATE ROLE {role} LOGIN CONNECTION LIMIT 1")
    _admin(stack, f"GRANT ALL ON ALL TABLES IN SCHEMA public TO {role}")
    yield role
    _admin(stack, f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{role}'")
    _admin(stack, f"REASSIGN OWNED BY {role} TO postgres")
    _admin(stack, f"DROP OWNED BY {role}")
    _admin(stack, f"DROP ROLE {role}")


def _backends(stack: LocalStack, app: str) -> int:
    return int(_admin(stack, f"SELECT count(*) FROM pg_stat_activity WHERE application_name = '{app}'")[0][0])  # type: ignore[call-overload]


def test_too_many_clients_is_unavailable_with_a_retry_after_and_passes_once_a_slot_frees(
    stack: LocalStack, db: Database, limited_role: str
) -> None:
    name = _name(db)
    other = Database(_connector(stack, name, user=limited_role))
    pool = Database(_connector(stack, name, user=limited_role))
    held = other.begin()
    try:
        with pytest.raises(Unavailable) as refused, pool.transaction():
            pass
    finally:
        held.close()
        other.close()

    assert refused.value.retry_after_s == RETRY_AFTER_S
    assert "refused a connection" in refused.value.message
    assert pool.open_connections == 0, "the refused slot is given back"
    with pool.transaction() as tx:
        assert tx.scalar("SELECT current_user") == limited_role
    pool.close()


def test_a_function_whose_database_refuses_connections_answers_503_with_retry_after(
    stack: LocalStack, db: Database, limited_role: str, auth: AuthEmulator
) -> None:
    """Through functions-framework and the function's own pool, as an instance answers an app."""
    name = _name(db)
    hog = Database(_connector(stack, name, user=limited_role))
    held = hog.begin()
    saved = dict(os.environ)
    os.environ.update({"HALO_DB_USER": limited_role, "HALO_DB_NAME": name, "HALO_DB_POOL_WAIT_S": "0.5"})
    _rebuild_ports()
    try:
        app = functions_framework.create_app("client_profile", str(ROOT / "main.py"), "http")
        session = auth.sign_in_with_google(f"{uuid.uuid4().hex[:10]}@example.com", "Sari")
        reply = app.test_client().get("/", headers={"Authorization": f"Bearer {session.id_token}"})
    finally:
        held.close()
        hog.close()
        os.environ.clear()
        os.environ.update(saved)
        _rebuild_ports()

    assert reply.status_code == 503
    assert reply.headers["Retry-After"] == str(RETRY_AFTER_S)
    assert reply.get_json()["error"]["code"] == "unavailable"


def _rebuild_ports() -> None:
    """The process's adapters built again from the environment, as a fresh instance would."""
    if bootstrap.database.cache_info().currsize:
        bootstrap.database().close()
    for cached in (get_settings, bootstrap.database, bootstrap.ports, bootstrap.identities):
        cached.cache_clear()


def test_an_idle_connection_the_server_ended_is_replaced_before_it_is_handed_out(
    stack: LocalStack, db: Database
) -> None:
    name = _name(db)
    pool = Database(_connector(stack, name), ping_after_s=0.05)
    with pool.transaction() as tx:
        ended = tx.scalar("SELECT pg_backend_pid()")
    _admin(stack, f"SELECT pg_terminate_backend({ended})")
    time.sleep(0.1)

    with pool.transaction() as tx:  # no 503: the ping found it dead and a new one was opened
        replaced = tx.scalar("SELECT pg_backend_pid()")

    assert replaced != ended
    assert pool.open_connections == 1
    pool.close()


def test_a_connection_older_than_its_maximum_age_is_closed_and_replaced(stack: LocalStack, db: Database) -> None:
    name = _name(db)
    app = f"halo-age-{uuid.uuid4().hex[:8]}"
    pool = Database(_connector(stack, name, app=app), max_age_s=0.3)
    with pool.transaction() as tx:
        first = tx.scalar("SELECT pg_backend_pid()")
    with pool.transaction() as tx:
        assert tx.scalar("SELECT pg_backend_pid()") == first, "young enough: reused"
    time.sleep(0.4)

    with pool.transaction() as tx:
        second = tx.scalar("SELECT pg_backend_pid()")

    assert second != first
    assert _admin(stack, f"SELECT count(*) FROM pg_stat_activity WHERE pid = {first}") == [[0]], "closed, not leaked"
    assert _backends(stack, app) == 1
    pool.close()


def test_the_cap_holds_under_a_burst_and_every_request_is_served_in_turn(stack: LocalStack, db: Database) -> None:
    name = _name(db)
    app = f"halo-cap-{uuid.uuid4().hex[:8]}"
    pool = Database(_connector(stack, name, app=app), max_idle=3, max_open=3, wait_s=20)
    seen: list[int] = []
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            seen.append(_backends(stack, app))
            time.sleep(0.01)

    def request(_: int) -> int:
        with pool.transaction() as tx:
            return int(tx.scalar("SELECT pg_backend_pid() FROM pg_sleep(0.03)"))

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        with ThreadPoolExecutor(24) as burst:
            pids = list(burst.map(request, range(48)))
    finally:
        stop.set()
        watcher.join()

    assert len(pids) == 48
    assert len(set(pids)) <= 3
    assert max(seen) <= 3, f"PostgreSQL saw {max(seen)} connections of a pool capped at 3"
    assert pool.open_connections <= 3
    pool.close()


def test_a_request_that_waits_past_the_bound_is_unavailable_with_a_retry_after(stack: LocalStack, db: Database) -> None:
    pool = Database(_connector(stack, _name(db)), max_open=1, wait_s=0.3)
    held = pool.begin()
    waited: list[float] = []

    def second_request() -> None:
        started = time.monotonic()
        try:
            with pool.transaction():
                pass
        finally:
            waited.append(time.monotonic() - started)

    try:
        with ThreadPoolExecutor(1) as other_thread, pytest.raises(Unavailable) as refused:
            other_thread.submit(second_request).result()
    finally:
        held.close()

    assert refused.value.retry_after_s == RETRY_AFTER_S
    assert 0.25 <= waited[0] < 2
    with pool.transaction() as tx:  # the slot is free again
        assert tx.scalar("SELECT 1") == 1
    pool.close()


def test_a_thread_that_holds_a_connection_is_not_made_to_wait_on_itself(
    stack: LocalStack, db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    """A use case that opened a second unit of work inside its first would wait for its own connection forever
    under the cap: it gets one over the cap instead, and the log says so (it is a bug to fix)."""
    pool = Database(_connector(stack, _name(db)), max_open=1, wait_s=5)
    started = time.monotonic()
    with (
        caplog.at_level(logging.WARNING, logger="halo.database"),
        pool.transaction() as outer,
        pool.transaction() as inner,
    ):
        assert inner.scalar("SELECT pg_backend_pid()") != outer.scalar("SELECT pg_backend_pid()")

    assert time.monotonic() - started < 2
    assert [r.getMessage() for r in caplog.records] == ["database connection nested"]
    assert pool.open_connections == 1
    pool.close()


def test_a_server_gone_read_only_is_unavailable_and_its_connection_is_not_reused(
    stack: LocalStack, db: Database
) -> None:
    """What a failover looks like to a connection left on the old primary (SQLSTATE 25006 on a write): a 503 to
    retry, and the connection dropped so the retry reaches the server that took over."""
    connect = _connector(stack, _name(db))
    made: list[pg8000.dbapi.Connection] = []

    def first_one_read_only() -> pg8000.dbapi.Connection:
        conn = connect()
        if not made:
            conn.cursor().execute("SET default_transaction_read_only = on")
            conn.commit()
        made.append(conn)
        return conn

    pool = Database(first_one_read_only, max_open=1)
    with pytest.raises(Unavailable) as refused, pool.transaction() as tx:
        tx.execute("INSERT INTO audit_log (actor_uid, actor_role, action) VALUES ('t', 'admin', 'read_only')")

    with pool.transaction() as tx:
        tx.execute("INSERT INTO audit_log (actor_uid, actor_role, action) VALUES ('t', 'admin', 'read_only')")

    assert refused.value.retry_after_s == RETRY_AFTER_S
    assert len(made) == 2, "the read-only connection was dropped, not handed out again"
    pool.close()
