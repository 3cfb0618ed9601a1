"""Accounts' SQL: who a uid is, clients' profiles, mitras' sign-ins."""

from __future__ import annotations

from shared.adapters.postgres.database import Row
from shared.adapters.postgres.sql import Sql
from shared.domain.accounts import Client, Identity, Mitra, OpenSession, RelinkStatus, Revocation, Takeover
from shared.domain.roles import Role

_CLIENT = """id::text AS client_id, firebase_uid, display_name, anonymous, alias_number, phone, email,
             suspended_at IS NOT NULL AS suspended, created_at, push_previews, history_from, locale"""
_MITRA = "id::text AS mitra_id, firebase_uid, display_name, phone, active, presence, locale"

# The rule `shared.domain.accounts.identity_of`: the first of a uid's accounts that counts, and the uid's last
# revocation (`sign_in_revoked`), in one indexed statement (every authenticated call runs it, unless the instance's
# identity cache has the answer).
_IDENTITY = """
SELECT known.role, known.account_id, COALESCE(known.suspended, false) AS suspended, r.tokens_valid_after
FROM (SELECT 1) AS one
LEFT JOIN LATERAL (
    SELECT 'admin' AS role, id::text AS account_id, false AS suspended, 1 AS rank
      FROM admins WHERE firebase_uid = :uid
    UNION ALL SELECT 'mitra', id::text, false, 2 FROM mitras WHERE firebase_uid = :uid AND active
    UNION ALL SELECT 'client', id::text, suspended_at IS NOT NULL, 3 FROM clients WHERE firebase_uid = :uid
    ORDER BY rank LIMIT 1
) AS known ON true
LEFT JOIN sign_in_revocations r ON r.firebase_uid = :uid
"""

# Who may read each open session of a client or a mitra now: the client unless suspended or deleted, the mitra
# while active (shared.domain.accounts.readers_document). The sessions stay locked until the change ends, so the
# session documents' versions follow the order of the changes (shared/domain/projection.py).
_OPEN_SESSIONS = """
SELECT s.id::text AS session_id,
       array_remove(ARRAY[CASE WHEN c.suspended_at IS NULL THEN c.firebase_uid END,
                          CASE WHEN m.active THEN m.firebase_uid END], NULL) AS readers
FROM sessions s JOIN clients c ON c.id = s.client_id JOIN mitras m ON m.id = s.mitra_id
WHERE s.status IN ('active', 'closing')
  AND (s.client_id = CAST(:client AS uuid) OR s.mitra_id = CAST(:mitra AS uuid))
ORDER BY s.id
FOR UPDATE OF s
"""


