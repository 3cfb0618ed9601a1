"""The HTTP layer's parsing and error envelope, driven with real Flask requests (no stack needed)."""

from __future__ import annotations

import json
import logging
from typing import Annotated, Any, Literal

import flask
import pytest
from pydantic import BaseModel, Field, RootModel
from werkzeug.test import EnvironBuilder

from functions._http import _idempotency_key, parse
from functions._replies import MAX_BODY_BYTES, error_response
from shared.errors import AppError, Conflict, InvalidRequest, NotFound, PayloadTooLarge, RateLimited, Unavailable
from shared.schemas import Empty, Model, unknown_fields


class Window(Model):
    minutes: int = Field(ge=1)


class Greeting(Model):
    name: str
    count: int = 1
    window: Window | None = None


class Page(Model):
    limit: int = 20
    cursor: str | None = None


def _request(method: str = "POST", **kwargs: Any) -> flask.Request:
    request: flask.Request = EnvironBuilder(path="/fn", method=method, **kwargs).get_request(flask.Request)
    return request


def _invalid(req: flask.Request, model: type[BaseModel]) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as raised:
        parse(req, model)
    return raised.value


def _fields(err: AppError) -> list[str]:
    return [entry["field"] for entry in err.details["fields"]]


def test_a_valid_json_object_becomes_the_model() -> None:
    body = parse(_request(json={"name": "Sari", "count": 2, "window": {"minutes": 5}}), Greeting)

    assert body == Greeting(name="Sari", count=2, window=Window(minutes=5))


def test_an_empty_body_is_an_empty_object() -> None:
    assert parse(_request(data=b""), Empty) == Empty()


@pytest.mark.parametrize("data", [b"name=Sari", b"{not json", b"\xff\xfe\x00", b'{"name": "Sari"'])
def test_a_body_that_is_not_json_is_invalid_with_field_body(data: bytes) -> None:
    err = _invalid(_request(data=data, content_type="application/json"), Greeting)

    assert err.details["fields"] == [{"field": "body", "problem": "not JSON"}]
    assert err.status == 400
    assert err.code == "invalid_request"


@pytest.mark.parametrize("document", [[{"name": "Sari"}], "Sari", 3, None])
def test_json_that_is_not_an_object_is_invalid(document: object) -> None:
    err = _invalid(_request(data=json.dumps(document), content_type="application/json"), Greeting)

    assert err.details["fields"] == [{"field": "body", "problem": "not an object"}]


def test_a_field_of_the_wrong_type_is_named() -> None:
    err = _invalid(_request(json={"name": "Sari", "count": "many"}), Greeting)

    assert _fields(err) == ["count"]
    assert err.details["fields"][0]["problem"]


def test_nested_fields_are_named_with_dots_and_every_bad_field_is_listed() -> None:
    err = _invalid(_request(json={"count": [], "window": {"minutes": 0}}), Greeting)

    assert sorted(_fields(err)) == ["count", "name", "window.minutes"]


def test_an_unknown_field_is_ignored_and_its_name_logged_without_its_value(caplog: pytest.LogCaptureFixture) -> None:
    """A newer app's optional field reaches an older backend: accepted, ignored, named in the log (not its value)."""
    sent = {"name": "Sari", "surprise": "secret-value", "window": {"minutes": 5, "unit": "hours"}}

    with caplog.at_level(logging.INFO, logger="halo.http"):
        body = parse(_request(json=sent), Greeting, function="greet")

    assert body == Greeting(name="Sari", window=Window(minutes=5))
    [record] = [r for r in caplog.records if r.getMessage() == "unknown fields ignored"]
    assert record.levelno == logging.INFO
    assert record.fields == {"function": "greet", "fields": ["surprise", "window.unit"], "count": 2}  # type: ignore[attr-defined]
    assert "secret-value" not in str(record.__dict__)
    assert "hours" not in str(record.__dict__)


