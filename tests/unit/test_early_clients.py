"""The clients an instance builds early (shared/bootstrap.py) are real functions' and ones it knows how to build."""

from __future__ import annotations

import pytest

from functions.manifest import BY_NAME
from shared import bootstrap


def test_every_early_client_is_a_function_s_and_one_bootstrap_builds() -> None:
    for function, clients in bootstrap.EARLY_CLIENTS.items():
        assert function in BY_NAME, function
        assert set(clients) <= set(bootstrap.WARMABLE), (function, clients)
        kind = BY_NAME[function].trigger
        verifier = "oidc" if kind in ("task", "pubsub") else "firebase_auth"
        assert verifier in clients, f"{function} ({kind}) checks its caller with {verifier} on its first request"


class _Database:
    def warm(self) -> None:
        return None


def test_a_client_that_cannot_be_built_is_left_for_the_first_request(monkeypatch: pytest.MonkeyPatch) -> None:
    tried: list[str] = []

    def broken(client: str) -> None:
        tried.append(client)
        raise OSError("no network at instance start")

    monkeypatch.setattr(bootstrap, "_warm_client", broken)
    monkeypatch.setattr(bootstrap, "database", _Database)
    bootstrap._warm(("tasks", "publisher"))  # does not raise, and tries every client
    assert tried == ["tasks", "publisher"]
