"""Accounts' SQL: who a uid is, clients' profiles, mitras' sign-ins."""

from __future__ import annotations

from shared.adapters.postgres.database import Row
from shared.adapters.postgres.sql import Sql
from shared.domain.accounts import NOBODY, Client, Identity, Mitra
from shared.domain.roles import Role

_CLIENT = """id::text AS client_id, firebase_uid, display_name, anonymous, alias_number, phone, email,
             suspended_at IS NOT NULL AS suspended, created_at"""
_MITRA = "id::text AS mitra_id, firebase_uid, display_name, phone, active, presence"

# The rule `shared.domain.accounts.identity_of`: the first of a uid's accounts that counts, in one indexed statement
# (every authenticated call runs it, unless the instance's identity cache has the answer).
_IDENTITY = """
SELECT role, account_id, suspended FROM (
    SELECT 'admin' AS role, id::text AS account_id, false AS suspended, 1 AS rank
      FROM admins WHERE firebase_uid = :uid
    UNION ALL SELECT 'mitra', id::text, false, 2 FROM mitras WHERE firebase_uid = :uid AND active
    UNION ALL SELECT 'client', id::text, suspended_at IS NOT NULL, 3 FROM clients WHERE firebase_uid = :uid
) AS known ORDER BY rank LIMIT 1
"""


class AccountsRepository:
    def __init__(self, sql: Sql) -> None:
        self._sql = sql

    def identity(self, uid: str) -> Identity:
        row = self._sql.one(_IDENTITY, {"uid": uid})
        if row is None:
            return NOBODY
        return Identity(role=Role(row["role"]), account_id=row["account_id"], suspended=bool(row["suspended"]))

    def lock_sign_in(self, uid: str, *, phone: str | None = None, email: str | None = None) -> None:
        """Registrations and sign-ins touching the same uid, phone number or email wait for each other until the
        change ends, so what one checked is still true when it writes."""
        keys = [f"uid:{uid}", f"phone:{phone}" if phone else None, f"email:{email}" if email else None]
        for key in sorted(k for k in keys if k):
            self._sql.execute("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))", {"key": key})

    # -- clients -----------------------------------------------------------------------------------------------------

    def is_staff(self, uid: str) -> bool:
        """Whether a mitra (active or not) or an admin signs in with this uid."""
        return bool(
            self._sql.scalar(
                """SELECT EXISTS (SELECT 1 FROM mitras WHERE firebase_uid = :uid
                                  UNION ALL SELECT 1 FROM admins WHERE firebase_uid = :uid)""",
                {"uid": uid},
            )
        )

    def client_signed_in_as(self, uid: str) -> Client | None:
        return _client(self._sql.one(f"SELECT {_CLIENT} FROM clients WHERE firebase_uid = :uid", {"uid": uid}))

    def client_holding(self, *, phone: str | None, email: str | None) -> Client | None:
        """A client whose profile has this phone number or this email."""
        return _client(
            self._sql.one(
                f"SELECT {_CLIENT} FROM clients WHERE phone = :phone OR email = :email LIMIT 1",
                {"phone": phone, "email": email},
            )
        )

    def client(self, client_id: str) -> Client | None:
        return _client(self._sql.one(f"SELECT {_CLIENT} FROM clients WHERE id = CAST(:id AS uuid)", {"id": client_id}))

    def insert_client_if_alias_free(
        self, *, uid: str, display_name: str, phone: str | None, email: str | None, alias_number: int
    ) -> Client | None:
        """A new client; None when another client has drawn this alias (`shared.domain.accounts.draw_alias`)."""
        return _client(
            self._sql.one(
                f"""INSERT INTO clients (firebase_uid, display_name, phone, email, alias_number)
                    VALUES (:uid, :name, :phone, :email, :alias)
                    ON CONFLICT (alias_number) DO NOTHING RETURNING {_CLIENT}""",
                {"uid": uid, "name": display_name, "phone": phone, "email": email, "alias": alias_number},
            )
        )

    def move_client(self, client_id: str, *, uid: str, phone: str | None, email: str | None) -> Client:
        """The profile (and its history) now belongs to `uid`; the sign-in's phone and email join it."""
        moved = _client(
            self._sql.one(
                f"""UPDATE clients SET firebase_uid = :uid, phone = COALESCE(:phone, phone),
                           email = COALESCE(:email, email), updated_at = now()
                    WHERE id = CAST(:id AS uuid) RETURNING {_CLIENT}""",
                {"uid": uid, "phone": phone, "email": email, "id": client_id},
            )
        )
        assert moved is not None, "the caller holds the client's sign-in locks"
        return moved

    def update_client(self, client_id: str, *, display_name: str | None, anonymous: bool | None) -> Client | None:
        """Changes what is given and keeps the rest; None when there is no such client."""
        return _client(
            self._sql.one(
                f"""UPDATE clients SET display_name = COALESCE(:name, display_name),
                           anonymous = COALESCE(:anonymous, anonymous), updated_at = now()
                    WHERE id = CAST(:id AS uuid) RETURNING {_CLIENT}""",
                {"name": display_name, "anonymous": anonymous, "id": client_id},
            )
        )

    # -- mitras ------------------------------------------------------------------------------------------------------

    def mitra_by_phone(self, phone: str) -> Mitra | None:
        row = self._sql.one(f"SELECT {_MITRA} FROM mitras WHERE phone = :phone", {"phone": phone})
        return Mitra(**row) if row else None

    def is_client(self, uid: str) -> bool:
        return bool(self._sql.scalar("SELECT EXISTS (SELECT 1 FROM clients WHERE firebase_uid = :uid)", {"uid": uid}))

    def link_mitra(self, mitra_id: str, uid: str) -> None:
        """The mitra signs in as `uid` from now on."""
        self._sql.execute(
            "UPDATE mitras SET firebase_uid = :uid, updated_at = now() WHERE id = CAST(:id AS uuid)",
            {"uid": uid, "id": mitra_id},
        )


def _client(row: Row | None) -> Client | None:
    return Client(**row) if row else None
