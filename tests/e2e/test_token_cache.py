"""Verified ID tokens are remembered until they expire (an app sends the same token with every call), against the
Auth emulator: a remembered token is not verified again, an expired one is refused, revocation checks always ask
Firebase, and the memory is bounded. Yet a suspended client or a deactivated mitra is refused within seconds, with the
very token the gateway remembers, by every function reading or changing session content and by firestore.rules."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable

import pytest
import requests

from emulators.simulator import App, AuthEmulator, Reply, Session
from emulators.stack import PROJECT, LocalStack
from shared.adapters import firebase_auth
from shared.adapters.firebase_auth import FirebaseAuth, VerifiedToken
from shared.adapters.postgres.database import Database
from shared.errors import Unauthenticated
from tests.support.people import Pair, uid_of

pytestmark = pytest.mark.needs_gcloud


class CountingAuth(FirebaseAuth):
    """Counts the verifications that reach firebase-admin."""

    def __init__(self) -> None:
        super().__init__(PROJECT)
        self.asked: list[bool] = []

    def _verify(self, id_token: str, *, check_revoked: bool) -> VerifiedToken:
        self.asked.append(check_revoked)
        return super()._verify(id_token, check_revoked=check_revoked)


@pytest.fixture
def firebase(stack: LocalStack) -> CountingAuth:
    return CountingAuth()


def _user(auth: AuthEmulator) -> Session:
    return auth.sign_in_with_google(f"{uuid.uuid4().hex[:10]}@example.com")


def test_a_token_verified_once_is_not_verified_again(firebase: CountingAuth, auth: AuthEmulator) -> None:
    session = _user(auth)

    first = firebase.verify(session.id_token)
    again = firebase.verify(session.id_token)

    assert again == first and again.uid == session.uid
    assert firebase.asked == [False]


def test_revocation_checks_always_ask_firebase(firebase: CountingAuth, auth: AuthEmulator) -> None:
    session = _user(auth)
    firebase.verify(session.id_token)

    firebase.verify(session.id_token, check_revoked=True)
    time.sleep(1.1)  # revocation is to the second: tokens issued before this second are refused
    firebase.revoke_sessions(session.uid)

    with pytest.raises(Unauthenticated, match="revoked"):
        firebase.verify(session.id_token, check_revoked=True)
    assert firebase.asked == [False, True, True]


def test_a_remembered_token_that_has_expired_is_refused(
    firebase: CountingAuth, auth: AuthEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    session = _user(auth)
    expires = int(time.time()) + 60
    token = AuthEmulator.altered_token(session, exp=expires)
    firebase.verify(token)

    class Later:
        @staticmethod
        def time() -> float:
            return expires + 10.0

    monkeypatch.setattr(firebase_auth, "time", Later)
    with pytest.raises(Unauthenticated, match="expired"):
        firebase.verify(token)
    assert firebase.asked == [False, False], "the expired token was verified again, not taken from memory"


def test_the_memory_keeps_the_most_recently_used_tokens(
    firebase: CountingAuth, auth: AuthEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(firebase_auth, "_VERIFIED_CACHE_SIZE", 2)
    sessions = [_user(auth) for _ in range(3)]
    first, second, third = (session.id_token for session in sessions)

    firebase.verify(first)
    firebase.verify(second)
    firebase.verify(first)  # used again: now the most recent
    firebase.verify(third)  # pushes out `second`
    asked = len(firebase.asked)
    firebase.verify(first)
    firebase.verify(third)
    assert len(firebase.asked) == asked, "the two most recently used are remembered"
    firebase.verify(second)
    assert len(firebase.asked) == asked + 1, "the least recently used was forgotten"


# -- refused within seconds, on the real stack -------------------------------------------------------------------------

# How long a refusal may take: the identity cache's life in production (shared/config.py identity_cache_s), far
# below a cached token's hour.
REFUSED_WITHIN_S = 5.0


def _firestore_as(app: App, path: str) -> int:
    """Read a document as this app's user, so firestore.rules decide (the Admin path would bypass them)."""
    url = f"http://{os.environ['FIRESTORE_EMULATOR_HOST']}/v1/projects/{PROJECT}/databases/(default)/documents/{path}"
    assert app.session is not None
    return requests.get(url, headers={"Authorization": f"Bearer {app.session.id_token}"}, timeout=10).status_code


def _refused_by(deadline: float, call: Callable[[], int]) -> int:
    """Ask until refused (401 or 403) or the deadline passes; the last answer."""
    while True:
        status = call()
        if status in (401, 403) or time.monotonic() >= deadline:
            return status
        time.sleep(0.1)


@pytest.mark.parametrize("who", ["suspended client", "deactivated mitra"])
def test_a_suspended_or_deactivated_account_is_refused_within_seconds_with_the_token_the_gateway_remembers(
    who: str, admin: App, paired: Callable[..., Pair], halo_db: Database
) -> None:
    pair = paired()
    person = pair.client if who == "suspended client" else pair.mitra
    session_id = pair.session_id

    def send() -> Reply:
        return person.post(
            "chat_send", {"session_id": session_id, "client_message_id": str(uuid.uuid4()), "text": "masih di sini"}
        )

    calls: dict[str, Callable[[], Reply]] = {
        "chat_send": send,
        "chat_history": lambda: person.get("chat_history", session_id=session_id),
        "session_transcript": lambda: person.get("session_transcript", session_id=session_id),
        "sessions_list": lambda: person.get("sessions_list"),
    }
    served = {name: call() for name, call in calls.items()}  # the gateway now remembers the token and who it is
    assert {name: reply.status for name, reply in served.items()} == dict.fromkeys(calls, 200), served
    documents = [f"sessions/{session_id}", f"sessions/{session_id}/messages/{served['chat_send'].body['message_id']}"]
    assert [_firestore_as(person, path) for path in documents] == [200, 200]
    assert person.session is not None
    token = person.session.id_token

    with halo_db.transaction() as tx:
        if who == "suspended client":
            account = tx.scalar("SELECT id::text FROM clients WHERE firebase_uid = :u", {"u": uid_of(person)})
            change = {"action": "suspend", "client_id": account, "reason": "abusive messages"}
        else:
            account = tx.scalar("SELECT id::text FROM mitras WHERE firebase_uid = :u", {"u": uid_of(person)})
            change = {"action": "deactivate", "mitra_id": account}
    reply = admin.post("admin_users" if who == "suspended client" else "admin_mitras", change)
    assert reply.status == 200, reply.body
    deadline = time.monotonic() + REFUSED_WITHIN_S

    refused = {name: _refused_by(deadline, _status_of(call)) for name, call in calls.items()}
    assert all(status in (401, 403) for status in refused.values()), refused
    assert [_refused_by(deadline, _read_of(person, path)) for path in documents] == [403, 403]
    assert person.session.id_token == token, "the same token throughout: refused long before it expires"
    other = pair.mitra if who == "suspended client" else pair.client
    assert [_firestore_as(other, path) for path in documents] == [200, 200], "the other participant still reads"


def _status_of(call: Callable[[], Reply]) -> Callable[[], int]:
    return lambda: call().status


def _read_of(app: App, path: str) -> Callable[[], int]:
    return lambda: _firestore_as(app, path)
