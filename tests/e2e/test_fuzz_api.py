"""Arbitrary and hostile input on every operation of the running gateway's /openapi.json, sent with a valid token
of a role the operation admits: never a 5xx; every answer is documented; a 200 matches the operation's response
schema; every 4xx is the error envelope; input the schema forbids is refused with a 4xx, but for unknown fields,
which are ignored (docs/contract.md, Compatibility).

Schemathesis generates the requests from the document (valid and invalid bodies, query strings and headers);
examples are bounded and derandomized, so a run is quick and CI sees the same requests every time. Whatever the
control center's operations change (settings, tiers) is put back afterwards.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.parameters import ParameterLocation
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from emulators.simulator import App, AuthEmulator
from emulators.stack import DATABASE, LocalStack
from shared.adapters.postgres.database import Database

pytestmark = pytest.mark.needs_gcloud

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES_PER_OPERATION = 15
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
]
# The committed document names the tests; the running gateway's document is what is fuzzed (a unit test keeps the
# two equal, and `test_every_operation_the_gateway_serves_is_fuzzed` checks that none is left out).
COMMITTED = json.loads((ROOT / "openapi.json").read_text())
OPERATIONS = [
    pytest.param(path, method.upper(), id=f"{method.upper()} {path}")
    for path, methods in COMMITTED["paths"].items()
    for method in methods
]


@pytest.fixture(scope="module")
def document(stack: LocalStack) -> dict[str, Any]:
    served: dict[str, Any] = requests.get(f"{stack.functions_url}/openapi.json", timeout=10).json()
    return served


@pytest.fixture(scope="module")
def api(document: dict[str, Any]) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_dict(document)


@pytest.fixture(scope="module")
def halo(stack: LocalStack) -> Iterator[Database]:
    database = Database(lambda: stack.postgres.connect(DATABASE), max_idle=2)
    yield database
    database.close()


@pytest.fixture(scope="module")
def tokens(stack: LocalStack, auth: AuthEmulator, halo: Database) -> dict[str, str]:
    """One signed-in caller per role, plus a signed-in user with no role yet (for registration and login)."""
    client = App(stack.functions_url, auth.sign_in_with_google(f"fuzz-{uuid.uuid4().hex[:8]}@example.com", "Fuzz"))
    assert client.post("client_register", {"display_name": "Fuzz"}).status == 200
    # A client of its own for the operation that deletes the caller's account, so the others keep their caller.
    leaving = App(stack.functions_url, auth.sign_in_with_google(f"fuzz-{uuid.uuid4().hex[:8]}@example.com", "Fuzz"))
    assert leaving.post("client_register", {"display_name": "Fuzz"}).status == 200
    phone = f"+62817{uuid.uuid4().int % 10**8:08d}"
    with halo.transaction() as tx:
        tx.execute("INSERT INTO mitras (phone, display_name) VALUES (:p, 'Mitra Fuzz')", {"p": phone})
    mitra = App(stack.functions_url, auth.sign_in_with_phone(phone))
    assert mitra.post("mitra_login").status == 200
    assert client.session is not None and mitra.session is not None and leaving.session is not None
    return {
        "client": client.session.refresh().id_token,
        "leaving client": leaving.session.refresh().id_token,
        "mitra": mitra.session.refresh().id_token,
        "admin": auth.sign_in_with_email("admin@halo.local", "halo-dev-admin").id_token,
        "anyone": auth.sign_in_with_google(f"fuzz-{uuid.uuid4().hex[:8]}@example.com").id_token,
    }


@pytest.fixture(scope="module", autouse=True)
def settings_put_back(halo: Database) -> Iterator[None]:
    """The fuzzed admin_config may change any setting or tier: the values are restored (as a new version, the way
    an admin would put them back), tiers it created are retired, and any search it started is ended."""
    with halo.transaction() as tx:
        config = {row["key"]: row["value"] for row in tx.all("SELECT key, value FROM app_config")}
        tiers = {
            row["id"]: row for row in tx.all("SELECT id, duration_s, price, active, sort_order FROM pricing_tiers")
        }
    yield
    with halo.transaction() as tx:
        for key, value in config.items():
            tx.execute(
                """UPDATE app_config SET value = CAST(:value AS jsonb), version = version + 1, updated_at = now()
                   WHERE key = :key AND value <> CAST(:value AS jsonb)""",
                {"key": key, "value": json.dumps(value)},
            )
        for tier in tiers.values():
            tx.execute(
                """UPDATE pricing_tiers SET duration_s = :duration_s, price = :price, active = :active,
                       sort_order = :sort_order, updated_at = now() WHERE id = :id""",
                tier,
            )
        tx.execute("UPDATE pricing_tiers SET active = false WHERE NOT (id = ANY(:ids))", {"ids": list(tiers)})
        tx.execute("UPDATE mitras SET presence = 'offline' WHERE presence = 'online'")
        tx.execute("UPDATE pairing_requests SET status = 'cancelled', ended_at = now() WHERE status = 'searching'")
        tx.execute("UPDATE pairing_offers SET status = 'withdrawn' WHERE status = 'offered'")


def caller_for(document: dict[str, Any], path: str, method: str, mode: GenerationMode) -> str:
    """A role the operation admits: the first for valid input, the last for invalid (so both get exercised)."""
    roles = document["paths"][path][method.lower()].get("x-roles")
    if not roles:
        return "anyone"
    return str(roles[0] if mode is GenerationMode.POSITIVE else roles[-1])


def reaches_the_function_as_valid_input(case: schemathesis.Case) -> bool:
    """A negative case whose every mutation is an unknown query parameter (ignored by the functions: docs/contract.md,
    Compatibility) or the omission of `Authorization` (which this test always sends) is valid on the wire; schemathesis
    forgives the first alone, not with the second."""
    mutations = getattr(case.meta.phase.data, "mutations", ()) if case.meta else ()
    return bool(mutations) and all(
        (mutation.parameter_location is ParameterLocation.QUERY and mutation.keywords == ("additionalProperties",))
        or (
            mutation.parameter_location is ParameterLocation.HEADER
            and "authorization" in json.dumps([mutation.parameter, mutation.original_value]).lower()
        )
        for mutation in mutations
    )


def assert_envelope(response: schemathesis.Response, declared: dict[str, Any], components: dict[str, Any]) -> None:
    """A 4xx is the envelope, its status one the operation declares (`@endpoint(errors=...)`) and its code one that
    status declares (status_code_conformance and response_schema_conformance check the same; this says it plainly)."""
    if response.status_code < 400:
        return
    body = response.json()
    assert set(body) == {"error"}, body
    assert isinstance(body["error"]["code"], str) and body["error"]["code"], body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"], body
    status = str(response.status_code)
    assert status in declared, f"answered {status} {body['error']['code']}, which the operation does not declare"
    ref = declared[status]["content"]["application/json"]["schema"]["$ref"]
    codes = components[ref.rsplit("/", 1)[-1]]["properties"]["error"]["properties"]["code"].get("enum")
    assert codes is None or body["error"]["code"] in codes, f"{status} {body['error']['code']} is not declared"
    if response.status_code in (429, 503):
        assert int(response.headers["retry-after"][0]) >= 1


def test_every_operation_the_gateway_serves_is_fuzzed(document: dict[str, Any]) -> None:
    served = {(path, method.upper()) for path, methods in document["paths"].items() for method in methods}
    assert served == {tuple(operation.values) for operation in OPERATIONS}


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=["valid", "invalid"])
@pytest.mark.parametrize(("path", "method"), OPERATIONS)
def test_every_operation_answers_any_input_as_documented(
    stack: LocalStack,
    api: schemathesis.BaseSchema,
    document: dict[str, Any],
    tokens: dict[str, str],
    path: str,
    method: str,
    mode: GenerationMode,
) -> None:
    operation = api[path][method]
    caller = caller_for(document, path, method, mode)
    if path == "/client_account_delete" and caller == "client":
        caller = "leaving client"
    bearer = {"Authorization": f"Bearer {tokens[caller]}"}
    http = requests.Session()
    declared = document["paths"][path][method.lower()]["responses"]

    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def answers_as_documented(case: schemathesis.Case) -> None:
        response = case.call(base_url=stack.functions_url, session=http, headers=bearer, timeout=30)
        if response.status_code == 414:
            # gunicorn's request-line limit (Google's front end has its own): refused before any function runs.
            return
        checks = CHECKS
        if mode is GenerationMode.NEGATIVE and reaches_the_function_as_valid_input(case):
            checks = [check for check in CHECKS if check is not negative_data_rejection]
        case.validate_response(response, checks=checks, headers=bearer)
        assert_envelope(response, declared, document["components"]["schemas"])

    answers_as_documented()
