"""The OIDC ID token Cloud Tasks attaches for a task's service account.

Unsigned (`alg: none`): locally there is no Google key to sign with and nothing that could check one, so handlers
running against the emulator must decode without verifying. The claims are the ones Google's ID tokens carry.
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

_ISSUER = "https://accounts.google.com"
_LIFETIME_S = 3600


def id_token(*, email: str, audience: str, now: float) -> str:
    subject = _subject(email)
    claims = {
        "iss": _ISSUER,
        "aud": audience,
        "azp": subject,
        "sub": subject,
        "email": email,
        "email_verified": True,
        "iat": int(now),
        "exp": int(now) + _LIFETIME_S,
    }
    return f"{_segment({'alg': 'none', 'typ': 'JWT'})}.{_segment(claims)}."


def _subject(email: str) -> str:
    # Google's `sub` is a stable numeric id per account; derive one so the same account always gets the same id.
    return str(int(hashlib.sha256(email.encode()).hexdigest()[:16], 16))


def _segment(part: dict[str, Any]) -> str:
    raw = json.dumps(part, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
