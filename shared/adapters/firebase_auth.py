"""Firebase Auth through firebase-admin: ID-token verification, role claims, revocation, deletion.

With FIREBASE_AUTH_EMULATOR_HOST set, firebase-admin talks to the Auth emulator and accepts its unsigned tokens;
in production the same calls verify Google-signed tokens.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from shared.domain.accounts import EmailSignIn
from shared.errors import Unauthenticated, Unavailable

_CLOCK_SKEW_S = 5
# Tokens verified recently, kept until they expire: an app sends the same ID token with every call for up to an hour,
# and checking its signature again proves nothing new. Calls that check revocation always ask Firebase.
_VERIFIED_CACHE_SIZE = 2048


@dataclass(frozen=True)
class VerifiedToken:
    uid: str
    claims: dict[str, Any]

    @property
    def role(self) -> str | None:
        role = self.claims.get("role")
        return role if isinstance(role, str) else None

    @property
    def auth_time(self) -> int:
        return int(self.claims.get("auth_time", 0))

    @property
    def phone_number(self) -> str | None:
        return self.claims.get("phone_number")

    @property
    def email(self) -> str | None:
        return self.claims.get("email") if self.claims.get("email_verified") else None

    @property
    def sign_in_provider(self) -> str | None:
        firebase = self.claims.get("firebase")
        return firebase.get("sign_in_provider") if isinstance(firebase, dict) else None


class FirebaseAuth:
    def __init__(self, project_id: str) -> None:
        self._project_id = project_id
        self._app: Any = None
        self._lock = threading.Lock()
        self._verified: OrderedDict[str, VerifiedToken] = OrderedDict()
        self._verified_lock = threading.Lock()

    def _auth(self) -> Any:
        with self._lock:
            if self._app is None:
                import firebase_admin

                name = f"halo-{self._project_id}"
                try:  # one app per project and process, shared by every FirebaseAuth of that project
                    self._app = firebase_admin.get_app(name)
                except ValueError:
                    self._app = firebase_admin.initialize_app(options={"projectId": self._project_id}, name=name)
        from firebase_admin import auth

        return auth

    def verify(self, id_token: str, *, check_revoked: bool = False) -> VerifiedToken:
        if not check_revoked:
            known = self._recently_verified(id_token)
            if known is not None:
                return known
        verified = self._verify(id_token, check_revoked=check_revoked)
        with self._verified_lock:
            self._verified[id_token] = verified
            self._verified.move_to_end(id_token)
            if len(self._verified) > _VERIFIED_CACHE_SIZE:
                self._verified.popitem(last=False)
        return verified

    def _recently_verified(self, id_token: str) -> VerifiedToken | None:
        """A token verified before and not expired since (an expired one is verified again, and refused)."""
        with self._verified_lock:
            known = self._verified.get(id_token)
            if known is None:
                return None
            if int(known.claims.get("exp", 0)) < time.time() - _CLOCK_SKEW_S:
                del self._verified[id_token]
                return None
            self._verified.move_to_end(id_token)
            return known

    def _verify(self, id_token: str, *, check_revoked: bool) -> VerifiedToken:
        auth = self._auth()
        try:
            claims = auth.verify_id_token(
                id_token, app=self._app, check_revoked=check_revoked, clock_skew_seconds=_CLOCK_SKEW_S
            )
        except auth.CertificateFetchError as exc:
            raise Unavailable("could not fetch the token signing keys") from exc
        except auth.ExpiredIdTokenError as exc:
            raise Unauthenticated("the ID token has expired") from exc
        except auth.RevokedIdTokenError as exc:
            raise Unauthenticated("the ID token has been revoked") from exc
        except auth.UserDisabledError as exc:
            raise Unauthenticated("this account is disabled") from exc
        except auth.UserNotFoundError as exc:
            raise Unauthenticated("this account no longer exists") from exc
        except (auth.InvalidIdTokenError, ValueError) as exc:
            raise Unauthenticated("the ID token is invalid") from exc
        # The Auth emulator's path skips the time checks; they are cheap, so they are made everywhere.
        now = time.time()
        if int(claims.get("exp", 0)) < now - _CLOCK_SKEW_S:
            raise Unauthenticated("the ID token has expired")
        if int(claims.get("iat", 0)) > now + _CLOCK_SKEW_S:
            raise Unauthenticated("the ID token is invalid")
        return VerifiedToken(uid=claims["uid"], claims=claims)

    def set_role(self, uid: str, role: str | None) -> None:
        auth = self._auth()
        try:
            auth.set_custom_user_claims(uid, {"role": role} if role else None, app=self._app)
        except auth.UserNotFoundError:
            if role is not None:
                raise

    def revoke_sessions(self, uid: str) -> None:
        """Nothing to revoke for a Firebase user that no longer exists."""
        auth = self._auth()
        try:
            auth.revoke_refresh_tokens(uid, app=self._app)
        except auth.UserNotFoundError:
            return

    def delete_user(self, uid: str) -> None:
        """A user that no longer exists is as good as deleted (a retried deletion)."""
        auth = self._auth()
        try:
            auth.delete_user(uid, app=self._app)
        except auth.UserNotFoundError:
            return

    def sign_in_for_email(self, email: str) -> EmailSignIn | None:
        auth = self._auth()
        try:
            user = auth.get_user_by_email(email, app=self._app)
        except auth.UserNotFoundError:
            return None
        return EmailSignIn(uid=str(user.uid), email_verified=bool(user.email_verified))

    def tokens_valid_after(self, uid: str) -> int:
        """Seconds since epoch before which this user's tokens are revoked (0 if never)."""
        user = self._auth().get_user(uid, app=self._app)
        return int((user.tokens_valid_after_timestamp or 0) / 1000)
