"""The committed OpenAPI document is the one the code generates, and it is structurally sound OpenAPI 3.1."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from functions.manifest import FUNCTIONS
from tests.support.openapi import generated_document, operations

COMMITTED = Path(__file__).resolve().parents[2] / "openapi.json"
_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
_COMPONENT_NAME = re.compile(r"^[a-zA-Z0-9._-]+$")


@pytest.fixture(scope="module")
def generated() -> dict[str, Any]:
    return generated_document()


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


def _resolve(doc: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), f"only local references are expected, got {ref}"
    node: Any = doc
    for token in ref[2:].split("/"):
        key = token.replace("~1", "/").replace("~0", "~")
        assert isinstance(node, dict) and key in node, f"{ref} does not resolve"
        node = node[key]
    return node


def test_the_committed_document_matches_the_code(generated: dict[str, Any]) -> None:
    assert COMMITTED.exists(), "openapi.json is missing: run `make openapi` and commit it"
    committed = json.loads(COMMITTED.read_text())

    assert committed == generated, "openapi.json is out of date with the code: run `make openapi` and commit it"


def test_it_is_openapi_3_1_with_info_and_paths(generated: dict[str, Any]) -> None:
    assert re.fullmatch(r"3\.1\.\d+", generated["openapi"])
    assert generated["info"]["title"]
    assert isinstance(generated["info"]["version"], str)
    assert generated["paths"]


def test_every_reference_resolves(generated: dict[str, Any]) -> None:
    refs = set(_refs(generated))

    assert refs, "a document without a single $ref is suspicious: the models are not shared"
    for ref in sorted(refs):
        assert isinstance(_resolve(generated, ref), dict), ref


def test_component_names_are_legal(generated: dict[str, Any]) -> None:
    for name in generated["components"]["schemas"]:
        assert _COMPONENT_NAME.fullmatch(name), name


def test_no_two_models_share_a_name(generated: dict[str, Any]) -> None:
    """Two models of one name become `shared__schemas__<module>__<Name>` components, and the generated clients get
    names nobody chose (and that change when a third appears): each schema model's name is its own."""
    shared = [name for name in generated["components"]["schemas"] if "__" in name]
    assert shared == [], "rename one of each pair in shared/schemas"


def test_operation_ids_are_unique(generated: dict[str, Any]) -> None:
    ids = Counter(operation.get("operationId") for _path, _method, operation in operations(generated))

    assert None not in ids
    assert [operation_id for operation_id, count in ids.items() if count > 1] == []


def test_every_operation_is_well_formed(generated: dict[str, Any]) -> None:
    schemes = generated["components"]["securitySchemes"]
    for path, method, operation in operations(generated):
        where = f"{method.upper()} {path}"
        assert path.startswith("/"), where
        assert method in _METHODS, where
        assert operation["responses"], where
        assert "200" in operation["responses"], where
        assert all(response.get("description") for response in operation["responses"].values()), where
        for requirement in operation.get("security", []):
            assert set(requirement) <= set(schemes), where
        parameters = [(p["name"], p["in"]) for p in operation.get("parameters", [])]
        assert len(parameters) == len(set(parameters)), where
        assert all(place in {"query", "header", "cookie"} for _name, place in parameters), where
        if method == "get":
            assert "requestBody" not in operation, where


def test_it_documents_every_app_facing_function_and_nothing_else(generated: dict[str, Any]) -> None:
    deployed = {f"/{spec.name}" for spec in FUNCTIONS}
    app_facing = {f"/{spec.name}" for spec in FUNCTIONS if spec.trigger == "http"}

    assert app_facing <= set(generated["paths"])
    assert set(generated["paths"]) <= deployed
