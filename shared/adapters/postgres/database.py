"""PostgreSQL: a small per-process pool of pg8000 connections and the unit of work.

Locally pg8000 connects to a host; in production the Cloud SQL connector (imported only there) hands back the
same pg8000 DB-API connection, so everything above this module has one code path.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import pg8000.dbapi

from shared.config import Settings
from shared.errors import Unavailable

# Named parameters (`:tier_id`) keep SQL readable; pg8000 reads this module-level switch on every execute.
pg8000.dbapi.paramstyle = "named"

Row = dict[str, Any]
Connect = Callable[[], pg8000.dbapi.Connection]

_BROKEN = (pg8000.dbapi.InterfaceError, OSError)


class Tx:
    """One open transaction. SQL is passed as written; parameters are always bound, never interpolated."""

    def __init__(self, conn: pg8000.dbapi.Connection) -> None:
        self._cursor = conn.cursor()

    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> int:
        self._run(sql, params)
        return int(self._cursor.rowcount)

    def all(self, sql: str, params: Mapping[str, Any] | None = None) -> list[Row]:
        self._run(sql, params)
        if self._cursor.description is None:
            return []
        names = [column[0] for column in self._cursor.description]
        return [dict(zip(names, values, strict=True)) for values in self._cursor.fetchall()]

    def one(self, sql: str, params: Mapping[str, Any] | None = None) -> Row | None:
        rows = self.all(sql, params)
        return rows[0] if rows else None

    def scalar(self, sql: str, params: Mapping[str, Any] | None = None) -> Any:
        row = self.one(sql, params)
        return None if row is None else next(iter(row.values()))

    def executemany(self, sql: str, rows: Sequence[Mapping[str, Any]]) -> None:
        self._cursor.executemany(sql, rows)

    def _run(self, sql: str, params: Mapping[str, Any] | None) -> None:
        if params:
            self._cursor.execute(sql, dict(params))
        else:
            self._cursor.execute(sql)


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
            conn.commit()
        except _BROKEN as exc:
            self._database._lost(conn)
            raise Unavailable("the database connection was lost; retry the request") from exc
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
            raise Unavailable("the database connection was lost; retry the request") from error
        try:
            conn.rollback()
        except _BROKEN as exc:
            # The block's own error is the one to report, even when the rollback finds the connection dead.
            self._database._lost(conn)
            if error is None:
                raise Unavailable("the database connection was lost; retry the request") from exc
        else:
            self._database._checkin(conn)

    def _take(self) -> pg8000.dbapi.Connection:
        conn, self._conn = self._conn, None
        if conn is None:
            raise RuntimeError("this transaction has already ended")
        return conn


class Database:
    """Connections are reused across requests of one instance; a broken one is dropped, never handed out again."""

    def __init__(self, connect: Connect, *, max_idle: int = 4) -> None:
        self._connect = connect
        self._max_idle = max_idle
        self._idle: list[pg8000.dbapi.Connection] = []
        self._lock = threading.Lock()

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
        conn = self._checkout()
        try:
            conn.autocommit = True
            rows = _run_prepared(conn, sql, params)
            conn.autocommit = False
        except _BROKEN as exc:
            self._lost(conn)
            raise Unavailable("the database connection was lost; retry the request") from exc
        except BaseException:
            self._discard(conn)
            raise
        self._checkin(conn)
        return rows

    def execute_alone(self, sql: str, params: Mapping[str, Any] | None = None) -> int:
        """One statement in autocommit that returns no rows; the number of rows it changed."""
        conn = self._checkout()
        try:
            conn.autocommit = True
            cursor = conn.cursor()
            cursor.execute(sql, dict(params) if params else None)
            changed = int(cursor.rowcount)
            conn.autocommit = False
        except _BROKEN as exc:
            self._lost(conn)
            raise Unavailable("the database connection was lost; retry the request") from exc
        except BaseException:
            self._discard(conn)
            raise
        self._checkin(conn)
        return changed

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            self._close_quietly(conn)

    def _checkout(self) -> pg8000.dbapi.Connection:
        with self._lock:
            if self._idle:
                return self._idle.pop()
        try:
            return self._connect()
        except _BROKEN as exc:
            raise Unavailable("the database is unreachable; retry the request") from exc

    def _checkin(self, conn: pg8000.dbapi.Connection) -> None:
        with self._lock:
            if len(self._idle) < self._max_idle:
                self._idle.append(conn)
                return
        self._close_quietly(conn)

    def _discard(self, conn: pg8000.dbapi.Connection) -> None:
        self._close_quietly(conn)

    def _lost(self, conn: pg8000.dbapi.Connection) -> None:
        """A connection lost to the server (a restart, a failover, an operator ending backends) rarely goes alone:
        the idle ones are dropped with it, so the client's retry reconnects instead of drawing the next dead one."""
        with self._lock:
            idle, self._idle = self._idle, []
        for dead in (conn, *idle):
            self._close_quietly(dead)

    @staticmethod
    def _close_quietly(conn: pg8000.dbapi.Connection) -> None:
        try:
            conn.close()
        except (*_BROKEN, pg8000.dbapi.DatabaseError):
            pass


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
    """pg8000's DB-API parses every statement anew (three round trips); a prepared one costs one. Each connection
    keeps its own statements, so the hot SQL is parsed once per connection for the instance's lifetime."""
    from pg8000.native import PreparedStatement

    cache: dict[str, PreparedStatement] = conn.__dict__.setdefault("_halo_prepared", {})
    statement = cache.get(sql)
    if statement is None:
        statement = cache[sql] = PreparedStatement(conn, sql)
    rows = statement.run(**(params or {}))
    if not rows:
        return []
    names = [column["name"] for column in statement.columns or []]
    return [dict(zip(names, row, strict=True)) for row in rows]
