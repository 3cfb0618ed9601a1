"""How a repository runs its statements: inside the unit of work's transaction, or each statement alone."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from shared.adapters.postgres.database import Database, Row


class Sql(Protocol):
    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> int:
        """The number of rows the statement changed."""

    def all(self, sql: str, params: Mapping[str, Any] | None = None) -> list[Row]: ...

    def one(self, sql: str, params: Mapping[str, Any] | None = None) -> Row | None: ...

    def scalar(self, sql: str, params: Mapping[str, Any] | None = None) -> Any: ...


class Autocommit:
    """Each statement is a transaction of its own, prepared once per connection: one round trip, no BEGIN and no
    COMMIT. For a use case whose whole change is one statement (a chat message, a heartbeat)."""

    def __init__(self, database: Database) -> None:
        self._database = database

    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> int:
        return self._database.execute_alone(sql, params)

    def all(self, sql: str, params: Mapping[str, Any] | None = None) -> list[Row]:
        return self._database.run_alone(sql, params)

    def one(self, sql: str, params: Mapping[str, Any] | None = None) -> Row | None:
        rows = self._database.run_alone(sql, params)
        return rows[0] if rows else None

    def scalar(self, sql: str, params: Mapping[str, Any] | None = None) -> Any:
        row = self.one(sql, params)
        return None if row is None else next(iter(row.values()))
