"""Accounts: client registration and profile, mitra sign-in."""

from __future__ import annotations

from functions._http import Call, endpoint
from shared import bootstrap
from shared.domain.roles import Role
from shared.errors import Forbidden
from shared.schemas import (
    ClientProfile,
    ClientProfileUpdate,
    ClientRegister,
    Empty,
    HistoryConfirmed,
    MitraLogin,
    MitraProfile,
)
from shared.services import accounts


@endpoint(post=ClientRegister, response=ClientProfile, check_revoked=True, errors={409})
def client_register(call: Call[ClientRegister]) -> ClientProfile:
    """Create (or, with force after a fresh sign-in, take over) the caller's client profile; sets role `client`."""
    if call.caller.role in (Role.MITRA, Role.ADMIN):
        raise Forbidden("mitras and admins cannot register as clients", code="role_conflict")
    client = accounts.register_client(
        bootstrap.ports(),
        bootstrap.firebase_auth(),
        bootstrap.identities(),
        call.caller.token,
        call.body.display_name,
        force=call.body.force,
    )
    return ClientProfile.model_validate(client, from_attributes=True)


@endpoint(get=Empty, post=ClientProfileUpdate, roles={Role.CLIENT}, response=ClientProfile, errors={404})
def client_profile(call: Call[Empty | ClientProfileUpdate]) -> ClientProfile:
    """GET: the caller's profile. POST: change the display name, the anonymity choice, message previews in pushes
    and/or the language (`locale`) of pushes, system messages and receipts."""
    client_id = call.caller.participant().account_id
    if isinstance(call.body, ClientProfileUpdate):
        body = call.body
        client = accounts.update_client(
            bootstrap.ports(),
            client_id,
            display_name=body.display_name,
            anonymous=body.anonymous,
            push_previews=body.push_previews,
            locale=body.locale,
        )
    else:
        client = accounts.get_client(bootstrap.ports(), client_id)
    return ClientProfile.model_validate(client, from_attributes=True)


@endpoint(post=MitraLogin, response=MitraProfile, check_revoked=True, errors={409})
def mitra_login(call: Call[MitraLogin]) -> MitraProfile:
    """A phone sign-in of an active mitra registered by an admin: links the uid and sets role `mitra`; `locale`, if
    sent, is the language of the mitra's pushes from now on."""
    mitra = accounts.mitra_login(
        bootstrap.ports(),
        bootstrap.firebase_auth(),
        bootstrap.identities(),
        call.caller.token,
        locale=call.body.locale,
    )
    return MitraProfile.model_validate(mitra, from_attributes=True)


@endpoint(post=Empty, response=HistoryConfirmed, check_revoked=True, errors={404})
def client_history_confirm(call: Call[Empty]) -> HistoryConfirmed:
    """The previous login of a taken-over profile, signed in afresh with another of its sign-in methods, gives the
    conversations from before the takeover to the new login (docs/privacy.md)."""
    takeover = accounts.confirm_history(bootstrap.ports(), bootstrap.identities(), call.caller.token)
    return HistoryConfirmed(client_id=takeover.client_id)
