"""What the control center's lists share: keyset cursors. A cursor holds the sort keys of a page's last row; the
repository continues after them (shared/adapters/postgres/admin_paging.py)."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar

from shared.errors import InvalidRequest

Item = TypeVar("Item")


def read_cursor(cursor: str | None, *parsers: Callable[[str], Any]) -> list[Any] | None:
    """The sort keys a cursor holds, each checked by its parser (`datetime.fromisoformat`, `uuid.UUID`, `str`)."""
    if not cursor:
        return None
    try:
        values = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        if not isinstance(values, list) or len(values) != len(parsers):
            raise ValueError("wrong shape")
        return [parse(str(value)) for parse, value in zip(parsers, values, strict=True)]
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidRequest(
            "the cursor is not one we issued", fields=[{"field": "cursor", "problem": "invalid"}]
        ) from exc


def keyset(cursor: str | None, *parsers: Callable[[str], Any]) -> tuple[Any, str] | None:
    """A cursor of (sort key, row id) as a repository takes it: the row id as text."""
    after = read_cursor(cursor, *parsers)
    return (after[0], str(after[1])) if after else None


def page(rows: Sequence[Item], limit: int, *keys: str) -> tuple[list[Item], str | None]:
    """Rows were fetched with `limit + 1`: the extra row only says there is a next page, which starts after the
    last row shown. `keys` name the sort keys (items' keys or attributes)."""
    shown = list(rows[:limit])
    if len(rows) <= limit:
        return shown, None
    values = [_text(_value(shown[-1], key)) for key in keys]
    return shown, base64.urlsafe_b64encode(json.dumps(values).encode()).decode()


def _value(row: Any, key: str) -> Any:
    return row[key] if isinstance(row, Mapping) else getattr(row, key)


def _text(value: Any) -> str:
    return value.isoformat() if isinstance(value, datetime) else str(value)
