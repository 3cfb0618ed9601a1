"""Rules about accounts: who a signed-in user is to us, how sign-ins may be used, names people choose, what a mitra
sees of a client.

The rules PostgreSQL must apply atomically are applied there by the accounts repository
(shared/adapters/postgres/accounts.py); each rule below names the method that enforces it.
"""

from __future__ import annotations

import enum
import math
import secrets
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from shared.domain.config import AnonymityMode
from shared.domain.documents import revocation_path, session_path
from shared.domain.events import DocumentWrite
from shared.domain.roles import Role

NAME_MIN, NAME_MAX = 2, 40
# How clients may sign in; mitras use phone OTP only; admins email/password.
CLIENT_PROVIDERS = frozenset({"google.com", "apple.com", "phone"})
MITRA_PROVIDER = "phone"
# Taking over a profile needs proof of a fresh sign-in (a new OTP or IdP round trip).
TAKEOVER_MAX_AUTH_AGE_S = 300
# Aliases are four digits while few are taken; after this many collisions a draw comes from a wider range.
ALIAS_DRAWS_FROM_FOUR_DIGITS = 5


class InvalidName(ValueError):
    pass


class SignIn(Protocol):
    """A sign-in Firebase has verified (shared.adapters.firebase_auth.VerifiedToken), as accounts read it."""

    @property
    def uid(self) -> str: ...

    @property
    def sign_in_provider(self) -> str | None: ...

    @property
    def phone_number(self) -> str | None: ...

    @property
    def email(self) -> str | None:
        """Only a verified address."""

    @property
    def auth_time(self) -> int: ...


@dataclass(frozen=True)
class EmailSignIn:
    """The Firebase user signing in with an email, as Firebase Auth knows it (for granting the admin role)."""

    uid: str
    # Firebase has seen the person open a link sent to the address (or the provider vouches for it).
    email_verified: bool


# -- who a signed-in user is -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Identity:
    """Who a verified Firebase user is to us, as PostgreSQL says now. A token's claims only say what was true when
    it was minted; a suspension, a deactivation or a takeover takes effect at once."""

    role: Role | None
    # The user's row in admins / mitras / clients.
    account_id: str | None
    suspended: bool
    # The uid's sign-ins before this moment were revoked by us (`sign_in_revoked`).
    tokens_valid_after: datetime | None = None


NOBODY = Identity(role=None, account_id=None, suspended=False)


def identity_of(
    *,
    admin_id: str | None,
    mitra_id: str | None,
    mitra_active: bool,
    client_id: str | None,
    client_suspended: bool,
    tokens_valid_after: datetime | None = None,
) -> Identity:
    """A uid's accounts, in the order they count: an admin is an admin; an active mitra a mitra (a deactivated one
    has no role at all); then a client, suspended or not. Applied in one indexed statement by
    `AccountsRepository.identity`, which also reads the uid's last revocation."""
    if admin_id is not None:
        return Identity(Role.ADMIN, admin_id, False, tokens_valid_after)
    if mitra_id is not None and mitra_active:
        return Identity(Role.MITRA, mitra_id, False, tokens_valid_after)
    if client_id is not None:
        return Identity(Role.CLIENT, client_id, client_suspended, tokens_valid_after)
    return Identity(None, None, False, tokens_valid_after)


# -- revocation --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Revocation:
    """A uid's sign-ins revoked by us (`sign_in_revocations`): those before `tokens_valid_after` are refused
    everywhere; a `blocked` uid reads no Firestore document however it signs in."""

    tokens_valid_after: datetime
    blocked: bool


def sign_in_revoked(auth_time: int, tokens_valid_after: datetime | None) -> bool:
    """A token whose sign-in (`auth_time`, whole seconds) is older than the uid's last revocation is refused, as
    Firebase refuses it once it knows (and a fresh sign-in in the same second as the revocation waits a second).
    Checked by every authenticated call through the identity lookup (functions/_http.py `authenticate`), and by
    firestore.rules through `revocation_document`."""
    return tokens_valid_after is not None and auth_time < tokens_valid_after.timestamp()


def revocation_document(uid: str, revocation: Revocation) -> DocumentWrite:
    """What firestore.rules consult before every read by this uid: sign-ins before `tokens_valid_after` (whole
    seconds, rounded up as `sign_in_revoked` compares) read nothing, nor does a `blocked` uid."""
    return DocumentWrite.at(
        revocation_path(uid),
        {
            "tokens_valid_after": math.ceil(revocation.tokens_valid_after.timestamp()),
            "blocked": revocation.blocked,
        },
    )


@dataclass(frozen=True)
class OpenSession:
    """An open session of someone whose access changes, and the uids that may read it now (as PostgreSQL says)."""

    session_id: str
    readers: list[str]


def readers_document(session: OpenSession) -> DocumentWrite:
    """Who may read the session now (`participant_uids`, which firestore.rules check): a suspended client or a
    deactivated mitra is left out at once, and their listener on the session document is refused at its next
    change; reinstated, they are back."""
    return DocumentWrite.at(session_path(session.session_id), {"participant_uids": session.readers})


