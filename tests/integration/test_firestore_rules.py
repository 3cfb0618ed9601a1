"""firestore.rules, proven against the Firestore emulator with users' own tokens: each app reads only what is
about its user, nothing with a sign-in the backend has revoked, and no app writes anything."""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import requests

from emulators.stack import PROJECT, LocalStack

pytestmark = pytest.mark.needs_gcloud


@dataclass(frozen=True)
class World:
    client: str
    other_client: str
    mitra: str
    other_mitra: str
    admin: str
    request_id: str
    session_id: str
    message_id: str


def _token(uid: str, role: str | None = None, *, auth_time: int | None = None) -> str:
    now = int(time.time())
    claims = {
        "sub": uid,
        "user_id": uid,
        "aud": PROJECT,
        "iss": f"https://securetoken.google.com/{PROJECT}",
        "iat": now,
        "exp": now + 3600,
        "auth_time": now if auth_time is None else auth_time,
        "firebase": {"sign_in_provider": "phone"},
    }
    if role:
        claims["role"] = role
    parts = [{"alg": "none", "typ": "JWT"}, claims]
    return ".".join(base64.urlsafe_b64encode(json.dumps(p).encode()).decode().rstrip("=") for p in parts) + "."


def _documents(stack: LocalStack) -> str:
    return f"http://127.0.0.1:{stack.ports.firestore}/v1/projects/{PROJECT}/databases/(default)/documents"


@pytest.fixture(scope="module")
def world(stack: LocalStack) -> Iterator[World]:
    from google.cloud import firestore

    ids = {name: f"{name}-{uuid.uuid4().hex[:8]}" for name in ("client", "other", "mitra", "other_mitra", "admin")}
    w = World(
        ids["client"],
        ids["other"],
        ids["mitra"],
        ids["other_mitra"],
        ids["admin"],
        str(uuid.uuid4()),
        str(uuid.uuid4()),
        str(uuid.uuid4()),
    )
    db = firestore.Client(project=PROJECT)
    db.document(f"pairing_requests/{w.request_id}").set({"client_uid": w.client, "status": "searching"})
    db.document(f"mitras/{w.mitra}/offers/{w.request_id}").set({"client_name": "Bestie #1234"})
    db.document(f"sessions/{w.session_id}").set({"participant_uids": [w.client, w.mitra], "status": "active"})
    db.document(f"sessions/{w.session_id}/messages/{w.message_id}").set({"text": "halo", "seq": 1})
    db.document(f"payments/{w.request_id}").set({"client_uid": w.client, "status": "pending"})
    db.document("admin_alerts/a1").set({"kind": "crisis"})
    db.document("secrets/x").set({"nothing": "for apps"})
    yield w


def _read(stack: LocalStack, path: str, uid: str | None, role: str | None = None, auth_time: int | None = None) -> int:
    headers = {"Authorization": f"Bearer {_token(uid, role, auth_time=auth_time)}"} if uid else {}
    return requests.get(f"{_documents(stack)}/{path}", headers=headers, timeout=10).status_code


def _write(stack: LocalStack, path: str, uid: str, role: str | None = None) -> int:
    response = requests.patch(
        f"{_documents(stack)}/{path}",
        json={"fields": {"status": {"stringValue": "hacked"}}},
        headers={"Authorization": f"Bearer {_token(uid, role)}"},
        timeout=10,
    )
    return response.status_code


def _cases(w: World) -> list[tuple[str, str, str | None, bool]]:
    """(path, uid, role claim, may read)."""
    request, offer = f"pairing_requests/{w.request_id}", f"mitras/{w.mitra}/offers/{w.request_id}"
    session, message = f"sessions/{w.session_id}", f"sessions/{w.session_id}/messages/{w.message_id}"
    payment = f"payments/{w.request_id}"
    return [
        (request, w.client, "client", True),
        (request, w.other_client, "client", False),
        (request, w.mitra, "mitra", False),
        (offer, w.mitra, "mitra", True),
        (offer, w.other_mitra, "mitra", False),
        (offer, w.client, "client", False),
        (session, w.client, "client", True),
        (session, w.mitra, "mitra", True),
        (session, w.other_client, "client", False),
        (session, w.other_mitra, "mitra", False),
        (message, w.client, "client", True),
        (message, w.mitra, "mitra", True),
        (message, w.other_mitra, "mitra", False),
        (message, w.other_client, "client", False),
        (payment, w.client, "client", True),
        (payment, w.other_client, "client", False),
        ("admin_alerts/a1", w.admin, "admin", True),
        ("admin_alerts/a1", w.client, "client", False),
        ("admin_alerts/a1", w.mitra, "mitra", False),
        ("secrets/x", w.admin, "admin", False),
        ("secrets/x", w.client, "client", False),
    ]


def test_each_user_reads_only_what_is_about_them(stack: LocalStack, world: World) -> None:
    outcomes = {(path, uid): _read(stack, path, uid, role) for path, uid, role, _ in _cases(world)}

    expected = {(path, uid): 200 if allowed else 403 for path, uid, _, allowed in _cases(world)}
    assert outcomes == expected


def test_nobody_signed_out_reads_anything(stack: LocalStack, world: World) -> None:
    for path, *_ in _cases(world):
        assert _read(stack, path, None) == 403, path


def test_no_app_writes_anything_anywhere(stack: LocalStack, world: World) -> None:
    targets = {path for path, *_ in _cases(world)} | {
        f"sessions/{world.session_id}/messages/new",
        "pairing_requests/new",
    }
    for path in sorted(targets):
        for uid, role in ((world.client, "client"), (world.mitra, "mitra"), (world.admin, "admin")):
            assert _write(stack, path, uid, role) == 403, (path, role)


def test_a_revoked_sign_in_reads_nothing_and_a_blocked_uid_nothing_however_it_signs_in(
    stack: LocalStack, world: World
) -> None:
    """`revocations/{uid}` (shared.domain.accounts.revocation_document): every document a user could read is closed
    to a token signed in before the revocation, and to every token of a blocked uid."""
    from google.cloud import firestore

    db = firestore.Client(project=PROJECT)
    revoked_at = int(time.time())
    before, after = revoked_at - 60, revoked_at + 1
    readable = [(path, uid, role) for path, uid, role, allowed in _cases(world) if allowed]
    assert all(_read(stack, path, uid, role, before) == 200 for path, uid, role in readable), "nothing revoked yet"

    for uid in {uid for _, uid, _ in readable}:
        db.document(f"revocations/{uid}").set({"tokens_valid_after": revoked_at, "blocked": False})
    old_sign_ins = {path: _read(stack, path, uid, role, before) for path, uid, role in readable}
    new_sign_ins = {path: _read(stack, path, uid, role, after) for path, uid, role in readable}
    for uid in {uid for _, uid, _ in readable}:
        db.document(f"revocations/{uid}").set({"tokens_valid_after": revoked_at, "blocked": True})
    blocked = {path: _read(stack, path, uid, role, after) for path, uid, role in readable}
    for uid in {uid for _, uid, _ in readable}:
        db.document(f"revocations/{uid}").delete()

    assert set(old_sign_ins.values()) == {403}, old_sign_ins
    assert set(new_sign_ins.values()) == {200}, new_sign_ins
    assert set(blocked.values()) == {403}, blocked
    assert _read(stack, f"revocations/{world.client}", world.client, "client") == 403, "nobody reads revocations"
