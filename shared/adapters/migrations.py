"""Forward-only numbered SQL migrations, applied under an advisory lock and checked by checksum.

`python -m shared.adapters.migrations` applies every pending file of `migrations/` to the configured database.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from shared.adapters.postgres.database import Database, Tx

MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"
_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
# An arbitrary constant shared by every process that migrates this schema.
_LOCK_KEY = 7_326_118_044


class MigrationError(RuntimeError):
    pass


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def discover(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    found = []
    for path in sorted(directory.glob("*.sql")):
        match = _NAME.match(path.name)
        if not match:
            raise MigrationError(f"migration file name must look like 0001_name.sql: {path.name}")
        found.append(Migration(int(match[1]), match[2], path.read_text()))
    versions = [m.version for m in found]
    if versions != list(range(1, len(found) + 1)):
        raise MigrationError(f"migration versions must be 1..n without gaps, found {versions}")
    return found


def migrate(db: Database, migrations: list[Migration] | None = None) -> list[int]:
    """Apply what is pending; refuse to run if an applied file was edited afterwards."""
    migrations = discover() if migrations is None else migrations
    applied_now: list[int] = []
    with db.transaction() as tx:
        tx.execute("SELECT pg_advisory_xact_lock(:key)", {"key": _LOCK_KEY})
        tx.execute(
            """CREATE TABLE IF NOT EXISTS schema_migrations (
                   version integer PRIMARY KEY,
                   name text NOT NULL,
                   checksum text NOT NULL,
                   applied_at timestamptz NOT NULL DEFAULT now())"""
        )
        applied = {row["version"]: row["checksum"] for row in tx.all("SELECT version, checksum FROM schema_migrations")}
        for migration in migrations:
            if migration.version in applied:
                if applied[migration.version] != migration.checksum:
                    raise MigrationError(f"migration {migration.version}_{migration.name} changed after it was applied")
                continue
            _apply(tx, migration)
            applied_now.append(migration.version)
    return applied_now


def _apply(tx: Tx, migration: Migration) -> None:
    tx.execute(migration.sql)
    tx.execute(
        "INSERT INTO schema_migrations (version, name, checksum) VALUES (:version, :name, :checksum)",
        {"version": migration.version, "name": migration.name, "checksum": migration.checksum},
    )


if __name__ == "__main__":
    from shared.adapters.postgres.database import connector_for
    from shared.config import get_settings

    database = Database(connector_for(get_settings()), max_idle=1)
    print(f"applied: {migrate(database) or 'nothing pending'}")
    database.close()
