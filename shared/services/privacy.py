"""A client's data on request (everything we hold about them, or their deletion), and the retention of message
texts (shared.domain.privacy)."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any, Protocol

from shared.domain import accounts
from shared.domain import privacy as rules
from shared.domain.privacy import ClientOnRecord, ClientSession, ErasedText, Record, Requester
from shared.errors import Conflict, NotFound
from shared.logging import event as log_event
from shared.services import projector
from shared.services.identity import IdentityCache
from shared.services.ports import IdentityProvider, Ports
from shared.services.unit_of_work import UnitOfWork

log = logging.getLogger(__name__)

_SESSIONS_PER_BATCH = 50
_MESSAGES_PER_BATCH = 500
_PUBLISHED_ROWS_PER_BATCH = 5000


class PrivacyRepository(Protocol):
    """What privacy needs from storage (shared/adapters/postgres/privacy.py)."""

    def read_one_snapshot(self) -> None: ...

    def profile(self, client_id: str) -> Record | None: ...

    def sessions(self, client_id: str) -> list[Record]: ...

    def messages(self, client_id: str) -> list[Record]: ...

    def transactions(self, client_id: str) -> list[Record]: ...

    def feedback(self, client_id: str) -> list[Record]: ...

    def reports_filed(self, client_id: str) -> list[Record]: ...

    def blocks_made(self, client_id: str) -> list[Record]: ...

    def credit_backs(self, client_id: str) -> list[Record]: ...

    def credit_back_uses(self, client_id: str) -> list[Record]: ...

    def locked_client(self, client_id: str) -> ClientOnRecord | None: ...

    def has_open_session_or_search(self, client_id: str) -> bool: ...

    def anonymise(self, client_id: str, *, name: str) -> None: ...

    def erase_texts_of(self, client_id: str) -> list[ErasedText]: ...

    def sessions_with_mitras(self, client_id: str) -> list[ClientSession]: ...

    def request_ids(self, client_id: str) -> list[str]: ...

    def transaction_ids(self, client_id: str) -> list[str]: ...

    def sessions_past_retention(self, retention_days: int, *, limit: int) -> list[str]: ...

    def erase_texts_in(self, session_ids: Sequence[str], *, limit: int) -> list[ErasedText]: ...

    def mark_texts_erased(self, session_ids: Sequence[str]) -> None: ...

    def erase_copies_in(self, session_ids: Sequence[str]) -> None: ...

    def erase_safety_texts_in(self, session_ids: Sequence[str]) -> None: ...

    def forget_published_about(self, keys: Sequence[str]) -> int: ...

    def purge_published(self, keep_days: int, *, limit: int) -> int: ...


# -- a client's data on request ----------------------------------------------------------------------------------------


def export(ports: Ports, requester: Requester, client_id: str) -> dict[str, Any]:
    """Everything held about the client, read in one snapshot; who asked (and an admin's reason) is audited."""
    with ports.uow() as uow:
        uow.privacy.read_one_snapshot()
        exported = _export(uow, client_id, own=requester.role == "client")
        uow.audit.record(
            actor_uid=requester.uid,
            actor_role=requester.role,
            action="client.export",
            target=client_id,
            old=None,
            new={"messages": len(exported["messages"]), **_reason(requester)},
        )
        uow.commit()
    return exported


def delete(
    ports: Ports, idp: IdentityProvider, identities: IdentityCache, requester: Requester, client_id: str
) -> dict[str, Any]:
    """Anonymise the profile, delete the Firebase user (its phone or email can sign up afresh), erase the texts of
    every message of the client's sessions and every copy of them, take the client out of every document and purge
    the published outbox rows about them; returns what remains. Idempotent: deleting a deleted client changes
    nothing. Refused (409 `client_busy`) while the client has an open session or search, which would otherwise go
    on without them."""
    with ports.uow() as uow:
        client = uow.privacy.locked_client(client_id)
        if client is None:
            raise NotFound("no such client")
        if not client.deleted:
            if uow.privacy.has_open_session_or_search(client_id):
                raise Conflict("the client has an open session or search; end it first", code="client_busy")
            erased = _forget(uow, client_id, client)
            uow.audit.record(
                actor_uid=requester.uid,
                actor_role=requester.role,
                action="client.delete",
                target=client_id,
                old={"deleted": False},
                new={"deleted": True, "messages_erased": erased, **_reason(requester)},
            )
            # Before the commit: if deleting the user fails the deletion rolls back and can be retried, whereas after
            # it the uid would be unlinked and the Firebase user (with its phone or email) would stay.
            if client.firebase_uid:
                idp.delete_user(client.firebase_uid)
        exported = _export(uow, client_id)
        committed = uow.commit()
    projector.deliver(ports, committed)
    if client.firebase_uid:
        identities.forget(client.firebase_uid)
    if not client.deleted:
        # Outside the database too: after a restore from a backup, this line is how on-call finds the deletions to
        # apply again (docs/operations.md). An id names no one once the client is deleted.
        log_event(log, "client deleted", client_id=client_id, by=requester.role)
    return exported


def _reason(requester: Requester) -> dict[str, str]:
    return {"reason": requester.reason} if requester.reason is not None else {}


def _forget(uow: UnitOfWork, client_id: str, client: ClientOnRecord) -> int:
    """Returns how many message texts were erased."""
    uow.privacy.anonymise(client_id, name=rules.DELETED_NAME)
    if client.firebase_uid:  # a push token addresses the person's phone; a kept answer may name them
        uow.notify.forget_devices_of(client.firebase_uid)
        uow.idempotency.forget_caller(client.firebase_uid)
    erased = uow.privacy.erase_texts_of(client_id)
    sessions = uow.privacy.sessions_with_mitras(client_id)
    uow.privacy.erase_copies_in([session.session_id for session in sessions])
    uow.privacy.erase_safety_texts_in([session.session_id for session in sessions])
    request_ids = uow.privacy.request_ids(client_id)
    transaction_ids = uow.privacy.transaction_ids(client_id)
    keys = [session.session_id for session in sessions] + request_ids + transaction_ids
    uow.privacy.forget_published_about([client.firebase_uid, *keys] if client.firebase_uid else keys)
    shown_as = accounts.name_for_mitra(
        display_name=rules.DELETED_NAME,
        anonymous=client.anonymous,
        alias_number=client.alias_number,
        mode=uow.settings.load().anonymity_mode,
    )
    uow.outbox.add(
        *rules.erased(erased),
        *rules.forgotten(sessions, shown_as=shown_as, request_ids=request_ids, transaction_ids=transaction_ids),
    )
    return len(erased)


def _export(uow: UnitOfWork, client_id: str, *, own: bool = False) -> dict[str, Any]:
    """`own`: the client's login asks, which since a takeover gets only the sessions it may read
    (`shared.domain.accounts.client_sees_session`), and only what was written about those; an admin's export (a
    lawful request) holds them all. What is left out of both, and why, is in docs/privacy.md (a mitra's notes, a
    mitra's reports and blocks of the client)."""
    profile = uow.privacy.profile(client_id)
    if profile is None:
        raise NotFound("no such client")
    exported_at = profile.pop("exported_at")
    profile["alias"] = accounts.alias(profile.pop("alias_number"))
    sessions = uow.privacy.sessions(client_id)
    messages = uow.privacy.messages(client_id)
    feedback = uow.privacy.feedback(client_id)
    reports = uow.privacy.reports_filed(client_id)
    blocks = uow.privacy.blocks_made(client_id)
    credit_backs = uow.privacy.credit_backs(client_id)
    client = uow.accounts.client(client_id) if own else None
    if client is not None and client.history_from is not None:
        history_from = client.history_from
        sessions = [
            s for s in sessions if accounts.client_sees_session(started_at=s["started_at"], history_from=history_from)
        ]
        shown = {s["session_id"] for s in sessions}
        messages, feedback, reports, blocks, credit_backs = (
            [row for row in rows if row["session_id"] in shown]
            for rows in (messages, feedback, reports, blocks, credit_backs)
        )
    return {
        "exported_at": exported_at,
        "profile": profile,
        "sessions": sessions,
        "messages": messages,
        "transactions": uow.privacy.transactions(client_id),
        "feedback": feedback,
        "reports": reports,
        "blocks": blocks,
        "credit_backs": credit_backs,
        "credit_back_uses": uow.privacy.credit_back_uses(client_id),
    }


# -- retention ---------------------------------------------------------------------------------------------------------


def retention_sweep(ports: Ports, *, budget_s: float) -> int:
    """Erase the texts of sessions past retention (and every copy of them), batch after batch (each its own
    change), until none is due or the time budget is spent; then purge the published outbox rows older than
    `PUBLISHED_KEEP_DAYS` with what time is left. Returns the texts erased. Running it again finds nothing left to
    do."""
    deadline = time.monotonic() + budget_s
    erased = 0
    while time.monotonic() < deadline:
        batch = _erase_batch(ports)
        if batch is None:
            break
        erased += batch
    while time.monotonic() < deadline and _purge_batch(ports) == _PUBLISHED_ROWS_PER_BATCH:
        pass
    return erased


def _purge_batch(ports: Ports) -> int:
    with ports.uow() as uow:
        purged = uow.privacy.purge_published(rules.PUBLISHED_KEEP_DAYS, limit=_PUBLISHED_ROWS_PER_BATCH)
        uow.commit()
    return purged


def _erase_batch(ports: Ports) -> int | None:
    """None when no session is due (or every due one is being swept by another run)."""
    with ports.uow() as uow:
        due = uow.privacy.sessions_past_retention(uow.settings.load().retention_days, limit=_SESSIONS_PER_BATCH)
        if not due:
            return None
        erased = uow.privacy.erase_texts_in(due, limit=_MESSAGES_PER_BATCH)
        uow.privacy.erase_copies_in(due)
        uow.privacy.erase_safety_texts_in(due)
        uow.privacy.mark_texts_erased(due)
        uow.outbox.add(*rules.erased(erased))
        committed = uow.commit()
    projector.deliver(ports, committed)
    return len(erased)
