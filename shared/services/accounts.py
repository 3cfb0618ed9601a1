"""Registering clients, signing mitras in, reading and changing a client's profile.

A uid belongs to one kind of account: a mitra's or an admin's sign-in does not register as a client, nor a client's
sign in as a mitra. Registrations and sign-ins touching the same uid, phone number or email wait for each other
(`AccountsRepository.lock_sign_in`), so what one checks is still true when it writes. Firebase's role claim is set
after the commit; the claim is a hint for the apps, PostgreSQL decides (shared/services/identity.py).
"""

from __future__ import annotations

import dataclasses
import itertools
import time
from typing import Protocol

from shared.domain import accounts as rules
from shared.domain.accounts import (
    Client,
    Identity,
    Mitra,
    OpenSession,
    RelinkStatus,
    Revocation,
    SignIn,
    Takeover,
)
from shared.errors import Conflict, Forbidden, NotFound
from shared.services.identity import IdentityCache
from shared.services.ports import IdentityProvider, Ports
from shared.services.unit_of_work import UnitOfWork


class AccountsRepository(Protocol):
    """What accounts need from storage (shared/adapters/postgres/accounts.py)."""

    def identity(self, uid: str) -> Identity: ...

    def lock_sign_in(self, uid: str, *, phone: str | None = None, email: str | None = None) -> None: ...

    def is_staff(self, uid: str) -> bool: ...

    def client_signed_in_as(self, uid: str) -> Client | None: ...

    def client_holding(self, *, phone: str | None, email: str | None) -> Client | None: ...

    def client(self, client_id: str) -> Client | None: ...

    def insert_client_if_alias_free(
        self, *, uid: str, display_name: str, phone: str | None, email: str | None, alias_number: int
    ) -> Client | None: ...

    def move_client(self, client_id: str, *, uid: str, phone: str | None, email: str | None) -> Client: ...

    def update_client(
        self,
        client_id: str,
        *,
        display_name: str | None,
        anonymous: bool | None,
        push_previews: bool | None = None,
        locale: str | None = None,
    ) -> Client | None: ...

    def mitra_by_phone(self, phone: str) -> Mitra | None: ...

    def is_client(self, uid: str) -> bool: ...

    def link_mitra(self, mitra_id: str, uid: str) -> None: ...

    def set_mitra_locale(self, mitra_id: str, locale: str) -> None: ...

    def relink_status(self, mitra_id: str, uid: str) -> RelinkStatus | None: ...

    def record_takeover(self, client_id: str, *, from_uid: str, to_uid: str, sign_in_provider: str) -> None: ...

    def takeover_to_confirm(self, from_uid: str) -> Takeover | None: ...

    def confirm_takeover(self, takeover_id: str, *, confirmed_with: str) -> None: ...

    def ask_relink(self, mitra_id: str, uid: str, *, previous_uid: str | None) -> None: ...

    def revoke_sign_ins(self, uid: str, *, block: bool) -> Revocation: ...

    def unblock(self, uid: str) -> Revocation | None: ...

    def open_sessions_of(self, *, client_id: str | None = None, mitra_id: str | None = None) -> list[OpenSession]: ...


# -- clients -----------------------------------------------------------------------------------------------------------


def register_client(
    ports: Ports, idp: IdentityProvider, identities: IdentityCache, sign_in: SignIn, display_name: str, *, force: bool
) -> Client:
    """Idempotent for one uid. A phone or email that already belongs to another client is a 409, unless the caller
    forces a takeover right after a fresh sign-in: the profile (and its history) moves to the caller's uid, and the
    old uid is signed out everywhere."""
    if not rules.may_register_as_client(sign_in):
        raise Forbidden("clients sign in with Google, Apple or a phone number", code="unsupported_sign_in")
    with ports.uow() as uow:
        uow.accounts.lock_sign_in(sign_in.uid, phone=sign_in.phone_number, email=sign_in.email)
        if uow.accounts.is_staff(sign_in.uid):
            raise Conflict("this sign-in belongs to a mitra or an admin", code="role_conflict")
        client = uow.accounts.client_signed_in_as(sign_in.uid)
        previous_uid = None
        if client is None:
            holder = uow.accounts.client_holding(phone=sign_in.phone_number, email=sign_in.email)
            if holder is None:
                client = _insert_client(uow, sign_in, display_name)
            else:
                client = _take_over(uow, holder, sign_in, force=force)
                previous_uid = holder.firebase_uid
        if client.suspended:
            raise Forbidden("this account is suspended", code="suspended")
        uow.commit()
    _grant(idp, identities, sign_in.uid, "client", previous_uid=previous_uid)
    return client


