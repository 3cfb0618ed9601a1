"""The OpenAPI document as the code generates it, for the tests that check it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any


def generated_document() -> dict[str, Any]:
    """Every function imported (each registers its endpoint), then the document, through JSON as the file is
    written, so tuples and lists compare alike."""
    import main
    from functions.openapi import document

    for name in main.__all__:
        getattr(main, name)
    result: dict[str, Any] = json.loads(json.dumps(document()))
    return result


def operations(doc: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(path, method, operation) for every operation of the document."""
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            yield path, method, operation
