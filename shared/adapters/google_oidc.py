"""Google-signed OIDC ID tokens: what Cloud Tasks and Pub/Sub push attach to every call of an internal function.

IAM already lets only the tasks invoker and the Eventarc account invoke those functions; the functions check the
token themselves as well (defence in depth: one wrong IAM binding must not let anyone call them). A token passes when
its RS256 signature verifies against the certificates at `certs_url` (Google's, in production; the local stack's own
key, locally), its issuer is Google's, it is neither expired nor issued in the future, its audience is one the
function answers to, and its `email` is the expected service account, verified.

Certificates are fetched once and kept as long as their Cache-Control says; a token signed with a key not among them
(Google rotates its keys) fetches them again, at most every few seconds.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from shared.errors import Unauthenticated, Unavailable

GOOGLE_CERTS_URL = "https://www.googleapis.com/oauth2/v1/certs"
ISSUERS = frozenset({"https://accounts.google.com", "accounts.google.com"})
_CLOCK_SKEW_S = 10
_DEFAULT_MAX_AGE_S = 300.0
_REFETCH_AT_MOST_EVERY_S = 5.0
_MAX_AGE = re.compile(r"max-age=(\d+)")

Fetch = Callable[[str], tuple[dict[str, str], float | None]]


def fetch_certs(url: str) -> tuple[dict[str, str], float | None]:
    """`{key id: PEM certificate}` and how long it may be kept (seconds), or None when the server does not say."""
    import requests

    try:
        response = requests.get(url, timeout=5)
        response.raise_for_status()
        certs = response.json()
    except requests.RequestException as exc:
        raise OSError(f"{url}: {exc}") from exc
    cache_control = response.headers.get("Cache-Control", "")
    if not isinstance(certs, dict) or not all(isinstance(v, str) for v in certs.values()):
        raise ValueError(f"{url} did not answer with a map of certificates")
    found = _MAX_AGE.search(cache_control)
    return certs, float(found.group(1)) if found else None


class OidcVerifier:
    def __init__(self, certs_url: str = GOOGLE_CERTS_URL, *, fetch: Fetch = fetch_certs) -> None:
        self._certs_url = certs_url
        self._fetch = fetch
        self._certs: dict[str, str] = {}
        self._expires_at = 0.0
        self._fetched_at = 0.0
        self._lock = threading.Lock()

    def verify(self, token: str, *, audience: Callable[[str], bool], email: str) -> Mapping[str, Any]:
        """The token's claims; Unauthenticated naming what is wrong, or Unavailable when the certificates cannot
        be fetched (the caller retries: Cloud Tasks and Pub/Sub do). `audience` says which audiences the function
        answers to."""
        from google.auth import jwt

        try:
            header = jwt.decode_header(token)  # type: ignore[no-untyped-call]
        except (ValueError, TypeError) as exc:
            raise Unauthenticated("the caller's token is not a JWT") from exc
        certs = self._certs_for(str(header.get("kid", "")))
        try:
            claims: Mapping[str, Any] = jwt.decode(  # type: ignore[no-untyped-call]
                token, certs=certs, clock_skew_in_seconds=_CLOCK_SKEW_S
            )
        except (ValueError, TypeError) as exc:
            raise Unauthenticated(f"the caller's token was refused: {_reason(exc)}") from exc
        if claims.get("iss") not in ISSUERS:
            raise Unauthenticated("the caller's token was not issued by Google")
        if not isinstance(claims.get("aud"), str) or not audience(claims["aud"]):
            raise Unauthenticated("the caller's token is meant for another audience")
        if str(claims.get("email", "")).lower() != email.lower() or claims.get("email_verified") is not True:
            raise Unauthenticated("the caller's token is not the expected service account's")
        return claims

    def _certs_for(self, key_id: str) -> dict[str, str]:
        with self._lock:
            now = time.monotonic()
            stale = now >= self._expires_at
            unknown = key_id not in self._certs and now - self._fetched_at >= _REFETCH_AT_MOST_EVERY_S
            if stale or unknown:
                try:
                    certs, max_age = self._fetch(self._certs_url)
                except (OSError, ValueError) as exc:
                    if not self._certs:
                        raise Unavailable("the token signing certificates cannot be fetched; retry") from exc
                else:
                    self._certs, self._fetched_at = certs, now
                    self._expires_at = now + (max_age if max_age is not None else _DEFAULT_MAX_AGE_S)
            return self._certs


def _reason(exc: BaseException) -> str:
    """google-auth's message up to any colon (after one it may quote the token itself)."""
    text = str(exc).split(":", 1)[0].strip()
    return text[:80] or type(exc).__name__