def test_known_fields_only_log_nothing(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="halo.http"):
        parse(_request(json={"name": "Sari", "window": {"minutes": 5}}), Greeting, function="greet")

    assert not [r for r in caplog.records if r.getMessage() == "unknown fields ignored"]


def test_unknown_fields_in_a_list_of_objects_are_named_by_index() -> None:
    class Item(Model):
        id: str

    class Batch(Model):
        items: list[Item]

    parsed = Batch.model_validate({"items": [{"id": "a"}, {"id": "b", "colour": "red"}]})

    assert unknown_fields(parsed, {"items": [{"id": "a"}, {"id": "b", "colour": "red"}], "v": 2}) == [
        "items.1.colour",
        "v",
    ]


def test_unknown_fields_inside_a_discriminated_union_are_named_without_the_root() -> None:
    class Add(Model):
        action: Literal["add"]
        n: int

    class Drop(Model):
        action: Literal["drop"]

    class Change(RootModel[Annotated[Add | Drop, Field(discriminator="action")]]):
        pass

    sent = {"action": "add", "n": 1, "why": "x"}

    assert unknown_fields(Change.model_validate(sent), sent) == ["why"]


def test_a_misspelt_required_field_is_still_refused_as_missing() -> None:
    err = _invalid(_request(json={"nmae": "Sari"}), Greeting)

    assert _fields(err) == ["name"]


def test_what_is_logged_of_unknown_names_is_bounded(caplog: pytest.LogCaptureFixture) -> None:
    sent = {"name": "Sari", **{f"{'x' * 100}{n:02d}": n for n in range(30)}}

    with caplog.at_level(logging.INFO, logger="halo.http"):
        parse(_request(json=sent), Greeting, function="greet")

    [record] = [r for r in caplog.records if r.getMessage() == "unknown fields ignored"]
    logged = record.fields  # type: ignore[attr-defined]
    assert logged["count"] == 30
    assert len(logged["fields"]) == 20
    assert all(len(name) == 64 for name in logged["fields"])


@pytest.mark.parametrize(
    ("data", "field", "problem"),
    [
        (rb'{"name": "Sa\u0000ri"}', "name", "contains NUL"),
        (rb'{"name": "Sari", "window": {"minutes": 5, "note": "\ud800"}}', "window.note", "not valid Unicode"),
        (rb'{"name": "Sari", "tags": ["ok", "\udfff!"]}', "tags.1", "not valid Unicode"),
    ],
)
def test_text_postgresql_cannot_store_is_refused_naming_its_field(data: bytes, field: str, problem: str) -> None:
    err = _invalid(_request(data=data, content_type="application/json"), Greeting)

    assert err.details["fields"] == [{"field": field, "problem": problem}]


def test_an_oversize_body_is_refused_before_it_is_parsed() -> None:
    too_big = json.dumps({"name": "x" * MAX_BODY_BYTES}).encode()

    with pytest.raises(PayloadTooLarge) as raised:
        parse(_request(data=too_big, content_type="application/json"), Greeting)

    assert raised.value.status == 413
    too_large = {"fields": [{"field": "body", "problem": "too large"}], "limit_bytes": MAX_BODY_BYTES}
    assert raised.value.details == too_large


def test_a_body_at_the_limit_is_accepted() -> None:
    padding = MAX_BODY_BYTES - len(json.dumps({"name": ""}).encode())
    at_limit = json.dumps({"name": "x" * padding}).encode()
    assert len(at_limit) == MAX_BODY_BYTES

    assert parse(_request(data=at_limit, content_type="application/json"), Greeting).name == "x" * padding  # type: ignore[attr-defined]


def test_get_reads_the_query_string_and_coerces_types() -> None:
    body = parse(_request("GET", query_string={"limit": "5", "cursor": "abc"}), Page)

    assert body == Page(limit=5, cursor="abc")


def test_get_ignores_the_body() -> None:
    assert parse(_request("GET", data=b"not json"), Page) == Page()


