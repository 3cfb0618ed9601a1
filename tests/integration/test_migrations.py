"""Forward-only migrations on a fresh, empty PostgreSQL database."""

from __future__ import annotations

import itertools
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from emulators.stack import LocalStack
from shared.adapters.migrations import Migration, MigrationError, discover, migrate
from shared.adapters.postgres.database import Database
from shared.domain.config import AppConfig
from tests.support import world

_numbers = itertools.count()


@pytest.fixture
def empty_name(stack: LocalStack) -> Iterator[str]:
    """A database with nothing in it, not even the migrations table."""
    name = f"migrations_{os.getpid()}_{next(_numbers)}"
    stack.postgres.create_database(name)
    yield name
    stack.postgres.drop_database(name)


@pytest.fixture
def empty_db(stack: LocalStack, empty_name: str) -> Iterator[Database]:
    database = Database(lambda: stack.postgres.connect(empty_name), max_idle=4)
    yield database
    database.close()


def _applied(db: Database) -> list[tuple[int, str]]:
    with db.transaction() as tx:
        rows = tx.all("SELECT version, checksum FROM schema_migrations ORDER BY version")
    return [(row["version"], row["checksum"]) for row in rows]


def _table_exists(db: Database, table: str) -> bool:
    with db.transaction() as tx:
        return tx.scalar("SELECT to_regclass(:table)", {"table": table}) is not None


def test_the_first_migrate_applies_every_file_in_order(empty_db: Database) -> None:
    files = discover()

    assert migrate(empty_db) == [m.version for m in files] == list(range(1, len(files) + 1))
    assert _applied(empty_db) == [(m.version, m.checksum) for m in files]
    assert _table_exists(empty_db, "outbox")
    assert _table_exists(empty_db, "clients")


def test_a_second_migrate_applies_nothing(empty_db: Database) -> None:
    migrate(empty_db)
    before = _applied(empty_db)

    assert migrate(empty_db) == []
    assert _applied(empty_db) == before


def test_only_the_new_file_is_applied_on_top(empty_db: Database) -> None:
    files = discover()
    migrate(empty_db, files[:1])

    assert migrate(empty_db, files) == [m.version for m in files[1:]]


def test_an_applied_migration_that_was_edited_is_refused(empty_db: Database) -> None:
    files = discover()
    migrate(empty_db, files)
    edited = [replace(files[0], sql=files[0].sql + "\n-- a harmless-looking edit\n")]
    pending = Migration(len(files) + 1, "would_be_next", "CREATE TABLE would_be_next (id integer)")

    with pytest.raises(MigrationError, match=f"{files[0].version}_{files[0].name} changed"):
        migrate(empty_db, edited + files[1:] + [pending])

    assert not _table_exists(empty_db, "would_be_next")
    assert len(_applied(empty_db)) == len(files)


def test_a_failing_migration_applies_nothing_at_all(empty_db: Database) -> None:
    files = discover()
    broken = Migration(len(files) + 1, "broken", "CREATE TABLE broken (id integer;")

    with pytest.raises(Exception, match="syntax error"):
        migrate(empty_db, [*files, broken])

    assert not _table_exists(empty_db, "schema_migrations")
    assert not _table_exists(empty_db, "outbox")
    assert migrate(empty_db) == [m.version for m in files]


def _write(folder: Path, *names: str) -> Path:
    for name in names:
        (folder / name).write_text("SELECT 1;")
    return folder


def test_the_repository_files_are_numbered_without_gaps() -> None:
    assert [m.version for m in discover()] == list(range(1, len(discover()) + 1))


@pytest.mark.parametrize(
    "names",
    [
        ("0001_first.sql", "0003_third.sql"),
        ("0002_second.sql",),
        ("0001_first.sql", "0001_again.sql"),
    ],
)
def test_gaps_or_duplicates_in_numbering_are_refused(tmp_path: Path, names: tuple[str, ...]) -> None:
    with pytest.raises(MigrationError, match="without gaps"):
        discover(_write(tmp_path, *names))


