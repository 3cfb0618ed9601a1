"""PostgreSQL: a small per-process pool of pg8000 connections and the unit of work.

Locally pg8000 connects to a host; in production the Cloud SQL connector (imported only there) hands back the
same pg8000 DB-API connection, so everything above this module has one code path.

The pool is what keeps a database outage a clean 503: a connection idle for a while is checked before it is handed
out (one empty query), one older than its maximum age is replaced, and an instance never holds more than `max_open`
connections at once (a request beyond them waits a bounded time for one). PostgreSQL refusing or losing a connection
("too many clients", starting up, shutting down, a failover, nothing listening) is `Unavailable`, with a Retry-After.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from typing import Any

import pg8000.dbapi

from shared.config import Settings
from shared.errors import Unavailable
from shared.logging import event

log = logging.getLogger("halo.database")

# Named parameters (`:tier_id`) keep SQL readable; pg8000 reads this module-level switch on every execute.
pg8000.dbapi.paramstyle = "named"

Row = dict[str, Any]
Connect = Callable[[], pg8000.dbapi.Connection]

_BROKEN = (pg8000.dbapi.InterfaceError, OSError)
# SQLSTATEs that say the server cannot serve this connection now, not that the request is wrong: connection
# exceptions (08), too many connections (for the server, a role or a database), out of memory or disk (53), the server
# shutting down, crashed or starting up (57P01-57P03), and a read-only server (25006: a failover not yet finished).
_UNAVAILABLE_CLASSES = ("08", "53")
_UNAVAILABLE_STATES = frozenset({"57P01", "57P02", "57P03", "25006"})
# How long a client should wait before retrying: a refused connection or a busy pool clears within seconds.
RETRY_AFTER_S = 2


def _sqlstate(exc: BaseException) -> str:
    detail = exc.args[0] if exc.args else None
    return str(detail.get("C", "")) if isinstance(detail, dict) else ""


def unavailable_state(exc: BaseException) -> bool:
    """A DatabaseError that is PostgreSQL being unavailable (retry later), not a statement that failed."""
    state = _sqlstate(exc)
    return isinstance(exc, pg8000.dbapi.DatabaseError) and (
        state.startswith(_UNAVAILABLE_CLASSES) or state in _UNAVAILABLE_STATES
    )


def _lost_connection(exc: BaseException) -> Unavailable:
    return Unavailable("the database connection was lost; retry the request", retry_after_s=RETRY_AFTER_S)


class Tx:
    """One open transaction. SQL is passed as written; parameters are always bound, never interpolated.

    A statement with parameters is prepared once per connection (`_prepared`): each later run is one round trip,
    where pg8000's DB-API parses it anew every time (three). BEGIN goes before the first statement and COMMIT is one
    simple query, so a change of n statements costs n + 2 round trips instead of 3n + 4."""

    def __init__(self, conn: pg8000.dbapi.Connection) -> None:
        self._conn = conn

    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> int:
        return int(self._run(sql, params).row_count)

    def all(self, sql: str, params: Mapping[str, Any] | None = None) -> list[Row]:
        return _rows(self._run(sql, params))

    def one(self, sql: str, params: Mapping[str, Any] | None = None) -> Row | None:
        rows = self.all(sql, params)
        return rows[0] if rows else None

    def scalar(self, sql: str, params: Mapping[str, Any] | None = None) -> Any:
        row = self.one(sql, params)
        return None if row is None else next(iter(row.values()))

    def executemany(self, sql: str, rows: Sequence[Mapping[str, Any]]) -> None:
        try:
            self._conn.cursor().executemany(sql, rows)
        except pg8000.dbapi.DatabaseError as exc:
            if unavailable_state(exc):
                raise _lost_connection(exc) from exc
            raise

    def _run(self, sql: str, params: Mapping[str, Any] | None) -> Any:
        """The statement's pg8000 Context, in this transaction (`_send`)."""
        conn = self._conn
        try:
            if not conn._in_transaction and not conn.autocommit:  # as pg8000's own cursor begins one
                conn.execute_simple("begin transaction")
            return _send(conn, sql, params)
        except pg8000.dbapi.DatabaseError as exc:
            if unavailable_state(exc):
                raise _lost_connection(exc) from exc
            raise


