"""The control center's clients: finding them, and suspending or reinstating one."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Protocol

from shared.domain.admin import ClientOnFile
from shared.domain.pairing import RequestStatus
from shared.errors import NotFound
from shared.services import accounts, pairing, projector
from shared.services.admin_paging import keyset, page
from shared.services.identity import IdentityCache
from shared.services.ports import IdentityProvider, Ports
from shared.services.unit_of_work import UnitOfWork


class AdminUsersRepository(Protocol):
    """What the control center's clients need from storage (shared/adapters/postgres/admin_users.py)."""

    def clients(
        self, *, search: str | None, suspended: bool | None, after_client: tuple[datetime, str] | None, limit: int
    ) -> list[ClientOnFile]: ...

    def client(self, client_id: str, *, lock: bool = False) -> ClientOnFile | None: ...

    def set_suspended(self, client_id: str, suspended: bool) -> None: ...

    def searching_requests(self, client_id: str) -> list[str]: ...


def list_clients(
    ports: Ports, *, search: str | None, suspended: bool | None, cursor: str | None, limit: int
) -> tuple[list[ClientOnFile], str | None]:
    """Newest first; `search` matches any part of the name, phone number or email."""
    with ports.uow(one_statement=True) as uow:
        clients = uow.admin_users.clients(
            search=search,
            suspended=suspended,
            after_client=keyset(cursor, datetime.fromisoformat, uuid.UUID),
            limit=limit + 1,
        )
    return page(clients, limit, "created_at", "client_id")


def suspend(
    ports: Ports,
    idp: IdentityProvider,
    identities: IdentityCache,
    admin_uid: str,
    client_id: str,
    *,
    reason: str | None,
) -> ClientOnFile:
    """Refused everywhere at once (`ClientOnFile.suspended`), tokens revoked, and a searching request cancelled as if
    the client had cancelled it. A running session is left to its timer, without the client: they read none of its
    documents (nor any other) from now on."""
    with ports.uow() as uow:
        before = _locked(uow, client_id)
        if not before.suspended:
            uow.admin_users.set_suspended(client_id, True)
            for request_id in uow.admin_users.searching_requests(client_id):
                pairing.end_search(uow, request_id, RequestStatus.CANCELLED)
            if before.firebase_uid is not None:
                accounts.revoke(uow, before.firebase_uid, block=True)
            accounts.readers_changed(uow, client_id=client_id)
            _audit(uow, admin_uid, before, suspended=True, reason=reason)
        after = uow.admin_users.client(client_id)
        committed = uow.commit()
    projector.deliver(ports, committed)
    if before.firebase_uid is not None:
        idp.revoke_sessions(before.firebase_uid)
        identities.forget(before.firebase_uid)
    assert after is not None
    return after


def unsuspend(
    ports: Ports, identities: IdentityCache, admin_uid: str, client_id: str, *, reason: str | None
) -> ClientOnFile:
    """The client signs in again (the tokens revoked by the suspension stay revoked) and reads their documents
    again, an open session's included."""
    with ports.uow() as uow:
        before = _locked(uow, client_id)
        if before.suspended:
            uow.admin_users.set_suspended(client_id, False)
            if before.firebase_uid is not None:
                accounts.reinstate(uow, before.firebase_uid)
            accounts.readers_changed(uow, client_id=client_id)
            _audit(uow, admin_uid, before, suspended=False, reason=reason)
        after = uow.admin_users.client(client_id)
        committed = uow.commit()
    projector.deliver(ports, committed)
    if before.firebase_uid is not None:
        identities.forget(before.firebase_uid)
    assert after is not None
    return after


def _locked(uow: UnitOfWork, client_id: str) -> ClientOnFile:
    client = uow.admin_users.client(client_id, lock=True)
    if client is None:
        raise NotFound("no such client")
    return client


def _audit(uow: UnitOfWork, admin_uid: str, before: ClientOnFile, *, suspended: bool, reason: str | None) -> None:
    uow.audit.record(
        actor_uid=admin_uid,
        actor_role="admin",
        action="client.suspend" if suspended else "client.unsuspend",
        target=before.client_id,
        old={"suspended": before.suspended},
        new={"suspended": suspended, "reason": reason},
    )
