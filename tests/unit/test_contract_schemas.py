"""contract/firestore/*.json and contract/push/*.json are generated from the models the backend writes with
(`make contract`); they must be current, and valid JSON Schema that accepts what the builders write."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import jsonschema_rs

from kit import contract
from shared.domain.pairing import RequestStatus, request_document

ROOT = Path(__file__).resolve().parents[2]


def test_the_committed_schemas_are_the_generated_ones() -> None:
    generated = contract.schemas()
    committed = {
        path.relative_to(contract.CONTRACT).as_posix(): path.read_text()
        for folder in ("firestore", "push")
        for path in (contract.CONTRACT / folder).glob("*.json")
    }
    assert sorted(committed) == sorted(generated), "run `make contract`"
    for relative, schema in generated.items():
        assert committed[relative] == contract.render(schema), f"contract/{relative} drifted: run `make contract`"


def test_every_schema_is_valid_json_schema() -> None:
    for schema in contract.schemas().values():
        jsonschema_rs.meta.validate(schema)


def test_what_the_apps_read_is_valid_against_its_schema() -> None:
    """A document as an app reads it (timestamps as text here), and a push's data."""
    schemas = contract.schemas()
    at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    written = dict(request_document("r1", client_uid="u1", status=RequestStatus.MATCHED, at=at, session_id="s1").data)
    read = {key: v["$ts"] if isinstance(v, dict) and "$ts" in v else v for key, v in written.items()}
    jsonschema_rs.validate(schemas["firestore/pairing_requests.json"], read)
    jsonschema_rs.validate(schemas["push/matched.json"], {"type": "matched", "request_id": "r1", "session_id": "s1"})
    assert not jsonschema_rs.is_valid(schemas["push/matched.json"], {"type": "matched", "request_id": "r1"})
    assert json.loads(contract.render(schemas["push/matched.json"])) == schemas["push/matched.json"]
