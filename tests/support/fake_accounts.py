"""Accounts in memory: the promises of shared/adapters/postgres/accounts.py (who a uid is, by
shared.domain.accounts.identity_of; aliases unique), and Firebase Auth's role claims and sign-outs."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from shared.domain.accounts import (
    Client,
    EmailSignIn,
    Identity,
    Mitra,
    OpenSession,
    RelinkStatus,
    Revocation,
    Takeover,
    identity_of,
)

if TYPE_CHECKING:
    from tests.support.fakes import FakeDatabase

Row = dict[str, Any]


def add_client(db: FakeDatabase, client_id: str, **fields: Any) -> Row:
    """A registered client (`fields` as the row's columns: firebase_uid, display_name, phone, ...)."""
    row: Row = {
        "id": client_id,
        "firebase_uid": None,
        "display_name": "Sari",
        "anonymous": False,
        "alias_number": 1000 + len(db.table("clients")),
        "phone": None,
        "email": None,
        "suspended_at": None,
        "deleted_at": None,
        "created_at": db.now,
        **fields,
    }
    db.table("clients")[client_id] = row
    return row


def add_mitra(db: FakeDatabase, mitra_id: str, *, phone: str, **fields: Any) -> Row:
    """A mitra an admin registered (active, offline, not signed in yet unless `firebase_uid` says so)."""
    row: Row = {
        "id": mitra_id,
        "firebase_uid": None,
        "display_name": "Mitra Anisa",
        "phone": phone,
        "active": True,
        "presence": "offline",
        **fields,
    }
    db.table("mitras")[mitra_id] = row
    return row


def add_admin(db: FakeDatabase, admin_id: str, *, firebase_uid: str, on_duty: bool = True) -> Row:
    row: Row = {"id": admin_id, "firebase_uid": firebase_uid, "email": f"{admin_id}@halo.local", "on_duty": on_duty}
    db.table("admins")[admin_id] = row
    return row


@dataclass
class FakeIdentityProvider:
    """Firebase Auth: each uid's role claim, the uids signed out everywhere, and the email sign-ins."""

    roles: dict[str, str | None] = field(default_factory=dict)
    revoked: list[str] = field(default_factory=list)
    emails: dict[str, str] = field(default_factory=dict)
    # Emails of `emails` whose owner has not opened Firebase's verification link.
    unverified: set[str] = field(default_factory=set)
    deleted: list[str] = field(default_factory=list)

    def set_role(self, uid: str, role: str | None) -> None:
        self.roles[uid] = role

    def revoke_sessions(self, uid: str) -> None:
        self.revoked.append(uid)

    def delete_user(self, uid: str) -> None:
        if uid not in self.deleted:
            self.deleted.append(uid)
        self.roles.pop(uid, None)
        self.emails = {email: holder for email, holder in self.emails.items() if holder != uid}

    def sign_in_for_email(self, email: str) -> EmailSignIn | None:
        uid = self.emails.get(email)
        return EmailSignIn(uid, email_verified=email not in self.unverified) if uid is not None else None


@dataclass(frozen=True)
class FakeSignIn:
    """A verified sign-in (shared.domain.accounts.SignIn)."""

    uid: str
    sign_in_provider: str | None = "google.com"
    phone_number: str | None = None
    email: str | None = None
    auth_time: int = 0


class FakeAccountsRepository:
    def __init__(self, db: FakeDatabase) -> None:
        self._db = db

    def _clients(self) -> dict[Any, Row]:
        return self._db.table("clients")

    def _first(self, table: str, **match: Any) -> Row | None:
        return next(
            (row for row in self._db.table(table).values() if all(row.get(k) == v for k, v in match.items())), None
        )

    def identity(self, uid: str) -> Identity:
        admin = self._first("admins", firebase_uid=uid)
        mitra = self._first("mitras", firebase_uid=uid)
        client = self._first("clients", firebase_uid=uid)
        revoked = self._db.table("sign_in_revocations").get(uid)
        return identity_of(
            admin_id=admin["id"] if admin else None,
            mitra_id=mitra["id"] if mitra else None,
            mitra_active=bool(mitra and mitra["active"]),
            client_id=client["id"] if client else None,
            client_suspended=bool(client and client.get("suspended_at")),
            tokens_valid_after=revoked["tokens_valid_after"] if revoked else None,
        )

    def lock_sign_in(self, uid: str, *, phone: str | None = None, email: str | None = None) -> None:
        """One test runs one change at a time."""

    def is_staff(self, uid: str) -> bool:
        return (
            self._first("mitras", firebase_uid=uid) is not None or self._first("admins", firebase_uid=uid) is not None
        )

    def client_signed_in_as(self, uid: str) -> Client | None:
        return _client(self._first("clients", firebase_uid=uid))

    def client_holding(self, *, phone: str | None, email: str | None) -> Client | None:
        return _client(
            next(
                (
                    row
                    for row in self._clients().values()
                    if (phone is not None and row.get("phone") == phone)
                    or (email is not None and row.get("email") == email)
                ),
                None,
            )
        )

    def client(self, client_id: str) -> Client | None:
        return _client(self._clients().get(client_id))

    def insert_client_if_alias_free(
        self, *, uid: str, display_name: str, phone: str | None, email: str | None, alias_number: int
    ) -> Client | None:
        if any(row["alias_number"] == alias_number for row in self._clients().values()):
            return None
        row = add_client(
            self._db,
            str(uuid.uuid4()),
            firebase_uid=uid,
            display_name=display_name,
            phone=phone,
            email=email,
            alias_number=alias_number,
        )
        return _client(row)

    def move_client(self, client_id: str, *, uid: str, phone: str | None, email: str | None) -> Client:
        row = self._clients()[client_id]
        row["firebase_uid"] = uid
        row["phone"] = phone if phone is not None else row.get("phone")
        row["email"] = email if email is not None else row.get("email")
        moved = _client(row)
        assert moved is not None
        return moved

    def update_client(
        self,
        client_id: str,
        *,
        display_name: str | None,
        anonymous: bool | None,
        push_previews: bool | None = None,
        locale: str | None = None,
    ) -> Client | None:
        row = self._clients().get(client_id)
        if row is None:
            return None
        if locale is not None:
            row["locale"] = locale
        if push_previews is not None:
            row["push_previews"] = push_previews
        if display_name is not None:
            row["display_name"] = display_name
        if anonymous is not None:
            row["anonymous"] = anonymous
        return _client(row)

    def mitra_by_phone(self, phone: str) -> Mitra | None:
        row = self._first("mitras", phone=phone)
        return _mitra(row) if row else None

    def is_client(self, uid: str) -> bool:
        return self._first("clients", firebase_uid=uid) is not None

    def set_mitra_locale(self, mitra_id: str, locale: str) -> None:
        self._db.table("mitras")[mitra_id]["locale"] = locale

    def link_mitra(self, mitra_id: str, uid: str) -> None:
        self._db.table("mitras")[mitra_id]["firebase_uid"] = uid

    def record_takeover(self, client_id: str, *, from_uid: str, to_uid: str, sign_in_provider: str) -> None:
        client = self._clients()[client_id]
        takeover_id = str(uuid.uuid4())
        self._db.table("client_takeovers")[takeover_id] = {
            "id": takeover_id,
            "client_id": client_id,
            "from_uid": from_uid,
            "to_uid": to_uid,
            "sign_in_provider": sign_in_provider,
            "history_from_before": client.get("history_from"),
            "taken_at": self._db.now,
            "confirmed_at": None,
            "confirmed_with": None,
        }
        client["history_from"] = self._db.now

    def takeover_to_confirm(self, from_uid: str) -> Takeover | None:
        takeovers = self._db.table("client_takeovers").values()
        for t in sorted(takeovers, key=lambda t: t["taken_at"], reverse=True):
            latest = max(o["taken_at"] for o in takeovers if o["client_id"] == t["client_id"])
            holder = self._clients()[t["client_id"]]["firebase_uid"]
            waiting = t["from_uid"] == from_uid and t["confirmed_at"] is None and holder == t["to_uid"]
            if waiting and t["taken_at"] == latest:
                return Takeover(t["id"], t["client_id"], t["from_uid"], t["to_uid"], t["sign_in_provider"])
        return None

    def confirm_takeover(self, takeover_id: str, *, confirmed_with: str) -> None:
        takeover = self._db.table("client_takeovers")[takeover_id]
        if takeover["confirmed_at"] is None:
            takeover.update(confirmed_at=self._db.now, confirmed_with=confirmed_with)
            self._clients()[takeover["client_id"]]["history_from"] = takeover["history_from_before"]

    def relink_status(self, mitra_id: str, uid: str) -> RelinkStatus | None:
        asked = [
            r for r in self._db.table("mitra_relinks").values() if (r["mitra_id"], r["firebase_uid"]) == (mitra_id, uid)
        ]
        return RelinkStatus(max(asked, key=lambda r: r["requested_at"])["status"]) if asked else None

    def ask_relink(self, mitra_id: str, uid: str, *, previous_uid: str | None) -> None:
        relinks = self._db.table("mitra_relinks")
        if any((r["mitra_id"], r["firebase_uid"], r["status"]) == (mitra_id, uid, "pending") for r in relinks.values()):
            return
        relink_id = str(uuid.uuid4())
        relinks[relink_id] = {
            "id": relink_id,
            "mitra_id": mitra_id,
            "firebase_uid": uid,
            "previous_uid": previous_uid,
            "status": "pending",
            "requested_at": self._db.now,
            "decided_at": None,
            "decided_by": None,
            "note": None,
        }

    # -- revocation --------------------------------------------------------------------------------------------------

    def revoke_sign_ins(self, uid: str, *, block: bool) -> Revocation:
        row = self._db.table("sign_in_revocations").setdefault(
            uid, {"tokens_valid_after": self._db.now, "blocked": False}
        )
        row["tokens_valid_after"] = max(row["tokens_valid_after"], self._db.now)
        row["blocked"] = row["blocked"] or block
        return Revocation(**row)

    def unblock(self, uid: str) -> Revocation | None:
        row = self._db.table("sign_in_revocations").get(uid)
        if row is None:
            return None
        row["blocked"] = False
        return Revocation(**row)

    def open_sessions_of(self, *, client_id: str | None = None, mitra_id: str | None = None) -> list[OpenSession]:
        found = []
        for session_id, session in sorted(self._db.table("sessions").items()):
            if session["status"] not in ("active", "closing") or client_id not in (None, session["client_id"]):
                continue
            if mitra_id not in (None, session["mitra_id"]):
                continue
            client = self._clients()[session["client_id"]]
            mitra = self._db.table("mitras")[session["mitra_id"]]
            readers = [
                client["firebase_uid"] if client.get("suspended_at") is None else None,
                mitra["firebase_uid"] if mitra["active"] else None,
            ]
            found.append(OpenSession(str(session_id), [uid for uid in readers if uid is not None]))
        return found


def _client(row: Row | None) -> Client | None:
    if row is None:
        return None
    return Client(
        client_id=row["id"],
        firebase_uid=row["firebase_uid"],
        display_name=row["display_name"],
        anonymous=row["anonymous"],
        alias_number=row["alias_number"],
        phone=row.get("phone"),
        email=row.get("email"),
        suspended=row.get("suspended_at") is not None,
        created_at=row["created_at"],
        push_previews=row.get("push_previews", False),
        history_from=row.get("history_from"),
        locale=row.get("locale", "id"),
    )


def _mitra(row: Row) -> Mitra:
    return Mitra(
        mitra_id=row["id"],
        firebase_uid=row["firebase_uid"],
        display_name=row["display_name"],
        phone=row["phone"],
        active=row["active"],
        presence=row.get("presence", "offline"),
        locale=row.get("locale", "id"),
    )
