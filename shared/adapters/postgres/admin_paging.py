"""What the control center's lists share in SQL: filters that apply only when given, keyset paging, and substring
search patterns."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def where(filters: Mapping[str, str], bound: Mapping[str, Any]) -> str:
    """Each filter whose parameter (its key) is bound to a value. A filter not given is left out of the statement,
    rather than written `(:x IS NULL OR ...)`, so the planner picks the index of the filters that are."""
    chosen = [condition for name, condition in filters.items() if bound.get(name) is not None]
    return " AND ".join(chosen or ["true"])


def after(keyset: tuple[Any, Any] | None) -> dict[str, Any]:
    """The parameters `after_sort` and `after_id` of a keyset filter: the last row of the page before (none on the
    first page)."""
    sort, row_id = keyset if keyset is not None else (None, None)
    return {"after_sort": sort, "after_id": None if row_id is None else str(row_id)}


def contains(text: str | None) -> str | None:
    """An ILIKE pattern matching `text` anywhere, with LIKE's own wildcards taken literally."""
    if text is None:
        return None
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"
