"""Verified ID tokens are remembered until they expire (an app sends the same token with every call), against the
Auth emulator: a remembered token is not verified again, an expired one is refused, revocation checks always ask
Firebase, and the memory is bounded."""

from __future__ import annotations

import time
import uuid

import pytest

from emulators.simulator import AuthEmulator, Session
from emulators.stack import PROJECT, LocalStack
from shared.adapters import firebase_auth
from shared.adapters.firebase_auth import FirebaseAuth, VerifiedToken
from shared.errors import Unauthenticated

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
