"""What the control center's lists share: keyset cursors and substring search patterns."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from shared.errors import InvalidRequest


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


def page(rows: list[dict[str, Any]], limit: int, *keys: str) -> tuple[list[dict[str, Any]], str | None]:
    """Rows were fetched with `limit + 1`: the extra row only says there is a next page, which starts after the
    last row shown."""
    shown = rows[:limit]
    if len(rows) <= limit:
        return shown, None
    values = [_text(shown[-1][key]) for key in keys]
    return shown, base64.urlsafe_b64encode(json.dumps(values).encode()).decode()


def older_than_cursor(
    cursor: str | None, at: str, key: str, key_type: type[uuid.UUID] | type[int] = uuid.UUID
) -> tuple[list[str], dict[str, Any]]:
    """Newest-first keyset paging on (`at`, `key`): the condition for the rows after the cursor's (none on the first
    page) and its parameters."""
    after = read_cursor(cursor, datetime.fromisoformat, key_type)
    if after is None:
        return [], {}
    key_param = ":after_id" if key_type is int else "CAST(:after_id AS uuid)"
    return [f"({at}, {key}) < (CAST(:after_at AS timestamptz), {key_param})"], {
        "after_at": after[0], "after_id": after[1] if key_type is int else str(after[1]),
    }  # fmt: skip


def contains(text: str) -> str:
    """An ILIKE pattern matching `text` anywhere, with LIKE's own wildcards taken literally."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _text(value: Any) -> str:
    return value.isoformat() if isinstance(value, datetime) else str(value)
