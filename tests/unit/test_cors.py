"""The local gateway's CORS: configured origins get the Access-Control-* headers, every other origin none."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import pytest
from werkzeug.test import Client, TestResponse

from emulators.cors import DEFAULT_ORIGINS, Cors, configured_origins

ALLOWED = "http://localhost:5173"
OTHER = "http://evil.example"


class Recorder:
    """A stand-in for the gateway: answers 200 with a header of its own and remembers what reached it."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        self.calls.append(environ["REQUEST_METHOD"])
        start_response("200 OK", [("Content-Type", "application/json"), ("Retry-After", "3")])
        return [b"{}"]


@pytest.fixture
def inner() -> Recorder:
    return Recorder()


def _client(inner: Recorder, origins: Iterable[str] = (ALLOWED,)) -> Client:
    return Client(Cors(inner, origins))


def _cors_headers(response: TestResponse) -> dict[str, str]:
    return {name: value for name, value in response.headers.items() if name.lower().startswith("access-control-")}


def _preflight(client: Client, origin: str, method: str = "POST") -> TestResponse:
    return client.options(
        "/admin_dashboard",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": "authorization, content-type, idempotency-key",
        },
    )


def test_a_preflight_from_an_allowed_origin_is_answered_without_reaching_a_function(inner: Recorder) -> None:
    response = _preflight(_client(inner), ALLOWED)

    assert response.status_code == 204
    assert _cors_headers(response) == {
        "Access-Control-Allow-Origin": ALLOWED,
        "Access-Control-Allow-Methods": "GET, POST",
        "Access-Control-Allow-Headers": "Authorization, Content-Type, Idempotency-Key",
        "Access-Control-Max-Age": "600",
    }
    assert "Origin" in response.headers["Vary"]
    assert inner.calls == []


def test_a_preflight_from_another_origin_gets_no_cors_header(inner: Recorder) -> None:
    response = _preflight(_client(inner), OTHER)

    assert response.status_code == 403
    assert _cors_headers(response) == {}
    assert inner.calls == []


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_an_actual_request_from_an_allowed_origin_may_be_read_by_the_page(inner: Recorder, method: str) -> None:
    response = _client(inner).open("/admin_dashboard", method=method, headers={"Origin": ALLOWED})

    assert response.status_code == 200
    assert _cors_headers(response) == {
        "Access-Control-Allow-Origin": ALLOWED,
        "Access-Control-Expose-Headers": "Retry-After",
    }
    assert response.headers["Vary"] == "Origin"
    assert response.headers["Retry-After"] == "3", "the function's own headers are kept"
    assert inner.calls == [method]


def test_an_actual_request_from_another_origin_is_served_without_cors_headers(inner: Recorder) -> None:
    response = _client(inner).get("/admin_dashboard", headers={"Origin": OTHER})

    assert response.status_code == 200, "the server answers; the browser keeps the reply from the page"
    assert _cors_headers(response) == {}
    assert inner.calls == ["GET"]


def test_a_request_without_origin_is_untouched(inner: Recorder) -> None:
    plain = _client(inner).get("/admin_dashboard")
    options = _client(inner).options("/admin_dashboard", headers={"Access-Control-Request-Method": "GET"})

    assert _cors_headers(plain) == {} and "Vary" not in plain.headers
    assert options.status_code == 200, "an OPTIONS without Origin is not a preflight: the function answers it"
    assert inner.calls == ["GET", "OPTIONS"]


def test_origins_match_exactly_apart_from_case_and_a_trailing_slash(inner: Recorder) -> None:
    client = _client(inner, ["HTTP://LOCALHOST:5173/"])

    assert _preflight(client, "http://localhost:5173").status_code == 204
    assert _preflight(client, "http://localhost:5174").status_code == 403
    assert _preflight(client, "https://localhost:5173").status_code == 403
    assert _preflight(client, "http://localhost:5173.evil.example").status_code == 403


def test_a_star_allows_any_origin_echoing_it(inner: Recorder) -> None:
    response = _client(inner, ["*"]).get("/admin_dashboard", headers={"Origin": OTHER})

    assert response.headers["Access-Control-Allow-Origin"] == OTHER


def test_no_origins_turns_cors_off(inner: Recorder) -> None:
    client = _client(inner, [])

    assert _cors_headers(client.get("/admin_dashboard", headers={"Origin": ALLOWED})) == {}
    assert _preflight(client, ALLOWED).status_code == 200, "passed through to the function"


def test_the_setting_is_comma_separated_with_localhost_dev_servers_by_default() -> None:
    assert configured_origins({}) == frozenset(DEFAULT_ORIGINS)
    assert {"http://localhost:3000", "http://localhost:5173", "http://127.0.0.1:5173"} <= configured_origins({})
    assert configured_origins({"HALO_CORS_ORIGINS": " https://cc.example , http://localhost:4200/ ,"}) == {
        "https://cc.example",
        "http://localhost:4200",
    }
    assert configured_origins({"HALO_CORS_ORIGINS": ""}) == frozenset()


def test_the_gateway_applies_the_setting() -> None:
    import emulators.gateway

    assert isinstance(emulators.gateway.app, Cors)
    assert emulators.gateway.app.origins == configured_origins()
