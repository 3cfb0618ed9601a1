"""Registering clients, signing mitras in, reading and changing a client's profile."""

from __future__ import annotations

import itertools
import secrets
import time
from dataclasses import dataclass
from datetime import datetime

from shared.adapters.firebase_auth import VerifiedToken
from shared.adapters.postgres.database import Database, Row, Tx
from shared.domain import accounts
from shared.errors import Conflict, Forbidden, NotFound
from shared.services import audit, identity
from shared.services.ports import IdentityProvider

_CLIENT_COLUMNS = "id::text AS client_id, firebase_uid, display_name, anonymous, alias_number, phone, email, " \
    "suspended_at, created_at"  # fmt: skip
_MITRA_COLUMNS = "id::text AS mitra_id, firebase_uid, display_name, phone, active, presence"


@dataclass(frozen=True)
class ClientProfile:
    client_id: str
    display_name: str
    anonymous: bool
    alias: str
    phone: str | None
    email: str | None
    created_at: datetime

    @classmethod
    def from_row(cls, row: Row) -> ClientProfile:
        return cls(
            client_id=row["client_id"],
            display_name=row["display_name"],
            anonymous=row["anonymous"],
            alias=accounts.alias(row["alias_number"]),
            phone=row["phone"],
            email=row["email"],
            created_at=row["created_at"],
        )


@dataclass(frozen=True)
class MitraProfile:
    mitra_id: str
    display_name: str
    phone: str
    presence: str


def register_client(
    db: Database, idp: IdentityProvider, token: VerifiedToken, display_name: str, *, force: bool
) -> ClientProfile:
    """Idempotent for one uid. A phone or email that already belongs to another client is a 409, unless the caller
    forces a takeover right after a fresh sign-in: the profile (and its history) moves to the caller's uid."""
    if token.sign_in_provider not in accounts.CLIENT_PROVIDERS:
        raise Forbidden("clients sign in with Google, Apple or a phone number", code="unsupported_sign_in")
    phone, email = token.phone_number, token.email
    with db.transaction() as tx:
        _lock(tx, f"uid:{token.uid}", f"phone:{phone}" if phone else None, f"email:{email}" if email else None)
        if tx.scalar(
            "SELECT EXISTS (SELECT 1 FROM mitras WHERE firebase_uid = :uid UNION ALL "
            "SELECT 1 FROM admins WHERE firebase_uid = :uid)",
            {"uid": token.uid},
        ):
            raise Conflict("this sign-in belongs to a mitra or an admin", code="role_conflict")
        mine = tx.one(f"SELECT {_CLIENT_COLUMNS} FROM clients WHERE firebase_uid = :uid", {"uid": token.uid})
        previous_uid = None
        if mine is None:
            holder = tx.one(
                f"SELECT {_CLIENT_COLUMNS} FROM clients WHERE phone = :phone OR email = :email LIMIT 1",
                {"phone": phone, "email": email},
            )
            if holder is None:
                mine = _insert_client(tx, token.uid, display_name, phone, email)
            else:
                mine = _take_over(tx, holder, token, force=force)
                previous_uid = holder["firebase_uid"]
        if mine["suspended_at"] is not None:
            raise Forbidden("this account is suspended", code="suspended")
    idp.set_role(token.uid, "client")
    identity.forget(token.uid)
    if previous_uid:
        idp.revoke_sessions(previous_uid)
        idp.set_role(previous_uid, None)
        identity.forget(previous_uid)
    return ClientProfile.from_row(mine)


def _take_over(tx: Tx, holder: Row, token: VerifiedToken, *, force: bool) -> Row:
    if not force:
        raise Conflict(
            "this phone number or email already has a Halo Bestie account; confirm with force to continue there",
            code="account_exists",
        )
    if not accounts.takeover_allowed(token.auth_time, time.time()):
        raise Forbidden("sign in again (a fresh OTP) before taking this account over", code="recent_sign_in_required")
    moved = tx.one(
        f"""UPDATE clients SET firebase_uid = :uid, phone = COALESCE(:phone, phone), email = COALESCE(:email, email),
                  updated_at = now()
            WHERE id = CAST(:id AS uuid) RETURNING {_CLIENT_COLUMNS}""",
        {"uid": token.uid, "phone": token.phone_number, "email": token.email, "id": holder["client_id"]},
    )
    audit.record(tx, actor_uid=token.uid, actor_role="client", action="client.takeover", target=holder["client_id"],
                 old={"firebase_uid": holder["firebase_uid"]}, new={"firebase_uid": token.uid})  # fmt: skip
    assert moved is not None
    return moved