@pytest.mark.parametrize("name", ["1_first.sql", "0001-first.sql", "0001_First.sql", "0001_.sql"])
def test_a_misnamed_file_is_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(MigrationError, match="must look like"):
        discover(_write(tmp_path, name))


def test_two_processes_migrating_at_once_apply_each_migration_exactly_once(
    stack: LocalStack, empty_name: str, empty_db: Database
) -> None:
    """Two instances starting together: the advisory lock makes the second wait, then find nothing pending.
    A slow last migration makes sure their transactions overlap."""
    files = discover()
    slow = Migration(len(files) + 1, "slow", "SELECT pg_sleep(0.5); CREATE TABLE slow_marker (id integer)")
    migrations = [*files, slow]
    # Separate pools, as two function instances would have.
    pools = [empty_db, Database(lambda: stack.postgres.connect(empty_name), max_idle=1)]
    start = threading.Barrier(len(pools))
    results: list[list[int]] = []
    errors: list[BaseException] = []
    durations: list[float] = []

    def run(pool: Database) -> None:
        start.wait()
        began = time.monotonic()
        try:
            results.append(migrate(pool, migrations))
        except BaseException as exc:
            errors.append(exc)
        durations.append(time.monotonic() - began)

    threads = [threading.Thread(target=run, args=(pool,)) for pool in pools]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    pools[1].close()

    assert errors == []
    assert sorted(results, key=len) == [[], [m.version for m in migrations]]
    assert min(durations) >= 0.5, "the two migrations did not overlap, so the lock was not exercised"
    assert [version for version, _ in _applied(empty_db)] == [m.version for m in migrations]


def test_the_migrated_configuration_is_the_code_default(db: Database) -> None:
    """A knob missing from app_config falls back to the code's default; both must tell the same story."""
    with db.transaction() as tx:
        rows = {row["key"]: row["value"] for row in tx.all("SELECT key, value FROM app_config")}

    assert set(rows) == set(AppConfig.model_fields)
    assert AppConfig.from_rows(rows) == AppConfig()


def test_refunds_made_before_refund_attempts_were_recorded_become_succeeded_first_attempts(empty_db: Database) -> None:
    files = discover()
    migrate(empty_db, files[:11])
    client_id = world.add_client(empty_db)
    with empty_db.transaction() as tx:
        transaction_id = str(
            tx.scalar(
                """INSERT INTO customer_transactions (id, client_id, purpose, tier_id, duration_s, amount, status,
                                                      expires_at, paid_at, paid_amount)
                   VALUES (gen_random_uuid(), CAST(:client AS uuid), 'session', 'sesi-30', 1800, 35000, 'paid',
                           now(), now(), 35000)
                   RETURNING id""",
                {"client": client_id},
            )
        )
        tx.execute(
            """INSERT INTO session_credits (transaction_id, client_id, tier_id, duration_s, status)
               VALUES (CAST(:id AS uuid), CAST(:client AS uuid), 'sesi-30', 1800, 'refunded')""",
            {"id": transaction_id, "client": client_id},
        )
        tx.execute(
            """INSERT INTO ledger_entries (transaction_id, client_id, kind, amount, external_ref, note, created_by)
               VALUES (CAST(:id AS uuid), CAST(:client AS uuid), 'refund', 35000, 'rfd-before', 'salah beli',
                       'admin-uid')""",
            {"id": transaction_id, "client": client_id},
        )

    assert migrate(empty_db, files) == [m.version for m in files[11:]]

    with empty_db.transaction() as tx:
        attempts = tx.all(
            """SELECT attempt, reference_id, status, xendit_refund_id, reason, requested_by FROM credit_refunds
               WHERE transaction_id = CAST(:id AS uuid)""",
            {"id": transaction_id},
        )
    assert attempts == [
        {
            "attempt": 1,
            "reference_id": f"refund-{transaction_id}",
            "status": "succeeded",
            "xendit_refund_id": "rfd-before",
            "reason": "salah beli",
            "requested_by": "admin-uid",
        },
    ]
