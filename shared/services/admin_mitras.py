"""The control center's mitras: the roster, registering and renaming, deactivation, and presence history."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Protocol

from shared.domain import admin, days
from shared.domain.accounts import MitraRelink, RelinkStatus
from shared.domain.admin import MitraOnRoster, OnlineDay, PresenceHistory, Refused, StatusChange
from shared.domain.presence import Presence, PresenceReason, is_transition
from shared.errors import Conflict, InvalidRequest, NotFound
from shared.services import accounts, pairing, presence, projector
from shared.services.admin_paging import keyset, page, read_cursor
from shared.services.identity import IdentityCache
from shared.services.ports import IdentityProvider, Ports
from shared.services.unit_of_work import UnitOfWork


class AdminMitrasRepository(Protocol):
    """What the control center's roster needs from storage (shared/adapters/postgres/admin_mitras.py)."""

    def roster(
        self,
        *,
        presence: str | None,
        active: bool | None,
        search: str | None,
        after_mitra: tuple[str, str] | None,
        limit: int,
    ) -> list[MitraOnRoster]: ...

    def mitra(self, mitra_id: str, *, lock: bool = False) -> MitraOnRoster | None: ...

    def phone_of_client(self, phone: str) -> bool: ...

    def add_if_phone_free(self, phone: str, display_name: str) -> str | None: ...

    def rename(self, mitra_id: str, display_name: str) -> None: ...

    def set_capacity(self, mitra_id: str, max_clients: int | None) -> None: ...

    def open_sessions(self, mitra_id: str) -> list[str]: ...

    def take_off_roster(self, mitra_id: str) -> None: ...

    def put_back_on_roster(self, mitra_id: str) -> None: ...

    def status_changes(self, mitra_id: str, *, starts: datetime, ends: datetime) -> list[StatusChange]: ...

    def online_by_day(
        self, mitra_id: str, *, first: date, last: date, starts: datetime, ends: datetime, zone: str
    ) -> list[OnlineDay]: ...

    def relinks(self, *, status: str | None, after: tuple[datetime, str] | None, limit: int) -> list[MitraRelink]: ...

    def relink(self, relink_id: str, *, lock: bool = False) -> MitraRelink | None: ...

    def decide_relink(self, relink_id: str, *, status: RelinkStatus, admin_uid: str, note: str | None) -> None: ...


# -- the roster --------------------------------------------------------------------------------------------------------


def list_mitras(
    ports: Ports, *, presence: str | None, active: bool | None, search: str | None, cursor: str | None, limit: int
) -> tuple[list[MitraOnRoster], str | None]:
    """By name, then id; `search` matches any part of the name or the phone number."""
    with ports.uow(one_statement=True) as uow:
        mitras = uow.admin_mitras.roster(
            presence=presence,
            active=active,
            search=search,
            after_mitra=keyset(cursor, str, uuid.UUID),
            limit=limit + 1,
        )
    return page(mitras, limit, "display_name", "mitra_id")


# -- changes -----------------------------------------------------------------------------------------------------------


def create(ports: Ports, admin_uid: str, *, phone: str, display_name: str) -> MitraOnRoster:
    """Registered by phone (`shared.domain.admin.may_register_mitra`); the mitra signs in with that number."""
    with ports.uow() as uow:
        _refuse(admin.may_register_mitra(phone_of_client=uow.admin_mitras.phone_of_client(phone)))
        mitra_id = uow.admin_mitras.add_if_phone_free(phone, display_name)
        if mitra_id is None:
            raise _conflict(admin.PHONE_OF_MITRA)
        uow.audit.record(
            actor_uid=admin_uid,
            actor_role="admin",
            action="mitra.create",
            target=mitra_id,
            old=None,
            new={"phone": phone, "display_name": display_name},
        )
        created = _mitra(uow, mitra_id)
        uow.commit()
    return created