class AccountsRepository:
    def __init__(self, sql: Sql) -> None:
        self._sql = sql

    def identity(self, uid: str) -> Identity:
        row = self._sql.one(_IDENTITY, {"uid": uid})
        assert row is not None, "the statement always answers one row"
        return Identity(
            role=Role(row["role"]) if row["role"] else None,
            account_id=row["account_id"],
            suspended=bool(row["suspended"]),
            tokens_valid_after=row["tokens_valid_after"],
        )

    # -- revocation --------------------------------------------------------------------------------------------------

    def revoke_sign_ins(self, uid: str, *, block: bool) -> Revocation:
        """Sign-ins of `uid` from before now are refused (`shared.domain.accounts.sign_in_revoked`); with `block`,
        the uid reads no Firestore document until `unblock`. The row stays locked until the change ends."""
        row = self._sql.one(
            """INSERT INTO sign_in_revocations (firebase_uid, tokens_valid_after, blocked) VALUES (:uid, now(), :block)
               ON CONFLICT (firebase_uid) DO UPDATE
               SET tokens_valid_after = GREATEST(sign_in_revocations.tokens_valid_after, now()),
                   blocked = sign_in_revocations.blocked OR EXCLUDED.blocked, updated_at = now()
               RETURNING tokens_valid_after, blocked""",
            {"uid": uid, "block": block},
        )
        assert row is not None
        return Revocation(**row)

    def unblock(self, uid: str) -> Revocation | None:
        """The uid may read its documents again once it signs in anew; None when it was never revoked."""
        row = self._sql.one(
            """UPDATE sign_in_revocations SET blocked = false, updated_at = now() WHERE firebase_uid = :uid
               RETURNING tokens_valid_after, blocked""",
            {"uid": uid},
        )
        return Revocation(**row) if row else None

    def open_sessions_of(self, *, client_id: str | None = None, mitra_id: str | None = None) -> list[OpenSession]:
        """The open sessions of this client or this mitra, locked, with who may read each now."""
        rows = self._sql.all(_OPEN_SESSIONS, {"client": client_id, "mitra": mitra_id})
        return [OpenSession(row["session_id"], list(row["readers"])) for row in rows]

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

    def record_takeover(self, client_id: str, *, from_uid: str, to_uid: str, sign_in_provider: str) -> None:
        """The rule `shared.domain.accounts.client_sees_session`: the profile's conversations until now are hidden
        from the new login; the takeover remembers what a confirmation gives back."""
        self._sql.execute(
            """WITH before AS (SELECT history_from FROM clients WHERE id = CAST(:id AS uuid)),
                    recorded AS (
                        INSERT INTO client_takeovers
                            (client_id, from_uid, to_uid, sign_in_provider, history_from_before)
                        SELECT CAST(:id AS uuid), :from_uid, :to_uid, :provider, history_from FROM before)
               UPDATE clients SET history_from = now(), updated_at = now() WHERE id = CAST(:id AS uuid)""",
            {"id": client_id, "from_uid": from_uid, "to_uid": to_uid, "provider": sign_in_provider},
        )

    def takeover_to_confirm(self, from_uid: str) -> Takeover | None:
        """The unconfirmed takeover from this login of a profile the takeover's new login still holds, and the
        profile's latest (an older one is no longer the previous login's to give)."""
        row = self._sql.one(
            """SELECT t.id::text AS takeover_id, t.client_id::text AS client_id, t.from_uid, t.to_uid,
                      t.sign_in_provider
               FROM client_takeovers t JOIN clients c ON c.id = t.client_id AND c.firebase_uid = t.to_uid
               WHERE t.from_uid = :uid AND t.confirmed_at IS NULL
                 AND t.taken_at = (SELECT max(taken_at) FROM client_takeovers l WHERE l.client_id = t.client_id)
               ORDER BY t.taken_at DESC LIMIT 1""",
            {"uid": from_uid},
        )
        return Takeover(**row) if row else None

    def confirm_takeover(self, takeover_id: str, *, confirmed_with: str) -> None:
        """The conversations hidden by the takeover are the client's again (`clients.history_from` as before it)."""
        self._sql.execute(
            """WITH confirmed AS (
                   UPDATE client_takeovers SET confirmed_at = now(), confirmed_with = :with
                   WHERE id = CAST(:id AS uuid) AND confirmed_at IS NULL
                   RETURNING client_id, history_from_before)
               UPDATE clients c SET history_from = confirmed.history_from_before, updated_at = now()
               FROM confirmed WHERE c.id = confirmed.client_id""",
            {"id": takeover_id, "with": confirmed_with},
        )

    def update_client(
        self,
        client_id: str,
        *,
        display_name: str | None,
        anonymous: bool | None,
        push_previews: bool | None = None,
        locale: str | None = None,
    ) -> Client | None:
        """Changes what is given and keeps the rest; None when there is no such client."""
        return _client(
            self._sql.one(
                f"""UPDATE clients SET display_name = COALESCE(:name, display_name),
                           anonymous = COALESCE(:anonymous, anonymous),
                           push_previews = COALESCE(:previews, push_previews),
                           locale = COALESCE(:locale, locale), updated_at = now()
                    WHERE id = CAST(:id AS uuid) RETURNING {_CLIENT}""",
                {
                    "name": display_name,
                    "anonymous": anonymous,
                    "previews": push_previews,
                    "locale": locale,
                    "id": client_id,
                },
            )
        )

    # -- mitras ------------------------------------------------------------------------------------------------------

    def mitra_by_phone(self, phone: str) -> Mitra | None:
        row = self._sql.one(f"SELECT {_MITRA} FROM mitras WHERE phone = :phone", {"phone": phone})
        return Mitra(**row) if row else None

    def is_client(self, uid: str) -> bool:
        return bool(self._sql.scalar("SELECT EXISTS (SELECT 1 FROM clients WHERE firebase_uid = :uid)", {"uid": uid}))

    def set_mitra_locale(self, mitra_id: str, locale: str) -> None:
        """The language the mitra chose at sign-in."""
        self._sql.execute(
            "UPDATE mitras SET locale = :locale, updated_at = now() WHERE id = CAST(:id AS uuid) AND locale <> :locale",
            {"locale": locale, "id": mitra_id},
        )

    def link_mitra(self, mitra_id: str, uid: str) -> None:
        """The mitra signs in as `uid` from now on."""
        self._sql.execute(
            "UPDATE mitras SET firebase_uid = :uid, updated_at = now() WHERE id = CAST(:id AS uuid)",
            {"uid": uid, "id": mitra_id},
        )

    def relink_status(self, mitra_id: str, uid: str) -> RelinkStatus | None:
        """The status of this sign-in's latest request to become the mitra's
        (`shared.domain.accounts.mitra_sign_in`)."""
        status = self._sql.scalar(
            """SELECT status FROM mitra_relinks WHERE firebase_uid = :uid AND mitra_id = CAST(:mitra AS uuid)
               ORDER BY requested_at DESC LIMIT 1""",
            {"uid": uid, "mitra": mitra_id},
        )
        return RelinkStatus(status) if status is not None else None

    def ask_relink(self, mitra_id: str, uid: str, *, previous_uid: str | None) -> None:
        """One pending request per mitra and sign-in (`mitra_relinks_one_pending`)."""
        self._sql.execute(
            """INSERT INTO mitra_relinks (mitra_id, firebase_uid, previous_uid)
               VALUES (CAST(:mitra AS uuid), :uid, :previous)
               ON CONFLICT (mitra_id, firebase_uid) WHERE status = 'pending' DO NOTHING""",
            {"mitra": mitra_id, "uid": uid, "previous": previous_uid},
        )


def _client(row: Row | None) -> Client | None:
    return Client(**row) if row else None