# -- clients and mitras ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Client:
    """A client's profile."""

    client_id: str
    firebase_uid: str | None
    display_name: str
    anonymous: bool
    alias_number: int
    phone: str | None
    email: str | None
    suspended: bool
    created_at: datetime
    # Whether this client's own pushes may show the beginning of a message (`shared.domain.chat.push_shows_words`).
    push_previews: bool = False
    # Sessions started before this are not this login's to read (`client_sees_session`): set by a takeover.
    history_from: datetime | None = None
    # The language the backend writes to this client in (shared/domain/texts).
    locale: str = "id"

    @property
    def alias(self) -> str:
        return alias(self.alias_number)


@dataclass(frozen=True)
class Mitra:
    """A mitra as an admin registered them (by phone), and the uid of their last sign-in."""

    mitra_id: str
    firebase_uid: str | None
    display_name: str
    phone: str
    active: bool
    presence: str
    # The language the backend writes to this mitra in (shared/domain/texts), chosen at `mitra_login`.
    locale: str = "id"


def may_register_as_client(sign_in: SignIn) -> bool:
    return sign_in.sign_in_provider in CLIENT_PROVIDERS


def may_sign_in_as_mitra(sign_in: SignIn) -> bool:
    """Only a phone sign-in; whether its number is an active mitra's, the roster says."""
    return sign_in.sign_in_provider == MITRA_PROVIDER and bool(sign_in.phone_number)


class MitraSignIn(enum.Enum):
    """What a phone sign-in of an active mitra does to the mitra's link (`mitra_sign_in`)."""

    LINKED = "linked"  # the uid the mitra signs in with: nothing changes
    FIRST = "first"  # the mitra's first sign-in: the uid is linked
    RELINK = "relink"  # another uid than the linked one: it waits for an admin


def mitra_sign_in(*, linked_uid: str | None, uid: str) -> MitraSignIn:
    """A mitra's first sign-in links its uid. Another uid than the linked one (a new Firebase account on the same
    phone, or a number the carrier gave to someone else) does not take the profile and its past transcripts over by
    itself: it asks, and an admin approves or refuses in the control center (`admin_mitra_relinks`)."""
    if linked_uid is None:
        return MitraSignIn.FIRST
    return MitraSignIn.LINKED if linked_uid == uid else MitraSignIn.RELINK


class RelinkStatus(enum.StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REFUSED = "refused"


@dataclass(frozen=True)
class MitraRelink:
    """A sign-in asking to become a mitra's (`mitra_relinks`), as the control center lists it."""

    relink_id: str
    mitra_id: str
    mitra_name: str
    phone: str
    firebase_uid: str
    previous_uid: str | None
    status: RelinkStatus
    requested_at: datetime
    decided_at: datetime | None
    decided_by: str | None
    note: str | None


def client_sees_session(*, started_at: datetime, history_from: datetime | None) -> bool:
    """A phone number or email is not a key to someone's past: after a takeover (`client_register` with force), the
    client's login reads only the sessions started since (`clients.history_from`), in `sessions_list`,
    `chat_history`, `session_transcript` and its own export, until the previous login confirms
    (`may_confirm_takeover`). Credits and the free-trial record stay with the profile."""
    return history_from is None or started_at >= history_from


@dataclass(frozen=True)
class Takeover:
    """A client's profile moved to another login (`client_takeovers`), waiting for the previous login's word."""

    takeover_id: str
    client_id: str
    from_uid: str
    to_uid: str
    # How the new login proved the phone number or email.
    sign_in_provider: str


def may_confirm_takeover(takeover: Takeover, sign_in: SignIn, now: float) -> str | None:
    """The previous login gives the conversations from before the takeover to the new one by signing in afresh with
    another of its sign-in methods than the one taken over (e.g. its Google account when the phone number moved):
    whoever holds only the phone number or email cannot vouch for themself. None when it may; else the refusal's
    code."""
    if sign_in.uid != takeover.from_uid:
        return "not_the_previous_login"
    if sign_in.sign_in_provider == takeover.sign_in_provider:
        return "another_sign_in_method_required"
    if not takeover_allowed(sign_in.auth_time, now):
        return "recent_sign_in_required"
    return None


def takeover_allowed(auth_time: int, now: float) -> bool:
    """A phone number or email that already has a profile moves it to a new uid only after a fresh sign-in."""
    return 0 <= now - auth_time <= TAKEOVER_MAX_AUTH_AGE_S


def draw_alias(attempt: int) -> int:
    """A client's alias number, drawn at random so it says nothing about sign-up order. Unique: a draw that collides
    is refused by `AccountsRepository.insert_client_if_alias_free` and drawn again, from a wider range once four
    digits get crowded."""
    return 1000 + secrets.randbelow(9000 if attempt < ALIAS_DRAWS_FROM_FOUR_DIGITS else 999_000)


def clean_display_name(raw: str) -> str:
    name = unicodedata.normalize("NFC", raw).strip()
    if any(unicodedata.category(char).startswith("C") for char in name):
        raise InvalidName("must not contain control or invisible characters")
    if not NAME_MIN <= len(name) <= NAME_MAX:
        raise InvalidName(f"must be {NAME_MIN}-{NAME_MAX} characters after trimming")
    return name


def alias(alias_number: int) -> str:
    return f"Bestie #{alias_number}"


def name_for_mitra(*, display_name: str, anonymous: bool, alias_number: int, mode: AnonymityMode) -> str:
    """What a mitra is shown of a client, in offers, sessions and transcripts alike."""
    if mode is AnonymityMode.ALIAS or anonymous:
        return alias(alias_number)
    return display_name
