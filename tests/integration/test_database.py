"""The unit of work and the connection pool against a real PostgreSQL."""

from __future__ import annotations

from typing import Any

import pg8000.dbapi
import pytest

from emulators.stack import LocalStack
from shared.adapters.postgres import database
from shared.adapters.postgres.database import Database, Tx
from shared.errors import Unavailable


class _Boom(Exception):
    pass


def _audit_rows(db: Database, action: str) -> int:
    with db.transaction() as tx:
        return int(tx.scalar("SELECT count(*) FROM audit_log WHERE action = :action", {"action": action}))


def _record(tx: Tx, action: str) -> None:
    tx.execute(
        "INSERT INTO audit_log (actor_uid, actor_role, action) VALUES ('tester', 'admin', :action)", {"action": action}
    )


def _terminate(stack: LocalStack, database: str, pid: int) -> None:
    """Kill one backend server-side, from a connection of its own, the way a failover or an admin would."""
    other = stack.postgres.connect(database)
    try:
        cursor = other.cursor()
        cursor.execute("SELECT pg_terminate_backend(:pid)", {"pid": pid})
        assert cursor.fetchone() == [True]
        other.commit()
    finally:
        other.close()


def test_a_finished_block_commits(db: Database) -> None:
    with db.transaction() as tx:
        _record(tx, "committed")

    assert _audit_rows(db, "committed") == 1


def test_an_exception_rolls_everything_back_and_propagates(db: Database) -> None:
    with pytest.raises(_Boom), db.transaction() as tx:
        _record(tx, "rolled_back")
        assert tx.scalar("SELECT count(*) FROM audit_log WHERE action = 'rolled_back'") == 1
        raise _Boom

    assert _audit_rows(db, "rolled_back") == 0


def test_a_failed_statement_rolls_back_and_the_connection_stays_usable(db: Database) -> None:
    with db.transaction() as tx:
        pid = tx.scalar("SELECT pg_backend_pid()")

    with pytest.raises(Exception, match="pricing_tiers_pkey"), db.transaction() as tx:
        _record(tx, "before_the_duplicate")
        tx.execute("INSERT INTO pricing_tiers (id, duration_s, price) VALUES ('sesi-30', 60, 1)")

    with db.transaction() as tx:
        assert tx.scalar("SELECT pg_backend_pid()") == pid
    assert _audit_rows(db, "before_the_duplicate") == 0


def test_tx_helpers_return_rows_as_dicts(db: Database) -> None:
    with db.transaction() as tx:
        rows = tx.all("SELECT id, price FROM pricing_tiers WHERE id = ANY(:ids) ORDER BY id", {"ids": ["sesi-30"]})
        missing = tx.one("SELECT id FROM pricing_tiers WHERE id = :id", {"id": "nope"})
        updated = tx.execute("UPDATE pricing_tiers SET sort_order = sort_order WHERE active")
        nothing = tx.scalar("SELECT id FROM pricing_tiers WHERE id = :id", {"id": "nope"})

    assert rows == [{"id": "sesi-30", "price": 35000}]
    assert missing is None
    assert updated == 3
    assert nothing is None


def test_the_pool_reuses_one_connection_for_sequential_transactions(db: Database) -> None:
    with db.transaction() as tx:
        first = tx.scalar("SELECT pg_backend_pid()")
    with db.transaction() as tx:
        second = tx.scalar("SELECT pg_backend_pid()")

    assert first == second


def test_overlapping_transactions_get_different_connections(db: Database) -> None:
    with db.transaction() as outer, db.transaction() as inner:
        assert outer.scalar("SELECT pg_backend_pid()") != inner.scalar("SELECT pg_backend_pid()")