def test_get_names_a_bad_query_parameter_and_ignores_an_unknown_one(caplog: pytest.LogCaptureFixture) -> None:
    assert _fields(_invalid(_request("GET", query_string={"limit": "lots"}), Page)) == ["limit"]

    with caplog.at_level(logging.INFO, logger="halo.http"):
        assert parse(_request("GET", query_string={"surprise": "1"}), Page, function="pages") == Page()

    [record] = [r for r in caplog.records if r.getMessage() == "unknown fields ignored"]
    assert record.fields["fields"] == ["surprise"]  # type: ignore[attr-defined]


def test_no_idempotency_key_is_none() -> None:
    assert _idempotency_key(_request()) is None


def test_an_idempotency_key_is_trimmed() -> None:
    assert _idempotency_key(_request(headers={"Idempotency-Key": "  pay-123  "})) == "pay-123"
    assert _idempotency_key(_request(headers={"Idempotency-Key": "k" * 200})) == "k" * 200


@pytest.mark.parametrize("key", ["", "   ", "k" * 201, "a\x01b", "a\tb"])
def test_a_bad_idempotency_key_is_invalid(key: str) -> None:
    with pytest.raises(InvalidRequest) as raised:
        _idempotency_key(_request(headers={"Idempotency-Key": key}))

    assert raised.value.details["fields"] == [{"field": "Idempotency-Key", "problem": "invalid"}]


def _body(response: flask.Response) -> dict[str, Any]:
    payload: dict[str, Any] = json.loads(response.get_data())
    return payload


def test_error_response_carries_the_envelope_and_status() -> None:
    response = error_response(InvalidRequest("some fields are invalid", fields=[{"field": "x", "problem": "bad"}]))

    assert response.status_code == 400
    assert response.mimetype == "application/json"
    assert _body(response) == {
        "error": {
            "code": "invalid_request",
            "message": "some fields are invalid",
            "fields": [{"field": "x", "problem": "bad"}],
        }
    }
    assert "Retry-After" not in response.headers


@pytest.mark.parametrize(
    ("err", "status", "code"),
    [
        (NotFound("no such session"), 404, "not_found"),
        (Conflict("someone else accepted", code="already_taken"), 409, "already_taken"),
        (Unavailable("the database is unreachable"), 503, "unavailable"),
    ],
)
def test_each_error_keeps_its_status_and_stable_code(err: AppError, status: int, code: str) -> None:
    response = error_response(err)

    assert response.status_code == status
    assert _body(response) == {"error": {"code": code, "message": err.message}}


def test_rate_limited_sets_retry_after() -> None:
    response = error_response(RateLimited("slow down", retry_after_s=17))

    assert response.status_code == 429
    assert response.headers["Retry-After"] == "17"
    assert _body(response) == {"error": {"code": "rate_limited", "message": "slow down", "retry_after_s": 17}}


@pytest.mark.parametrize(
    ("err", "level", "extra"),
    [
        (Conflict("taken", code="already_taken"), logging.INFO, {}),
        (
            InvalidRequest("bad", fields=[{"field": "text", "problem": "too long: secret words"}]),
            logging.INFO,
            {"fields": ["text"]},
        ),
        (Unavailable("down"), logging.WARNING, {}),
    ],
)
def test_every_refusal_is_logged_with_its_code(
    caplog: pytest.LogCaptureFixture, err: AppError, level: int, extra: dict[str, Any]
) -> None:
    """The runbook's `jsonPayload.message="request failed" AND jsonPayload.code=...` finds 4xx answers too (at INFO),
    a 400 naming the fields it refused but never what was sent."""
    with caplog.at_level(logging.INFO, logger="halo.http"):
        error_response(err)

    [record] = [r for r in caplog.records if r.getMessage() == "request failed"]
    assert record.levelno == level
    assert record.fields == {"code": err.code, "status": err.status, **extra}  # type: ignore[attr-defined]
    assert "secret words" not in str(record.__dict__)