def rename(ports: Ports, admin_uid: str, mitra_id: str, display_name: str) -> MitraOnRoster:
    """The clients of the mitra's running sessions see the new name at once."""
    with ports.uow() as uow:
        before = _mitra(uow, mitra_id, lock=True)
        uow.admin_mitras.rename(mitra_id, display_name)
        uow.outbox.add(*admin.renamed_events(uow.admin_mitras.open_sessions(mitra_id), display_name))
        uow.audit.record(
            actor_uid=admin_uid,
            actor_role="admin",
            action="mitra.update",
            target=mitra_id,
            old={"display_name": before.display_name},
            new={"display_name": display_name},
        )
        after = _mitra(uow, mitra_id)
        committed = uow.commit()
    projector.deliver(ports, committed)
    return after


def set_capacity(ports: Ports, admin_uid: str, mitra_id: str, max_clients: int | None) -> MitraOnRoster:
    """The mitra's own maximum of concurrent clients (None: the global setting), used by availability, the blast and
    accept from now on. Lowered to what they hold, their open offers are withdrawn; raised, they are offered what is
    searching. Audited with the old and new value."""
    with ports.uow() as uow:
        before = _mitra(uow, mitra_id, lock=True)
        uow.admin_mitras.set_capacity(mitra_id, max_clients)
        if before.active and before.firebase_uid is not None:
            pairing.offer_room(uow, mitra_id, before.firebase_uid)
        uow.audit.record(
            actor_uid=admin_uid,
            actor_role="admin",
            action="mitra.update",
            target=mitra_id,
            old={"max_concurrent_clients": before.max_concurrent_clients},
            new={"max_concurrent_clients": max_clients},
        )
        after = _mitra(uow, mitra_id)
        committed = uow.commit()
    projector.deliver(ports, committed)
    return after


def deactivate(
    ports: Ports, idp: IdentityProvider, identities: IdentityCache, admin_uid: str, mitra_id: str
) -> MitraOnRoster:
    """Offline at once (logged `deactivated`), open offers withdrawn, tokens revoked and the role claim dropped; the
    mitra reads no document from now on. Running sessions go on without them: the admin reroutes them."""
    with ports.uow() as uow:
        before = _mitra(uow, mitra_id, lock=True)
        if before.active:
            uow.admin_mitras.take_off_roster(mitra_id)
            if is_transition(Presence(before.presence), Presence.OFFLINE):
                presence.log_presence_change(
                    uow, [mitra_id], Presence.ONLINE, Presence.OFFLINE, PresenceReason.DEACTIVATED
                )
            presence.withdraw_open_offers(uow, [mitra_id])
            if before.firebase_uid is not None:
                accounts.revoke(uow, before.firebase_uid, block=True)
            accounts.readers_changed(uow, mitra_id=mitra_id)
            _audit_active(uow, admin_uid, before, active=False)
        after = _mitra(uow, mitra_id)
        committed = uow.commit()
    projector.deliver(ports, committed)
    if before.firebase_uid is not None:
        idp.revoke_sessions(before.firebase_uid)
        idp.set_role(before.firebase_uid, None)
        identities.forget(before.firebase_uid)
    return after


def reactivate(ports: Ports, admin_uid: str, mitra_id: str) -> MitraOnRoster:
    """The mitra signs in again (`mitra_login`) to get the role back, and reads their documents again; presence
    stays offline until they go online."""
    with ports.uow() as uow:
        before = _mitra(uow, mitra_id, lock=True)
        if not before.active:
            uow.admin_mitras.put_back_on_roster(mitra_id)
            if before.firebase_uid is not None:
                accounts.reinstate(uow, before.firebase_uid)
            accounts.readers_changed(uow, mitra_id=mitra_id)
            _audit_active(uow, admin_uid, before, active=True)
        after = _mitra(uow, mitra_id)
        committed = uow.commit()
    projector.deliver(ports, committed)
    return after


# -- relinks: a mitra's phone on another Firebase account --------------------------------------------------------------


def list_relinks(
    ports: Ports, *, status: str | None, cursor: str | None, limit: int
) -> tuple[list[MitraRelink], str | None]:
    """Newest first, keyset on (requested_at, id)."""
    after = read_cursor(cursor, datetime.fromisoformat, uuid.UUID)
    with ports.uow(one_statement=True) as uow:
        relinks = uow.admin_mitras.relinks(
            status=status, after=(after[0], str(after[1])) if after else None, limit=limit + 1
        )
    return page(relinks, limit, "requested_at", "relink_id")


