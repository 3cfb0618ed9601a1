"""The local stack's stand-in for Google's token signing: one RSA key, tokens signed with it as Google signs the OIDC
ID tokens Cloud Tasks and Pub/Sub push attach, and its certificate in the shape of Google's
https://www.googleapis.com/oauth2/v1/certs (`{key id: PEM certificate}`).

The stack creates the key once in its folder; the Tasks emulator and the push relay sign with it, and the functions
verify against the certificate the relay serves (`HALO_OIDC_CERTS_URL`), with the same code as in production.
"""

from __future__ import annotations

import hashlib
import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

ISSUER = "https://accounts.google.com"
LIFETIME_S = 3600


def ensure_key(path: Path) -> Path:
    """An RSA key at `path`, created (readable by its owner only) unless one is there."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as out:
            out.write(pem)
    return path


def google_claims(*, email: str, audience: str, now: float) -> dict[str, Any]:
    """The claims of a Google-signed ID token for a service account, issued at `now`."""
    issued = int(now)
    subject = LocalIssuer.subject(email)
    return {
        "iss": ISSUER,
        "aud": audience,
        "azp": subject,
        "sub": subject,
        "email": email,
        "email_verified": True,
        "iat": issued,
        "exp": issued + LIFETIME_S,
    }


class LocalIssuer:
    def __init__(self, key_path: Path) -> None:
        from google.auth import crypt

        pem = key_path.read_bytes()
        key = serialization.load_pem_private_key(pem, password=None)
        assert isinstance(key, rsa.RSAPrivateKey), f"{key_path} is not an RSA key"
        der = serialization.Encoding.DER
        public = key.public_key().public_bytes(der, serialization.PublicFormat.SubjectPublicKeyInfo)
        self.key_id = hashlib.sha256(public).hexdigest()[:40]
        self._signer = crypt.RSASigner.from_string(pem, key_id=self.key_id)  # type: ignore[no-untyped-call]
        self._certificate = _self_signed(key)

    def token(self, *, email: str, audience: str, now: float | None = None, **claims: Any) -> str:
        """An ID token with the claims Google's carry for a service account (`claims` adds or overrides some)."""
        from google.auth import jwt

        payload = {**google_claims(email=email, audience=audience, now=time.time() if now is None else now), **claims}
        return str(jwt.encode(self._signer, payload).decode())  # type: ignore[no-untyped-call]

    @staticmethod
    def subject(email: str) -> str:
        """Google's `sub` is a stable numeric id per account; the same account always gets the same one here."""
        return str(int(hashlib.sha256(email.encode()).hexdigest()[:16], 16))

    def certs(self) -> dict[str, str]:
        return {self.key_id: self._certificate}


def _self_signed(key: rsa.RSAPrivateKey) -> str:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "halo local oidc")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=365))
        .sign(key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.PEM).decode()