def _insert_client(uow: UnitOfWork, sign_in: SignIn, display_name: str) -> Client:
    for attempt in itertools.count():
        client = uow.accounts.insert_client_if_alias_free(
            uid=sign_in.uid,
            display_name=display_name,
            phone=sign_in.phone_number,
            email=sign_in.email,
            alias_number=rules.draw_alias(attempt),
        )
        if client is not None:
            return client
    raise AssertionError("unreachable")


def _take_over(uow: UnitOfWork, holder: Client, sign_in: SignIn, *, force: bool) -> Client:
    if not force:
        raise Conflict(
            "this phone number or email already has a Halo Bestie account; confirm with force to continue there",
            code="account_exists",
        )
    if not rules.takeover_allowed(sign_in.auth_time, time.time()):
        raise Forbidden("sign in again (a fresh OTP) before taking this account over", code="recent_sign_in_required")
    if holder.firebase_uid is not None:
        assert sign_in.sign_in_provider is not None, "may_register_as_client"
        uow.accounts.record_takeover(
            holder.client_id,
            from_uid=holder.firebase_uid,
            to_uid=sign_in.uid,
            sign_in_provider=sign_in.sign_in_provider,
        )
    moved = uow.accounts.move_client(holder.client_id, uid=sign_in.uid, phone=sign_in.phone_number, email=sign_in.email)
    uow.audit.record(
        actor_uid=sign_in.uid,
        actor_role="client",
        action="client.takeover",
        target=holder.client_id,
        old={"firebase_uid": holder.firebase_uid},
        new={"firebase_uid": sign_in.uid},
    )
    return moved


def confirm_history(ports: Ports, identities: IdentityCache, sign_in: SignIn) -> Takeover:
    """The previous login of a taken-over profile gives the conversations from before the takeover to the new login
    (`shared.domain.accounts.may_confirm_takeover`); audited. 404 `no_takeover` when none of this login's waits."""
    with ports.uow() as uow:
        uow.accounts.lock_sign_in(sign_in.uid)
        takeover = uow.accounts.takeover_to_confirm(sign_in.uid)
        if takeover is None:
            raise NotFound("no takeover of a profile this login held waits for its word", code="no_takeover")
        refused = rules.may_confirm_takeover(takeover, sign_in, time.time())
        if refused is not None:
            raise Forbidden("confirm with another of the previous login's sign-in methods, freshly", code=refused)
        assert sign_in.sign_in_provider is not None
        uow.accounts.confirm_takeover(takeover.takeover_id, confirmed_with=sign_in.sign_in_provider)
        uow.audit.record(
            actor_uid=sign_in.uid,
            actor_role="client",
            action="client.history_confirmed",
            target=takeover.client_id,
            old={"firebase_uid": takeover.from_uid},
            new={"firebase_uid": takeover.to_uid, "confirmed_with": sign_in.sign_in_provider},
        )
        uow.commit()
    identities.forget(takeover.to_uid)
    return takeover


def get_client(ports: Ports, client_id: str) -> Client:
    with ports.uow(one_statement=True) as uow:
        client = uow.accounts.client(client_id)
    if client is None:
        raise NotFound("no such client")
    return client


def update_client(
    ports: Ports,
    client_id: str,
    *,
    display_name: str | None,
    anonymous: bool | None,
    push_previews: bool | None = None,
    locale: str | None = None,
) -> Client:
    with ports.uow(one_statement=True) as uow:
        client = uow.accounts.update_client(
            client_id, display_name=display_name, anonymous=anonymous, push_previews=push_previews, locale=locale
        )
    if client is None:
        raise NotFound("no such client")
    return client


# -- mitras ------------------------------------------------------------------------------------------------------------


