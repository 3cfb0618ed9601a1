"""Every app-facing function x every way a caller can be wrong → 401/403 with the envelope, never data."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest
import requests

from emulators.simulator import App, AuthEmulator
from emulators.stack import LocalStack

WRONG_ROLE = {"client": "mitra", "mitra": "client", "admin": "client"}


def _operations(stack: LocalStack) -> Iterator[tuple[str, str, list[str] | None]]:
    document = requests.get(f"{stack.functions_url}/openapi.json", timeout=10).json()
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            yield path.lstrip("/"), method.upper(), operation.get("x-roles")


@pytest.fixture(scope="module")
def callers(stack: LocalStack, auth: AuthEmulator) -> dict[str, str]:
    """One bearer value per kind of wrong caller (plus one holder of each role)."""
    client = App(stack.functions_url, auth.sign_in_with_google(f"{uuid.uuid4().hex[:8]}@example.com"))
    assert client.post("client_register", {"display_name": "Matrix"}).status == 200
    assert client.session is not None
    client.session.refresh()
    mitra = App(stack.functions_url, auth.sign_in_with_phone("+6281100000003"))
    assert mitra.post("mitra_login").status == 200
    assert mitra.session is not None
    mitra.session.refresh()
    admin = auth.sign_in_with_email("admin@halo.local", "halo-dev-admin")
    phone = f"+62815{uuid.uuid4().int % 10**8:08d}"
    revoked_session = auth.sign_in_with_phone(phone)
    App(stack.functions_url, revoked_session).post("client_register", {"display_name": "Lama"})
    revoked_session.refresh()
    time.sleep(1.1)  # revocation compares whole seconds
    auth.admin("delete", {"localId": revoked_session.uid})
    taker = App(stack.functions_url, auth.sign_in_with_phone(phone))
    assert taker.post("client_register", {"display_name": "Baru", "force": True}).status == 200
    return {
        "client": client.session.id_token,
        "mitra": mitra.session.id_token,
        "admin": admin.id_token,
        "garbage": "not.a.token",
        "expired": auth.expired_token_for(client.session),
        "revoked": revoked_session.id_token,
    }


def _call(stack: LocalStack, name: str, method: str, token: str | None) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if method == "GET":
        return requests.get(f"{stack.functions_url}/{name}", headers=headers, timeout=10)
    return requests.post(f"{stack.functions_url}/{name}", json={}, headers=headers, timeout=10)


def _assert_refused(response: requests.Response, statuses: set[int], label: str) -> None:
    assert response.status_code in statuses, f"{label}: {response.status_code} {response.text[:200]}"
    error = response.json()["error"]
    assert error["code"] and error["message"], label
    assert set(response.json()) == {"error"}, f"{label}: nothing but the error"


@pytest.mark.parametrize("kind", ["none", "garbage", "expired", "revoked", "wrong_role"])
def test_every_function_refuses_every_wrong_caller(stack: LocalStack, callers: dict[str, str], kind: str) -> None:
    checked = 0
    for name, method, roles in _operations(stack):
        if kind == "wrong_role":
            if roles is None:
                continue
            outsiders = [role for role in ("client", "mitra", "admin") if role not in roles]
            for role in outsiders:
                _assert_refused(_call(stack, name, method, callers[role]), {403}, f"{name} {method} as {role}")
                checked += 1
            continue
        token = None if kind == "none" else callers[kind]
        statuses = {401, 403} if kind == "revoked" else {401}
        _assert_refused(_call(stack, name, method, token), statuses, f"{name} {method} with {kind}")
        checked += 1
    assert checked > 0