def _insert_client(tx: Tx, uid: str, display_name: str, phone: str | None, email: str | None) -> Row:
    # Aliases are random so they say nothing about sign-up order; a collision draws again, from a wider range
    # once four digits get crowded.
    for attempt in itertools.count():
        row = tx.one(
            f"""INSERT INTO clients (firebase_uid, display_name, phone, email, alias_number)
                VALUES (:uid, :name, :phone, :email, :alias)
                ON CONFLICT (alias_number) DO NOTHING RETURNING {_CLIENT_COLUMNS}""",
            {"uid": uid, "name": display_name, "phone": phone, "email": email,
             "alias": 1000 + secrets.randbelow(9000 if attempt < 5 else 999_000)},
        )  # fmt: skip
        if row is not None:
            return row
    raise AssertionError("unreachable")


def get_client(db: Database, client_id: str) -> ClientProfile:
    row = db.read_one(f"SELECT {_CLIENT_COLUMNS} FROM clients WHERE id = CAST(:id AS uuid)", {"id": client_id})
    if row is None:
        raise NotFound("no such client")
    return ClientProfile.from_row(row)


def update_client(db: Database, client_id: str, *, display_name: str | None, anonymous: bool | None) -> ClientProfile:
    with db.transaction() as tx:
        row = tx.one(
            f"""UPDATE clients SET display_name = COALESCE(:name, display_name),
                       anonymous = COALESCE(:anonymous, anonymous), updated_at = now()
                WHERE id = CAST(:id AS uuid) RETURNING {_CLIENT_COLUMNS}""",
            {"name": display_name, "anonymous": anonymous, "id": client_id},
        )
    if row is None:
        raise NotFound("no such client")
    return ClientProfile.from_row(row)


def mitra_login(db: Database, idp: IdentityProvider, token: VerifiedToken) -> MitraProfile:
    """Only a phone sign-in whose number an admin registered as an active mitra."""
    if token.sign_in_provider != accounts.MITRA_PROVIDER or not token.phone_number:
        raise Forbidden("mitras sign in with the phone number registered by Halo Bestie", code="not_a_mitra")
    with db.transaction() as tx:
        _lock(tx, f"uid:{token.uid}", f"phone:{token.phone_number}")
        mitra = tx.one(f"SELECT {_MITRA_COLUMNS} FROM mitras WHERE phone = :phone", {"phone": token.phone_number})
        if mitra is not None and mitra["active"]:
            if tx.scalar("SELECT EXISTS (SELECT 1 FROM clients WHERE firebase_uid = :uid)", {"uid": token.uid}):
                raise Conflict("this phone number is registered as a client", code="role_conflict")
            if mitra["firebase_uid"] != token.uid:
                tx.execute(
                    "UPDATE mitras SET firebase_uid = :uid, updated_at = now() WHERE id = CAST(:id AS uuid)",
                    {"uid": token.uid, "id": mitra["mitra_id"]},
                )
    if mitra is None or not mitra["active"]:
        if mitra is not None:
            # A deactivated mitra keeps no session anywhere.
            idp.revoke_sessions(token.uid)
            idp.set_role(token.uid, None)
        raise Forbidden("this phone number does not belong to an active mitra", code="not_a_mitra")
    idp.set_role(token.uid, "mitra")
    identity.forget(token.uid)
    previous_uid = mitra["firebase_uid"]
    if previous_uid and previous_uid != token.uid:
        idp.revoke_sessions(previous_uid)
        idp.set_role(previous_uid, None)
        identity.forget(previous_uid)
    return MitraProfile(
        mitra_id=mitra["mitra_id"], display_name=mitra["display_name"], phone=mitra["phone"], presence=mitra["presence"]
    )


def _lock(tx: Tx, *keys: str | None) -> None:
    """Serialise registrations touching the same uid, phone or email (checked, then written, safely)."""
    for key in sorted(k for k in keys if k):
        tx.execute("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))", {"key": key})
