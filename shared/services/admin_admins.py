"""Who may run the control center: `role: admin` is given only by the seed or by another admin, here."""

from __future__ import annotations

from typing import Protocol

from shared.domain import admin
from shared.domain.admin import AdminOnFile, Refused
from shared.errors import Conflict, NotFound
from shared.services import accounts, projector
from shared.services.identity import IdentityCache
from shared.services.ports import IdentityProvider, Ports
from shared.services.unit_of_work import UnitOfWork


class AdminAdminsRepository(Protocol):
    """What the control center's admins need from storage (shared/adapters/postgres/admin_admins.py)."""

    def admins(self) -> list[AdminOnFile]: ...

    def is_client_or_mitra(self, uid: str) -> bool: ...

    def grant(self, uid: str, email: str, *, granted_by: str) -> AdminOnFile: ...

    def lock_admin(self, admin_id: str) -> AdminOnFile | None: ...

    def delete(self, admin_id: str) -> None: ...

    def set_on_duty(self, admin_id: str, on_duty: bool) -> AdminOnFile: ...


def list_admins(ports: Ports) -> list[AdminOnFile]:
    with ports.uow(one_statement=True) as uow:
        return uow.admin_admins.admins()


def grant(ports: Ports, idp: IdentityProvider, identities: IdentityCache, actor_uid: str, email: str) -> AdminOnFile:
    """To an existing email/password sign-in whose email is verified (`shared.domain.admin.may_grant`); its role
    claim follows the commit. A former admin granted again reads documents again once signed in anew."""
    sign_in = idp.sign_in_for_email(email.lower())
    if sign_in is None:
        raise NotFound("no Halo Bestie sign-in uses this email; the person signs up with email and password first")
    uid = sign_in.uid
    with ports.uow() as uow:
        _refuse(admin.may_grant(sign_in, client_or_mitra=uow.admin_admins.is_client_or_mitra(uid)))
        granted = uow.admin_admins.grant(uid, email.lower(), granted_by=actor_uid)
        accounts.reinstate(uow, uid)
        uow.audit.record(
            actor_uid=actor_uid,
            actor_role="admin",
            action="admin.grant",
            target=granted.admin_id,
            old=None,
            new={"email": granted.email},
        )
        committed = uow.commit()
    projector.deliver(ports, committed)
    idp.set_role(uid, "admin")
    identities.forget(uid)
    return granted


def revoke(
    ports: Ports, idp: IdentityProvider, identities: IdentityCache, actor_uid: str, admin_id: str
) -> AdminOnFile:
    """Another admin's role (`shared.domain.admin.may_revoke`): signed out everywhere once it is gone."""
    with ports.uow() as uow:
        revoked = _locked(uow, admin_id)
        _refuse(admin.may_revoke(revoked, actor_uid=actor_uid))
        uow.admin_admins.delete(admin_id)
        accounts.revoke(uow, revoked.firebase_uid, block=True)
        uow.audit.record(
            actor_uid=actor_uid,
            actor_role="admin",
            action="admin.revoke",
            target=admin_id,
            old={"email": revoked.email},
            new=None,
        )
        committed = uow.commit()
    projector.deliver(ports, committed)
    idp.set_role(revoked.firebase_uid, None)
    idp.revoke_sessions(revoked.firebase_uid)
    identities.forget(revoked.firebase_uid)
    return revoked


def set_on_duty(ports: Ports, actor_uid: str, admin_id: str, on_duty: bool) -> AdminOnFile:
    """Whether this admin is pushed crisis alerts; any admin may set it for any admin (a shift hand-over), audited
    when it changes."""
    with ports.uow() as uow:
        before = _locked(uow, admin_id)
        after = uow.admin_admins.set_on_duty(admin_id, on_duty)
        if before.on_duty != on_duty:
            uow.audit.record(
                actor_uid=actor_uid,
                actor_role="admin",
                action="admin.on_duty",
                target=admin_id,
                old={"on_duty": before.on_duty},
                new={"on_duty": on_duty},
            )
        uow.commit()
    return after


def _locked(uow: UnitOfWork, admin_id: str) -> AdminOnFile:
    found = uow.admin_admins.lock_admin(admin_id)
    if found is None:
        raise NotFound("no such admin")
    return found


def _refuse(refused: Refused | None) -> None:
    if refused is not None:
        raise Conflict(refused.message, code=refused.code)