def test_a_connection_killed_mid_statement_is_unavailable_and_dropped(stack: LocalStack, db: Database) -> None:
    with db.transaction() as tx:
        name = tx.scalar("SELECT current_database()")

    with pytest.raises(Unavailable), db.transaction() as tx:
        _record(tx, "lost")
        killed = tx.scalar("SELECT pg_backend_pid()")
        _terminate(stack, name, killed)
        tx.scalar("SELECT 1")

    with db.transaction() as tx:
        assert tx.scalar("SELECT pg_backend_pid()") != killed
        _record(tx, "after_the_loss")
    assert _audit_rows(db, "lost") == 0
    assert _audit_rows(db, "after_the_loss") == 1


def test_a_connection_killed_before_commit_is_unavailable_and_dropped(stack: LocalStack, db: Database) -> None:
    with db.transaction() as tx:
        name = tx.scalar("SELECT current_database()")

    with pytest.raises(Unavailable), db.transaction() as tx:
        _record(tx, "lost_at_commit")
        killed = tx.scalar("SELECT pg_backend_pid()")
        _terminate(stack, name, killed)

    with db.transaction() as tx:
        assert tx.scalar("SELECT pg_backend_pid()") != killed
    assert _audit_rows(db, "lost_at_commit") == 0


def test_an_idle_pooled_connection_killed_between_requests_is_unavailable_once(stack: LocalStack, db: Database) -> None:
    with db.transaction() as tx:
        name = tx.scalar("SELECT current_database()")
        killed = tx.scalar("SELECT pg_backend_pid()")
    _terminate(stack, name, killed)

    with pytest.raises(Unavailable), db.transaction() as tx:
        tx.scalar("SELECT 1")

    with db.transaction() as tx:
        assert tx.scalar("SELECT 1") == 1


def test_an_unreachable_database_is_unavailable() -> None:
    def refuse() -> None:
        raise ConnectionRefusedError("nothing listens there")

    with pytest.raises(Unavailable), Database(refuse).transaction():  # type: ignore[arg-type]
        pass


def test_the_blocks_own_error_wins_when_the_rollback_finds_the_connection_dead(stack: LocalStack, db: Database) -> None:
    with db.transaction() as tx:
        name = tx.scalar("SELECT current_database()")

    with pytest.raises(_Boom), db.transaction() as tx:
        killed = tx.scalar("SELECT pg_backend_pid()")
        _terminate(stack, name, killed)
        raise _Boom

    with db.transaction() as tx:
        assert tx.scalar("SELECT pg_backend_pid()") != killed


def test_read_one_shares_the_pool_and_leaves_the_connection_transactional(db: Database) -> None:
    with db.transaction() as tx:
        pid = tx.scalar("SELECT pg_backend_pid()")

    assert db.read_one("SELECT price FROM pricing_tiers WHERE id = :id", {"id": "sesi-60"}) == {"price": 60000}
    assert db.read_one("SELECT pg_backend_pid() AS pid") == {"pid": pid}
    with pytest.raises(_Boom), db.transaction() as tx:
        assert tx.scalar("SELECT pg_backend_pid()") == pid
        _record(tx, "after_read_one")
        raise _Boom

    assert _audit_rows(db, "after_read_one") == 0


def test_connections_send_small_segments_at_once(stack: LocalStack) -> None:
    """Nagle off: a statement with a large parameter does not wait ~40 ms for the server's delayed ACK."""
    import socket
    import time

    from shared.adapters.postgres.database import connector_for
    from shared.config import Settings

    env = stack.env()
    settings = Settings(
        db_host="127.0.0.1", db_port=int(env["HALO_DB_PORT"]), db_name=env["HALO_DB_NAME"], db_user=env["HALO_DB_USER"]
    )
    conn = connector_for(settings)()
    try:
        assert conn._usock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
        cursor = conn.cursor()
        big = "x" * 60_000
        cursor.execute("SELECT length(:big)", {"big": big})  # warm
        started = time.perf_counter()
        for _ in range(5):
            cursor.execute("SELECT length(:big)", {"big": big})
            assert cursor.fetchone() == [60_000]
        assert (time.perf_counter() - started) / 5 < 0.03, "no delayed-ACK stall on a 60 kB parameter"
    finally:
        conn.close()