class Transaction(Tx):
    """A transaction on a pooled connection that the caller ends: `commit()`, or `close()` without it to roll
    back. The connection goes back to the pool, or is dropped when it was lost."""

    def __init__(self, database: Database, conn: pg8000.dbapi.Connection) -> None:
        super().__init__(conn)
        self._database = database
        self._conn: pg8000.dbapi.Connection | None = conn

    def commit(self) -> None:
        conn = self._take()
        try:
            conn.execute_simple("commit")  # pg8000's commit() parses it as a statement: three round trips, not one
        except _BROKEN as exc:
            self._database._lost(conn)
            raise _lost_connection(exc) from exc
        except BaseException as exc:  # refused at commit (a deferred constraint): rolled back
            self._conn = conn
            self.close(exc)
            raise
        self._database._checkin(conn)

    def close(self, error: BaseException | None = None) -> None:
        """Roll back unless committed. A connection found lost makes `error` (or, with none, this call) the
        retryable Unavailable it is; any other error stays the one to report."""
        if self._conn is None:
            return
        conn = self._take()
        if isinstance(error, _BROKEN):
            self._database._lost(conn)
            raise _lost_connection(error) from error
        if isinstance(error, Unavailable) and error.__cause__ is not None and unavailable_state(error.__cause__):
            # The server said it cannot serve this connection (read-only after a failover, shutting down): the
            # block's Unavailable is what to report, and the connection is not handed out again.
            self._database._lost(conn)
            return
        try:
            if conn._in_transaction:  # pg8000's rollback() parses it as a statement: three round trips, not one
                conn.execute_simple("rollback")
        except _BROKEN as exc:
            # The block's own error is the one to report, even when the rollback finds the connection dead.
            self._database._lost(conn)
            if error is None:
                raise _lost_connection(exc) from exc
        else:
            self._database._checkin(conn)

    def _take(self) -> pg8000.dbapi.Connection:
        conn, self._conn = self._conn, None
        if conn is None:
            raise RuntimeError("this transaction has already ended")
        return conn


