"""The OIDC ID token Cloud Tasks attaches for a task's service account.

Signed as Google signs it (RS256, with a key id) when the emulator is given a key (`--oidc-key`: the local stack's,
emulators/oidc_issuer.py, whose certificate the functions verify against); unsigned (`alg: none`) without one, which
no handler accepts. The claims are the ones Google's ID tokens carry.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from emulators.oidc_issuer import LocalIssuer, google_claims


def issuer_for(key_path: Path | None) -> LocalIssuer | None:
    return LocalIssuer(key_path) if key_path is not None else None


def id_token(*, email: str, audience: str, now: float, issuer: LocalIssuer | None = None) -> str:
    if issuer is not None:
        return issuer.token(email=email, audience=audience, now=now)
    claims = google_claims(email=email, audience=audience, now=now)
    return f"{_segment({'alg': 'none', 'typ': 'JWT'})}.{_segment(claims)}."


def _segment(part: dict[str, Any]) -> str:
    raw = json.dumps(part, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