def decide_relink(
    ports: Ports,
    idp: IdentityProvider,
    identities: IdentityCache,
    admin_uid: str,
    relink_id: str,
    *,
    approve: bool,
    note: str | None,
) -> MitraRelink:
    """A pending request of a sign-in to become a mitra's (`shared.domain.accounts.mitra_sign_in`), decided once.
    Approved: the mitra signs in with the new uid from its next `mitra_login`; the previous uid is signed out and
    blocked everywhere, and the mitra's open sessions are readable by the new uid instead. Refused: that sign-in stays
    refused (403 `relink_refused`). Audited either way."""
    with ports.uow() as uow:
        relink = uow.admin_mitras.relink(relink_id, lock=True)
        if relink is None:
            raise NotFound("no such relink request")
        if relink.status is not RelinkStatus.PENDING:
            raise Conflict(f"this request was already {relink.status.value}", code="relink_decided")
        mitra = _mitra(uow, relink.mitra_id, lock=True)
        if approve and mitra.firebase_uid != relink.previous_uid:
            raise Conflict("the mitra signs in with another account since this request", code="relink_stale")
        status = RelinkStatus.APPROVED if approve else RelinkStatus.REFUSED
        uow.admin_mitras.decide_relink(relink_id, status=status, admin_uid=admin_uid, note=note)
        if approve:
            uow.accounts.link_mitra(relink.mitra_id, relink.firebase_uid)
            if relink.previous_uid is not None:
                accounts.revoke(uow, relink.previous_uid, block=True)
            accounts.readers_changed(uow, mitra_id=relink.mitra_id)
        uow.audit.record(
            actor_uid=admin_uid,
            actor_role="admin",
            action=f"mitra.relink_{'approve' if approve else 'refuse'}",
            target=relink.mitra_id,
            old={"firebase_uid": mitra.firebase_uid},
            new={"firebase_uid": relink.firebase_uid if approve else mitra.firebase_uid, "relink_id": relink_id},
        )
        decided = uow.admin_mitras.relink(relink_id)
        assert decided is not None
        committed = uow.commit()
    projector.deliver(ports, committed)
    if approve and relink.previous_uid is not None:
        idp.revoke_sessions(relink.previous_uid)
        idp.set_role(relink.previous_uid, None)
        identities.forget(relink.previous_uid)
    identities.forget(relink.firebase_uid)
    return decided


def _mitra(uow: UnitOfWork, mitra_id: str, *, lock: bool = False) -> MitraOnRoster:
    mitra = uow.admin_mitras.mitra(mitra_id, lock=lock)
    if mitra is None:
        raise NotFound("no such mitra")
    return mitra


def _audit_active(uow: UnitOfWork, admin_uid: str, before: MitraOnRoster, *, active: bool) -> None:
    uow.audit.record(
        actor_uid=admin_uid,
        actor_role="admin",
        action="mitra.reactivate" if active else "mitra.deactivate",
        target=before.mitra_id,
        old={"active": before.active, "presence": before.presence},
        new={"active": active, "presence": Presence.OFFLINE},
    )


def _refuse(refused: Refused | None) -> None:
    if refused is not None:
        raise _conflict(refused)


def _conflict(refused: Refused) -> Conflict:
    return Conflict(refused.message, code=refused.code)


# -- presence history --------------------------------------------------------------------------------------------------


def status_history(ports: Ports, mitra_id: str, first: date | None, last: date | None) -> PresenceHistory:
    """Transitions in the range (Jakarta days, both included; `shared.domain.admin.history_days`) and the time online
    on each day, read in one snapshot."""
    first, last = admin.history_days(first, last, today=days.today(datetime.now(UTC)))
    try:
        starts, ends = days.bounds(first, last)
    except days.InvalidRange as exc:
        raise InvalidRequest(str(exc), fields=[{"field": "from_date", "problem": str(exc)}]) from exc
    with ports.uow() as uow:
        _mitra(uow, mitra_id)
        changes = uow.admin_mitras.status_changes(mitra_id, starts=starts, ends=ends)
        online = uow.admin_mitras.online_by_day(
            mitra_id, first=first, last=last, starts=starts, ends=ends, zone=days.JAKARTA.key
        )
    return PresenceHistory(mitra_id, first, last, changes, online)
