"""Task and Pub/Sub push handlers verify their caller's Google-signed OIDC token in code (defence in depth), with the
same verifier production uses, against certificates from the local issuer (emulators/oidc_issuer.py) instead of
Google's. No stack is needed: the functions are served by functions-framework apps built from main.py."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import flask
import functions_framework
import pytest

from emulators.oidc_issuer import LocalIssuer, ensure_key
from shared import bootstrap
from shared.adapters.google_oidc import OidcVerifier
from shared.config import get_settings
from shared.errors import Unauthenticated, Unavailable

ROOT = Path(__file__).resolve().parents[2]
TASKS = "tasks-invoker@demo-halo.iam.gserviceaccount.com"
PUSH = "eventarc@demo-halo.iam.gserviceaccount.com"
AUDIENCE = "http://127.0.0.1:5001/task_project_outbox"


@pytest.fixture(scope="module")
def issuer(tmp_path_factory: pytest.TempPathFactory) -> LocalIssuer:
    return LocalIssuer(ensure_key(tmp_path_factory.mktemp("oidc") / "key.pem"))


@pytest.fixture(scope="module")
def stranger(tmp_path_factory: pytest.TempPathFactory) -> LocalIssuer:
    """Someone with a key of their own, signing tokens that claim to be ours."""
    return LocalIssuer(ensure_key(tmp_path_factory.mktemp("other") / "key.pem"))


class Certs:
    """The certificate endpoint, counting how often it is asked."""

    def __init__(self, issuer: LocalIssuer) -> None:
        self.issuer = issuer
        self.fetches = 0
        self.down = False

    def __call__(self, url: str) -> tuple[dict[str, str], float | None]:
        self.fetches += 1
        if self.down:
            raise OSError("certificates unreachable")
        return self.issuer.certs(), 300


def _verifier(issuer: LocalIssuer) -> tuple[OidcVerifier, Certs]:
    certs = Certs(issuer)
    return OidcVerifier("http://certs.local", fetch=certs), certs


def _is_ours(audience: str) -> bool:
    return audience == AUDIENCE


def test_a_token_of_the_expected_account_for_this_audience_passes(issuer: LocalIssuer) -> None:
    verifier, certs = _verifier(issuer)

    claims = verifier.verify(issuer.token(email=TASKS, audience=AUDIENCE), audience=_is_ours, email=TASKS)
    verifier.verify(issuer.token(email=TASKS, audience=AUDIENCE), audience=_is_ours, email=TASKS)

    assert (claims["aud"], claims["email"]) == (AUDIENCE, TASKS)
    assert certs.fetches == 1, "certificates are kept between calls"


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"aud": "http://127.0.0.1:5001/task_session_expire"}, "another audience"),
        ({"email": "someone@demo-halo.iam.gserviceaccount.com"}, "expected service account"),
        ({"email_verified": False}, "expected service account"),
        ({"iss": "https://evil.example"}, "not issued by Google"),
        ({"exp": int(time.time()) - 3600, "iat": int(time.time()) - 7200}, "refused"),
        ({"iat": int(time.time()) + 3600, "exp": int(time.time()) + 7200}, "refused"),
    ],
)
def test_a_token_for_another_audience_account_issuer_or_time_is_refused(
    issuer: LocalIssuer, claims: dict[str, Any], reason: str
) -> None:
    verifier, _ = _verifier(issuer)
    token = issuer.token(**{"email": TASKS, "audience": AUDIENCE, **claims})

    with pytest.raises(Unauthenticated, match=reason):
        verifier.verify(token, audience=_is_ours, email=TASKS)


def test_a_token_signed_by_another_key_or_not_signed_is_refused(issuer: LocalIssuer, stranger: LocalIssuer) -> None:
    verifier, _ = _verifier(issuer)
    forged = stranger.token(email=TASKS, audience=AUDIENCE)
    header, payload, _ = issuer.token(email=TASKS, audience=AUDIENCE).split(".")
    unsigned = ".".join(
        [base64.urlsafe_b64encode(json.dumps({"alg": "none"}).encode()).decode().rstrip("="), payload, ""]
    )
    resigned = ".".join([header, payload, forged.split(".")[2]])

    for token in (forged, unsigned, resigned, "not-a-jwt", ""):
        with pytest.raises(Unauthenticated):
            verifier.verify(token, audience=_is_ours, email=TASKS)


def test_a_key_not_among_the_certificates_fetches_them_again_at_most_every_few_seconds(
    issuer: LocalIssuer, stranger: LocalIssuer
) -> None:
    verifier, certs = _verifier(issuer)
    verifier.verify(issuer.token(email=TASKS, audience=AUDIENCE), audience=_is_ours, email=TASKS)
    certs.issuer = stranger  # Google rotated its key: the new one signs, the endpoint lists it

    with pytest.raises(Unauthenticated):  # asked again too soon after the last fetch: not fetched
        verifier.verify(stranger.token(email=TASKS, audience=AUDIENCE), audience=_is_ours, email=TASKS)
    verifier._fetched_at -= 60
    verifier.verify(stranger.token(email=TASKS, audience=AUDIENCE), audience=_is_ours, email=TASKS)

    assert certs.fetches == 2


def test_certificates_that_cannot_be_fetched_are_a_retry_not_a_refusal(issuer: LocalIssuer) -> None:
    verifier, certs = _verifier(issuer)
    certs.down = True

    with pytest.raises(Unavailable):
        verifier.verify(issuer.token(email=TASKS, audience=AUDIENCE), audience=_is_ours, email=TASKS)


# -- the handlers, served as an instance serves them ---------------------------------------------------------------


@pytest.fixture
def instance(issuer: LocalIssuer, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, flask.Flask]]:
    verifier, _ = _verifier(issuer)
    monkeypatch.setattr(bootstrap, "oidc", lambda: verifier)
    monkeypatch.delenv("K_SERVICE", raising=False)
    # The local gateway's address, which AUDIENCE names, even when a test stack of the same run has set its own.
    monkeypatch.setenv("HALO_FUNCTIONS_BASE_URL", "http://127.0.0.1:5001")
    get_settings.cache_clear()
    yield {
        "task_project_outbox": functions_framework.create_app("task_project_outbox", str(ROOT / "main.py"), "http"),
        "outbox_sweep": functions_framework.create_app("outbox_sweep", str(ROOT / "main.py"), "cloudevent"),
    }
    get_settings.cache_clear()


def _task(app: flask.Flask, token: str | None, body: dict[str, Any]) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    response = app.test_client().post("/", json=body, headers=headers)
    return response.status_code, response.get_json(silent=True)


def _push(app: flask.Flask, token: str | None, data: bytes) -> tuple[int, Any]:
    envelope = {
        "message": {"data": base64.b64encode(data).decode(), "messageId": "m-1", "attributes": {}},
        "subscription": "projects/demo-halo/subscriptions/outbox-sweep--outbox_sweep",
    }
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    response = app.test_client().post("/projects/demo-halo/topics/outbox-sweep", json=envelope, headers=headers)
    return response.status_code, response.get_json(silent=True)


def test_a_task_handler_answers_401_to_a_direct_call_and_to_a_token_for_anything_else(
    instance: dict[str, flask.Flask], issuer: LocalIssuer, stranger: LocalIssuer
) -> None:
    app = instance["task_project_outbox"]
    # An empty `ids` never reaches the database: a caller that passes is answered "dropped".
    unparseable: dict[str, Any] = {"ids": []}

    refused = [
        _task(app, token, unparseable)
        for token in (
            None,
            "",
            issuer.token(email=TASKS, audience="http://127.0.0.1:5001/task_session_expire"),
            issuer.token(email=PUSH, audience=AUDIENCE),
            stranger.token(email=TASKS, audience=AUDIENCE),
        )
    ]

    assert [status for status, _ in refused] == [401] * 5
    assert {body["error"]["code"] for _, body in refused} == {"unauthenticated"}
    assert _task(app, issuer.token(email=TASKS, audience=AUDIENCE), unparseable) == (200, {"outcome": "dropped"})


def test_an_event_function_answers_401_to_a_push_without_the_push_accounts_token(
    instance: dict[str, flask.Flask], issuer: LocalIssuer, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = instance["outbox_sweep"]
    own = "http://127.0.0.1:5001/outbox_sweep"

    refused = [
        _push(app, token, b"not json")
        for token in (
            None,
            issuer.token(email=TASKS, audience=own),
            issuer.token(email=PUSH, audience="http://127.0.0.1:5001/on_notify"),
            issuer.token(email=PUSH, audience="https://outbox-sweep-abc123-et.a.run.app"),  # not this service
        )
    ]
    # An unparseable message is acknowledged without touching anything: a caller that passes gets 200.
    accepted = _push(app, issuer.token(email=PUSH, audience=own), b"not json")
    monkeypatch.setenv("K_SERVICE", "outbox-sweep")  # on Cloud Run, Eventarc's audience is the service's URL
    on_cloud_run = _push(app, issuer.token(email=PUSH, audience="https://outbox-sweep-abc123-et.a.run.app"), b"x")
    elsewhere = _push(app, issuer.token(email=PUSH, audience="https://on-notify-abc123-et.a.run.app"), b"x")

    assert [(status, body["error"]["code"]) for status, body in refused] == [(401, "unauthenticated")] * 4
    assert accepted[0] == 200
    assert on_cloud_run[0] == 200
    assert elsewhere[0] == 401


def test_an_event_function_whose_dependency_is_down_answers_503_for_pubsub_to_redeliver(
    instance: dict[str, flask.Flask],
    issuer: LocalIssuer,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def database_down() -> None:
        raise Unavailable("the database is unreachable; retry the request", retry_after_s=2)

    monkeypatch.setattr(bootstrap, "ports", database_down)
    token = issuer.token(email=PUSH, audience="http://127.0.0.1:5001/outbox_sweep")
    envelope = {
        "message": {"data": base64.b64encode(b"{}").decode(), "messageId": "m-2", "attributes": {}},
        "subscription": "projects/demo-halo/subscriptions/outbox-sweep--outbox_sweep",
    }

    with caplog.at_level("INFO"):
        response = (
            instance["outbox_sweep"]
            .test_client()
            .post(
                "/projects/demo-halo/topics/outbox-sweep", json=envelope, headers={"Authorization": f"Bearer {token}"}
            )
        )

    assert (response.status_code, response.headers["Retry-After"]) == (503, "2")
    assert response.get_json()["error"]["code"] == "unavailable"
    assert [r.getMessage() for r in caplog.records if r.levelname == "ERROR"] == [], "an outage is not a crash"
    assert "event will retry" in [r.getMessage() for r in caplog.records]