class Database:
    """Connections are reused across requests of one instance; a broken one is dropped, never handed out again.

    `max_idle` connections are kept open between requests. `max_open` caps the connections held at once (idle and
    in use): a request that finds them all busy waits up to `wait_s` for one, then is told to retry (503), so one
    instance's share of PostgreSQL's `max_connections` is `max_open` whatever its request concurrency. A connection
    idle for `ping_after_s` or more is checked with an empty query (one round trip) before it is handed out, and one
    older than `max_age_s` is closed instead of reused (the Cloud SQL connector's credentials and the server's memory
    are renewed, and connections spread over a failed-over server)."""

    def __init__(
        self,
        connect: Connect,
        *,
        max_idle: int = 4,
        max_open: int | None = None,
        wait_s: float = 5.0,
        ping_after_s: float = 10.0,
        max_age_s: float = 1800.0,
    ) -> None:
        self._connect = connect
        self._max_idle = max_idle
        self._max_open = max_open
        self._wait_s = wait_s
        self._ping_after_s = ping_after_s
        self._max_age_s = max_age_s
        # (connection, when it was put back), the most recently used last.
        self._idle: list[tuple[pg8000.dbapi.Connection, float]] = []
        self._open = 0
        self._lock = threading.Condition()
        # Connections each thread holds now: a thread that already holds one is not made to wait for another.
        self._held = threading.local()

    def begin(self) -> Transaction:
        """A transaction the caller commits or closes (the unit of work's)."""
        return Transaction(self, self._checkout())

    @contextmanager
    def transaction(self) -> Iterator[Tx]:
        """Commits if the block finishes, rolls back on any exception."""
        tx = self.begin()
        try:
            yield tx
        except BaseException as exc:
            tx.close(exc)
            raise
        tx.commit()

    def read_one(self, sql: str, params: Mapping[str, Any] | None = None) -> Row | None:
        """One statement in autocommit (a read, or a write that is atomic on its own), for hot paths: no
        BEGIN/COMMIT, and prepared once per connection so each later call is one round trip (bind + execute)."""
        rows = self.run_alone(sql, params)
        return rows[0] if rows else None

    def run_alone(self, sql: str, params: Mapping[str, Any] | None = None) -> list[Row]:
        """`read_one`, every row."""
        with self._autocommitted() as conn:
            return _run_prepared(conn, sql, params)

    def execute_alone(self, sql: str, params: Mapping[str, Any] | None = None) -> int:
        """One statement in autocommit that returns no rows; the number of rows it changed."""
        with self._autocommitted() as conn:
            return int(_send(conn, sql, params).row_count)

    @contextmanager
    def _autocommitted(self) -> Iterator[Any]:
        """A pooled connection in autocommit for one statement: back to the pool after it, dropped (with the idle
        ones, when the server is going away) after a lost connection, discarded after any other failure."""
        conn = self._checkout()
        try:
            conn.autocommit = True
            yield conn
            conn.autocommit = False
        except _BROKEN as exc:
            self._lost(conn)
            raise _lost_connection(exc) from exc
        except pg8000.dbapi.DatabaseError as exc:
            if unavailable_state(exc):
                self._lost(conn)
                raise _lost_connection(exc) from exc
            self._discard(conn)
            raise
        except BaseException:
            self._discard(conn)
            raise
        self._checkin(conn)

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
            self._open -= len(idle)
            self._lock.notify_all()
        for conn, _ in idle:
            self._close_quietly(conn)

    def warm(self) -> None:
        """Open one connection ahead of the first request (a cold instance's warm-up, on a thread of its own); a
        failure is left for the first request to meet and answer."""
        try:
            conn = self._checkout()
        except Exception:
            return
        self._checkin(conn)

    @property
    def open_connections(self) -> int:
        """Connections this pool holds now, idle or in use."""
        with self._lock:
            return self._open

    def _checkout(self) -> pg8000.dbapi.Connection:
        deadline = time.monotonic() + self._wait_s
        nested = getattr(self._held, "count", 0) > 0
        while True:
            reused: tuple[pg8000.dbapi.Connection, float] | None = None
            with self._lock:
                if self._idle:
                    reused = self._idle.pop()
                elif self._max_open is None or self._open < self._max_open or nested:
                    if nested and self._max_open is not None and self._open >= self._max_open:
                        # Waiting here could wait on itself; over the cap instead, and said, for it is a bug.
                        event(log, "database connection nested", logging.WARNING, max_open=self._max_open)
                    self._open += 1
                else:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        event(log, "database pool exhausted", logging.WARNING, max_open=self._max_open)
                        raise Unavailable(
                            "every database connection of this instance is busy; retry the request",
                            retry_after_s=RETRY_AFTER_S,
                        )
                    self._lock.wait(remaining)
                    continue
            conn = self._fit(*reused) if reused is not None else self._new_connection()
            if conn is not None:
                self._held.count = getattr(self._held, "count", 0) + 1
                return conn

    def _fit(self, conn: pg8000.dbapi.Connection, idle_since: float) -> pg8000.dbapi.Connection | None:
        """The idle connection, if it is young enough and (after a while idle) still answers; else it is dropped
        and None says to look again."""
        now = time.monotonic()
        if now - _born(conn) >= self._max_age_s:
            self._drop(conn)
            return None
        if now - idle_since >= self._ping_after_s:
            try:
                conn.execute_simple("")
            except (*_BROKEN, pg8000.dbapi.DatabaseError):
                # The server ended it while it sat idle (a restart, a failover): the others went with it.
                self._drop(conn)
                self._drop_idle()
                return None
        return conn

    def _new_connection(self) -> pg8000.dbapi.Connection:
        """A connection for a slot already counted in `_open` (given back if none can be made)."""
        try:
            conn = self._connect()
        except BaseException as exc:
            with self._lock:
                self._open -= 1
                self._lock.notify()
            if isinstance(exc, _BROKEN):
                raise Unavailable(
                    "the database is unreachable; retry the request", retry_after_s=RETRY_AFTER_S
                ) from exc
            if unavailable_state(exc):
                event(log, "database refused a connection", logging.WARNING, sqlstate=_sqlstate(exc))
                raise Unavailable(
                    "the database refused a connection; retry the request", retry_after_s=RETRY_AFTER_S
                ) from exc
            raise
        conn.__dict__["_halo_born"] = time.monotonic()
        return conn

    def _checkin(self, conn: pg8000.dbapi.Connection) -> None:
        self._release()
        now = time.monotonic()
        with self._lock:
            over_cap = self._max_open is not None and self._open > self._max_open  # a nested one, given back
            if len(self._idle) < self._max_idle and now - _born(conn) < self._max_age_s and not over_cap:
                self._idle.append((conn, now))
                self._lock.notify()
                return
        self._drop(conn)

    def _discard(self, conn: pg8000.dbapi.Connection) -> None:
        self._release()
        self._drop(conn)

    def _lost(self, conn: pg8000.dbapi.Connection) -> None:
        """A connection lost to the server (a restart, a failover, an operator ending backends) rarely goes alone:
        the idle ones are dropped with it, so the client's retry reconnects instead of drawing the next dead one."""
        self._release()
        self._drop(conn)
        self._drop_idle()

    def _release(self) -> None:
        self._held.count = max(0, getattr(self._held, "count", 0) - 1)

    def _drop(self, conn: pg8000.dbapi.Connection) -> None:
        with self._lock:
            self._open -= 1
            self._lock.notify()
        self._close_quietly(conn)

    def _drop_idle(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
            self._open -= len(idle)
            self._lock.notify_all()
        for dead, _ in idle:
            self._close_quietly(dead)

    @staticmethod
    def _close_quietly(conn: pg8000.dbapi.Connection) -> None:
        try:
            conn.close()
        except (*_BROKEN, pg8000.dbapi.DatabaseError):
            pass


def _born(conn: pg8000.dbapi.Connection) -> float:
    return float(conn.__dict__.get("_halo_born", 0.0))


def connector_for(settings: Settings) -> Connect:
    if settings.cloud_sql_instance:
        return _cloud_sql_connector(settings)

    def connect() -> pg8000.dbapi.Connection:
        return _without_nagle(
            pg8000.dbapi.connect(
                host=settings.db_host,
                port=settings.db_port,
                database=settings.db_name,
                user=settings.db_user,
                password=settings.db_password,
                timeout=10,
                application_name="halo-functions",
            )
        )

    return connect


def _without_nagle(conn: pg8000.dbapi.Connection) -> pg8000.dbapi.Connection:
    """pg8000 leaves Nagle's algorithm on: a statement whose message spans several segments (a parameter of some
    kilobytes, e.g. a thousand offers) then waits for the server's delayed ACK, ~40 ms, before its last segment."""
    sock = getattr(conn, "_usock", None)
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return conn


def _cloud_sql_connector(settings: Settings) -> Connect:
    """IAM database auth over the Cloud SQL connector; imported only in production (it costs ~300 ms)."""
    connector: Any = None
    lock = threading.Lock()

    def connect() -> pg8000.dbapi.Connection:
        nonlocal connector
        with lock:
            if connector is None:
                from google.cloud.sql.connector import Connector, IPTypes

                connector = Connector(ip_type=IPTypes.PRIVATE, enable_iam_auth=True, refresh_strategy="lazy")
        conn: pg8000.dbapi.Connection = connector.connect(
            settings.cloud_sql_instance, "pg8000", user=settings.db_user, db=settings.db_name
        )
        return _without_nagle(conn)

    return connect


def _run_prepared(conn: pg8000.dbapi.Connection, sql: str, params: Mapping[str, Any] | None) -> list[Row]:
    """One statement on a connection in autocommit, prepared (`_prepared`): one round trip."""
    return _rows(_prepared(conn, sql).run(conn, params or {}))


def _send(conn: pg8000.dbapi.Connection, sql: str, params: Mapping[str, Any] | None) -> Any:
    """The statement's pg8000 Context (rows, columns, row_count): prepared when it has parameters; without, a simple
    query, which may hold several statements (a migration's file)."""
    if params:
        return _prepared(conn, sql).run(conn, params)
    return conn.execute_simple(sql)


def _rows(context: Any) -> list[Row]:
    if not context.rows or not context.columns:
        return []
    names = [column["name"] for column in context.columns]
    return [dict(zip(names, row, strict=True)) for row in context.rows]


# Statements each connection keeps prepared, the least recently used closed beyond it: a function runs a few dozen,
# and an admin's filters make texts of their own, so the server's memory per connection stays bounded.
PREPARED_MAX = 128
# PostgreSQL refuses to run a prepared statement whose result columns a migration changed (`SELECT *` of an altered
# table): SQLSTATE 0A000, "cached plan must not change result type". That statement is forgotten, so only the
# request that met it fails.
_STALE_PLAN = "0A000"


class _Statement:
    """A statement parsed once on its connection: each run is one round trip (bind, execute, sync), where pg8000's
    DB-API parses every statement anew (three). Parameters are named as everywhere (`:id`); the server infers their
    types, as it does for the DB-API's unnamed statements."""

    def __init__(self, conn: pg8000.dbapi.Connection, sql: str) -> None:
        from pg8000.native import to_statement

        self.sql = sql
        self.text, self._values = to_statement(sql)
        self.name, self._columns, self._input_funcs = conn.prepare_statement(self.text, ())

    def run(self, conn: pg8000.dbapi.Connection, params: Mapping[str, Any]) -> Any:
        from pg8000.converters import make_params

        values = make_params(conn.py_types, self._values(params))
        try:
            return conn.execute_named(self.name, values, self._columns, self._input_funcs, self.text)
        except pg8000.dbapi.DatabaseError as exc:
            if _sqlstate(exc) == _STALE_PLAN:
                with suppress(pg8000.dbapi.DatabaseError):  # the error to report is the statement's
                    _forget(conn, self)
            raise


def _prepared(conn: pg8000.dbapi.Connection, sql: str) -> _Statement:
    cache: OrderedDict[str, _Statement] | None = conn.__dict__.get("_halo_prepared")
    if cache is None:
        cache = conn.__dict__["_halo_prepared"] = OrderedDict()
    statement = cache.get(sql)
    if statement is not None:
        cache.move_to_end(sql)
        return statement
    statement = cache[sql] = _Statement(conn, sql)
    if len(cache) > PREPARED_MAX:
        _forget(conn, next(iter(cache.values())))
    return statement


def _forget(conn: pg8000.dbapi.Connection, statement: _Statement) -> None:
    """Closed on the server too (a protocol message, allowed in a failed transaction)."""
    conn.__dict__["_halo_prepared"].pop(statement.sql, None)
    conn.close_prepared_statement(statement.name)
