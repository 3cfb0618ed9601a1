"""What openapi.json tells the app teams beyond shapes: a description, summary and area of every operation, an example
of every request and reply that its own schema accepts, the error statuses each operation declares (each with the
codes it carries, and Retry-After where one is due), the limits of the fields people type, and where to call it."""

from __future__ import annotations

from typing import Any

import jsonschema_rs
import pytest

import main
from functions._http import COMMON_ERRORS, ENDPOINTS, endpoint
from functions.openapi import ERRORS, LOCAL_SERVER, TAGS
from shared.schemas import Empty
from shared.schemas.examples import example
from tests.support.openapi import generated_document, operations


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    return generated_document()


def _validator(doc: dict[str, Any], schema: dict[str, Any]) -> Any:
    """A validator for `schema` whose `#/components/...` references resolve in the document."""
    return jsonschema_rs.validator_for({**schema, "components": doc["components"]})


def test_every_operation_is_described_in_whole_sentences_with_a_summary_and_an_area(doc: dict[str, Any]) -> None:
    tags = {tag["name"] for tag in doc["tags"]}
    for path, method, operation in operations(doc):
        description = operation["description"]
        assert description[0].isupper() and description.rstrip().endswith((".", ")")), (path, method, description)
        assert operation["summary"] and len(operation["summary"]) <= len(description), (path, method)
        assert operation["tags"] and set(operation["tags"]) <= tags <= set(TAGS), (path, method)


def test_get_and_post_of_one_function_are_described_separately(doc: dict[str, Any]) -> None:
    both = [item for item in doc["paths"].values() if {"get", "post"} <= set(item)]
    assert both
    for item in both:
        assert item["get"]["description"] != item["post"]["description"]
        assert "GET:" not in item["get"]["description"] and "POST:" not in item["post"]["description"]


def test_every_request_and_reply_has_an_example_its_schema_accepts(doc: dict[str, Any]) -> None:
    for path, method, operation in operations(doc):
        reply = operation["responses"]["200"]["content"]["application/json"]
        assert _validator(doc, reply["schema"]).is_valid(reply["example"]), (path, method, reply["example"])
        body = operation.get("requestBody", {}).get("content", {}).get("application/json")
        if body is not None:
            assert _validator(doc, body["schema"]).is_valid(body["example"]), (path, method, body["example"])
        for parameter in operation["parameters"]:
            if parameter["required"] and parameter["in"] == "query":
                assert jsonschema_rs.is_valid(parameter["schema"], parameter["example"]), (path, parameter)


def test_every_example_is_one_the_function_would_parse_or_answer() -> None:
    for name in main.__all__:
        getattr(main, name)
    for spec in ENDPOINTS.values():
        for model in spec.methods.values():
            model.model_validate(example(model, request=True))
        spec.response.model_validate(example(spec.response, request=False))


def test_every_operation_declares_its_error_statuses_with_their_codes(doc: dict[str, Any]) -> None:
    for path, method, operation in operations(doc):
        statuses = {int(status) for status in operation["responses"] if status != "200"}
        assert COMMON_ERRORS <= statuses <= set(ERRORS), (path, method)
        spec = ENDPOINTS[path.strip("/")]
        assert statuses == spec.errors, (path, method)
        for status in statuses:
            response = operation["responses"][str(status)]
            ref = response["content"]["application/json"]["schema"]["$ref"]
            schema = doc["components"]["schemas"][ref.rsplit("/", 1)[-1]]
            assert "enum" in schema["properties"]["error"]["properties"]["code"], (path, status)
            assert ("Retry-After" in response.get("headers", {})) is (status in (429, 503)), (path, status)


def test_an_error_envelope_validates_against_its_status_schema(doc: dict[str, Any]) -> None:
    schemas = doc["components"]["schemas"]
    limited = {"error": {"code": "rate_limited", "message": "wait", "retry_after_s": 3}}
    assert _validator(doc, schemas["Error429"]).is_valid(limited)
    assert not _validator(doc, schemas["Error404"]).is_valid({"error": {"code": "already_taken", "message": "x"}})
    assert _validator(doc, schemas["Error409"]).is_valid({"error": {"code": "already_taken", "message": "x"}})
    assert not _validator(doc, schemas["Error409"]).is_valid({"error": {"code": "no_such_conflict", "message": "x"}})


def test_the_409_codes_are_every_conflict_the_code_can_raise() -> None:
    """Read from the code (each Conflict's literal code, and the rules' refusal values): the list grows with it."""
    from functions.openapi import conflict_codes

    codes = conflict_codes()
    expected = {"already_taken", "request_open", "session_open", "payment_required", "idempotency_key_reused"}
    assert expected <= set(codes)
    assert {"credit_in_use", "credit_consumed", "same_mitra", "relink_pending"} <= set(codes)
    assert not {"rate_limited", "unknown_tier", "forbidden"} & set(codes), "those are other statuses"


def test_only_the_statuses_an_operation_may_add_are_taken() -> None:
    with pytest.raises(ValueError, match="errors="):
        endpoint(post=Empty, response=Empty, errors={418})


def test_the_limits_of_what_people_type_and_of_pages_are_in_the_document(doc: dict[str, Any]) -> None:
    schemas = doc["components"]["schemas"]
    assert schemas["ChatSend"]["properties"]["text"]["x-max-length"] == 4000
    assert schemas["ClientRegister"]["properties"]["display_name"]["x-max-length"] == 40
    history = {p["name"]: p for p in doc["paths"]["/chat_history"]["get"]["parameters"]}
    assert history["limit"]["schema"]["maximum"] == 100


def test_it_names_the_local_and_the_production_servers(doc: dict[str, Any]) -> None:
    local, production = doc["servers"]
    assert local["url"] == LOCAL_SERVER
    assert set(production["variables"]) == {"region", "project"}
    assert all(variable["default"] for variable in production["variables"].values())