def mitra_login(
    ports: Ports, idp: IdentityProvider, identities: IdentityCache, sign_in: SignIn, *, locale: str | None = None
) -> Mitra:
    """Only a phone sign-in whose number an admin registered as an active mitra. The mitra's first sign-in links its
    uid; another uid than the linked one waits for an admin (`shared.domain.accounts.mitra_sign_in`): 409
    `relink_pending` (the request is recorded once) until an admin approves it in `admin_mitra_relinks`, 403
    `relink_refused` once refused."""
    if not rules.may_sign_in_as_mitra(sign_in):
        raise Forbidden("mitras sign in with the phone number registered by Halo Bestie", code="not_a_mitra")
    assert sign_in.phone_number is not None
    relink: RelinkStatus | None = None
    with ports.uow() as uow:
        uow.accounts.lock_sign_in(sign_in.uid, phone=sign_in.phone_number)
        mitra = uow.accounts.mitra_by_phone(sign_in.phone_number)
        if mitra is not None and mitra.active:
            if uow.accounts.is_client(sign_in.uid):
                raise Conflict("this phone number is registered as a client", code="role_conflict")
            linking = rules.mitra_sign_in(linked_uid=mitra.firebase_uid, uid=sign_in.uid)
            if linking is rules.MitraSignIn.FIRST:
                uow.accounts.link_mitra(mitra.mitra_id, sign_in.uid)
            if locale is not None and linking is not rules.MitraSignIn.RELINK and locale != mitra.locale:
                uow.accounts.set_mitra_locale(mitra.mitra_id, locale)
                mitra = dataclasses.replace(mitra, locale=locale)
            elif linking is rules.MitraSignIn.RELINK:
                relink = _ask_relink(uow, mitra, sign_in.uid)
        uow.commit()
    if mitra is None or not mitra.active:
        if mitra is not None:  # a deactivated mitra keeps no session anywhere
            idp.revoke_sessions(sign_in.uid)
            idp.set_role(sign_in.uid, None)
        raise Forbidden("this phone number does not belong to an active mitra", code="not_a_mitra")
    if relink is RelinkStatus.REFUSED:
        raise Forbidden("an admin refused this sign-in for this mitra", code="relink_refused")
    if relink is not None:
        raise Conflict(
            "this phone number's mitra signs in with another account: an admin must approve this one first",
            code="relink_pending",
        )
    _grant(idp, identities, sign_in.uid, "mitra", previous_uid=None)
    return mitra


def _ask_relink(uow: UnitOfWork, mitra: Mitra, uid: str) -> RelinkStatus:
    """The pending (or refused) request of this sign-in to become the mitra's; asked once, audited once."""
    status = uow.accounts.relink_status(mitra.mitra_id, uid)
    if status in (RelinkStatus.PENDING, RelinkStatus.REFUSED):
        return status
    uow.accounts.ask_relink(mitra.mitra_id, uid, previous_uid=mitra.firebase_uid)
    uow.audit.record(
        actor_uid=uid,
        actor_role="mitra",
        action="mitra.relink_requested",
        target=mitra.mitra_id,
        old={"firebase_uid": mitra.firebase_uid},
        new={"firebase_uid": uid},
    )
    return RelinkStatus.PENDING


def _grant(idp: IdentityProvider, identities: IdentityCache, uid: str, role: str, *, previous_uid: str | None) -> None:
    """The role claim for the uid the account now belongs to; the uid it belonged to before loses its claim and its
    sessions. This instance forgets both identities at once."""
    idp.set_role(uid, role)
    identities.forget(uid)
    if previous_uid:
        idp.revoke_sessions(previous_uid)
        idp.set_role(previous_uid, None)
        identities.forget(previous_uid)


# -- who may read what, as access changes ------------------------------------------------------------------------------


def revoke(uow: UnitOfWork, uid: str, *, block: bool) -> None:
    """Inside a change that takes `uid`'s access away: its sign-ins until now are refused by every function and by
    firestore.rules (`shared.domain.accounts.sign_in_revoked`); with `block`, it reads no Firestore document however
    it signs in, until `reinstate`. The caller also revokes the sessions at Firebase after the commit (so no new ID
    token is minted from them), and forgets the uid in the identity cache."""
    uow.outbox.add(rules.revocation_document(uid, uow.accounts.revoke_sign_ins(uid, block=block)))


def reinstate(uow: UnitOfWork, uid: str) -> None:
    """Inside a change that gives `uid` its access back: Firestore reads again, once it has signed in anew."""
    revocation = uow.accounts.unblock(uid)
    if revocation is not None:
        uow.outbox.add(rules.revocation_document(uid, revocation))


def readers_changed(uow: UnitOfWork, *, client_id: str | None = None, mitra_id: str | None = None) -> None:
    """Inside a change to who may read this client's or mitra's open sessions (a suspension, a deactivation, and
    their undoing): each session document says who may read it now."""
    sessions = uow.accounts.open_sessions_of(client_id=client_id, mitra_id=mitra_id)
    uow.outbox.add(*[rules.readers_document(session) for session in sessions])
