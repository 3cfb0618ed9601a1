"""Seed data for the local stack: the admin, three mitras. Tiers and config come from the migrations."""

from __future__ import annotations

import json
import urllib.request

from shared.adapters.postgres.database import Database

ADMIN_EMAIL = "admin@halo.local"
ADMIN_PASSWORD = "halo-dev-admin"  # emulator only
MITRAS = [
    ("+6281100000001", "Mitra Anisa"),
    ("+6281100000002", "Mitra Budi"),
    ("+6281100000003", "Mitra Citra"),
]


def seed_database(db: Database) -> None:
    with db.transaction() as tx:
        for phone, name in MITRAS:
            tx.execute(
                "INSERT INTO mitras (phone, display_name) VALUES (:phone, :name) ON CONFLICT (phone) DO NOTHING",
                {"phone": phone, "name": name},
            )


def seed_auth(auth_url: str, project: str, db: Database) -> str:
    """Create the admin in the Auth emulator with the `admin` role claim and record it; returns its uid."""
    admin_api = f"{auth_url}/identitytoolkit.googleapis.com/v1/projects/{project}"
    kept = _post(f"{admin_api}/accounts:lookup", {"email": [ADMIN_EMAIL]}).get("users")  # a kept stack has it
    if kept:
        uid = str(kept[0]["localId"])  # type: ignore[index]
    else:
        created = _post(
            f"{admin_api}/accounts", {"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD, "emailVerified": True}
        )
        uid = str(created["localId"])
    _post(f"{admin_api}/accounts:update", {"localId": uid, "customAttributes": json.dumps({"role": "admin"})})
    with db.transaction() as tx:
        tx.execute(
            """INSERT INTO admins (firebase_uid, email, created_by) VALUES (:uid, :email, 'seed')
               ON CONFLICT (email) DO UPDATE SET firebase_uid = EXCLUDED.firebase_uid""",
            {"uid": uid, "email": ADMIN_EMAIL},
        )
    return uid


def _post(url: str, body: dict[str, object]) -> dict[str, object]:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        method="POST",
        # The emulator accepts "owner" as an admin credential.
        headers={"Content-Type": "application/json", "Authorization": "Bearer owner"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return dict(json.loads(response.read()))