class _Flushes:
    """pg8000's buffered socket: each flush sends what was buffered, then the client waits for the answer (one round
    trip)."""

    def __init__(self) -> None:
        self.count = 0

    def wrap(self, conn: Any) -> Any:
        flushes = self

        class Counted:
            def __init__(self, sock: Any) -> None:
                self._sock = sock

            def flush(self) -> Any:
                flushes.count += 1
                return self._sock.flush()

            def __getattr__(self, name: str) -> Any:
                return getattr(self._sock, name)

        conn._sock = Counted(conn._sock)
        return conn


def test_once_prepared_a_change_of_n_statements_costs_n_plus_two_round_trips_and_one_alone_costs_one(
    stack: LocalStack, db: Database
) -> None:
    name = db.read_one("SELECT current_database() AS name")["name"]  # type: ignore[index]
    flushes = _Flushes()
    counted = Database(lambda: flushes.wrap(stack.postgres.connect(name)), max_idle=1)

    def change(action: str) -> int:
        with counted.transaction() as tx:
            _record(tx, action)
            seen = int(tx.scalar("SELECT count(*) FROM audit_log WHERE action = :action", {"action": action}))
            tx.one("SELECT actor_uid FROM audit_log WHERE action = :action", {"action": action})
        return seen

    def alone(price: int) -> int:
        return counted.execute_alone(
            "UPDATE pricing_tiers SET price = :price WHERE id = :id", {"price": price, "id": "sesi-30"}
        )

    try:
        assert change("first") == 1  # its connection prepares the three statements
        before = flushes.count
        assert change("second") == 1
        assert flushes.count - before == 3 + 2, "BEGIN, one round trip per statement, COMMIT"

        assert alone(36000) == 1  # prepared on that connection
        before = flushes.count
        assert alone(35000) == 1
        assert flushes.count - before == 1, "a statement alone: one round trip, no BEGIN or COMMIT"
    finally:
        counted.close()
    assert _audit_rows(db, "second") == 1
    assert db.read_one("SELECT price FROM pricing_tiers WHERE id = :id", {"id": "sesi-30"}) == {"price": 35000}


def test_a_statement_whose_columns_a_migration_changed_fails_once_then_is_prepared_again(db: Database) -> None:
    """PostgreSQL will not run a prepared `SELECT *` of a table altered since: that request fails, the next one
    prepares it afresh on the same connection."""
    with db.transaction() as tx:
        tx.execute("CREATE TABLE plan_probe (id int)")
        tx.execute("INSERT INTO plan_probe VALUES (1)")

    def read() -> list[dict[str, Any]]:
        with db.transaction() as tx:
            return tx.all("SELECT * FROM plan_probe WHERE id = :id", {"id": 1})

    assert read() == [{"id": 1}]
    with db.transaction() as tx:
        tx.execute("ALTER TABLE plan_probe ADD COLUMN note text")
    with pytest.raises(pg8000.dbapi.DatabaseError, match="cached plan must not change result type"):
        read()
    assert read() == [{"id": 1, "note": None}]


def test_a_connection_keeps_at_most_prepared_max_statements_the_least_recently_used_closed(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(database, "PREPARED_MAX", 3)
    with db.transaction() as tx:
        for n in range(4):  # the fourth closes the first
            assert tx.scalar(f"SELECT CAST(:n AS int) + {n}", {"n": 1}) == 1 + n
        assert tx.scalar("SELECT CAST(:n AS int) + 1", {"n": 2}) == 3  # used again: the most recent now
        assert tx.scalar("SELECT CAST(:n AS int) + 4", {"n": 1}) == 5  # closes the least recently used (+ 2)
        kept = tx.all("SELECT statement FROM pg_prepared_statements")

    assert sorted(row["statement"] for row in kept) == [
        "SELECT CAST($1 AS int) + 1",
        "SELECT CAST($1 AS int) + 3",
        "SELECT CAST($1 AS int) + 4",
    ]
