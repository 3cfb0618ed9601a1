"""Crisis signals: each client message is checked after it is committed, off the send path (Pub/Sub
`chat-messages`, `on_chat_message`). A hit is a flag, an alert the control center listens to, a push to the admins
on duty, and the hotline card in the client's session (shared.domain.safety). The message itself is never blocked
or changed. The control center lists the alerts and acknowledges them.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime
from typing import Protocol

from shared.domain import accounts
from shared.domain import safety as rules
from shared.domain.safety import Alert, Flag, FlaggedSession, SentMessage, Signal
from shared.errors import NotFound
from shared.logging import event
from shared.services import chat, projector
from shared.services.admin_paging import page, read_cursor
from shared.services.ports import Ports
from shared.services.unit_of_work import UnitOfWork

log = logging.getLogger(__name__)


class SafetyRepository(Protocol):
    """What safety needs from storage (shared/adapters/postgres/safety.py)."""

    def message(self, message_id: str, session_id: str) -> SentMessage | None: ...

    def locked_session(self, session_id: str) -> FlaggedSession: ...

    def flag_once(self, message_id: str, session_id: str, client_id: str, signal: Signal) -> Flag | None: ...

    def hotline_shown(self, session_id: str) -> bool: ...

    def record_hotline(self, alert_id: str, card_message_id: str) -> None: ...

    def admins_on_duty(self) -> list[str]: ...

    def every_admin(self) -> list[str]: ...

    def alerts(self, *, acknowledged: bool | None, after: tuple[datetime, str] | None, limit: int) -> list[Alert]: ...

    def alert(self, alert_id: str) -> Alert | None: ...

    def acknowledge_if_open(self, alert_id: str, admin_uid: str, note: str | None) -> datetime | None: ...


# -- checking a message ------------------------------------------------------------------------------------------------


def check_message(ports: Ports, *, message_id: str, session_id: str) -> str:
    """Idempotent: a redelivered check finds the flag and raises nothing twice. Returns the outcome word."""
    with ports.uow(one_statement=True) as uow:
        message = uow.safety.message(message_id, session_id)
    if message is None or not rules.needs_check(message):
        return "not_checked"
    assert message.text is not None
    signal = rules.detect(message.text)
    if signal is None:
        return "clear"
    with ports.uow() as uow:
        outcome = _raise_flag(uow, message_id, session_id, signal)
        committed = uow.commit()
    projector.deliver(ports, committed)
    return outcome


def _raise_flag(uow: UnitOfWork, message_id: str, session_id: str, signal: Signal) -> str:
    session = uow.safety.locked_session(session_id)
    flag = uow.safety.flag_once(message_id, session_id, session.client_id, signal)
    if flag is None:
        return "already_flagged"
    if not uow.safety.hotline_shown(session_id):
        card = rules.hotline_message(str(uuid.uuid4()), session_id, uow.settings.load().hotline_numbers)
        chat.post(uow, card, sender_id=None)
        uow.safety.record_hotline(flag.alert_id, card.message_id)
    alias = accounts.alias(session.alias_number)
    on_duty = uow.safety.admins_on_duty()
    to = rules.alert_recipients(on_duty=on_duty, every_admin=[] if on_duty else uow.safety.every_admin())
    alert = rules.alert_raised(
        flag, session_id=session_id, message_id=message_id, client_alias=alias, category=signal.category
    )
    pushes = rules.alert_pushes(flag.alert_id, session_id=session_id, client_alias=alias, to=to)
    uow.outbox.add(alert, *pushes)
    level = logging.WARNING if not on_duty else logging.INFO
    event(log, "safety signal raised", level, alert=flag.alert_id, category=signal.category, admins=len(on_duty))
    if to.escalated:
        # What the CRITICAL alert policy `crisis_no_admin_on_duty` (infra/monitoring.tf) pages on.
        event(
            log,
            "crisis signal escalated",
            logging.ERROR,
            alert=flag.alert_id,
            category=signal.category,
            admins_pushed=len(to.uids),
        )
    return "flagged"


# -- the control center's alerts ---------------------------------------------------------------------------------------


def list_alerts(
    ports: Ports, *, acknowledged: bool | None, cursor: str | None, limit: int
) -> tuple[list[Alert], str | None]:
    """Newest first, keyset on (created_at, id)."""
    after = read_cursor(cursor, datetime.fromisoformat, uuid.UUID)
    with ports.uow(one_statement=True) as uow:
        alerts = uow.safety.alerts(
            acknowledged=acknowledged, after=(after[0], str(after[1])) if after else None, limit=limit + 1
        )
    return page(alerts, limit, "created_at", "alert_id")


def acknowledge(ports: Ports, admin_uid: str, alert_id: str, note: str | None) -> Alert:
    """Acknowledging twice keeps the first acknowledgement (and its note); audited, and projected to the alert's
    document."""
    with ports.uow() as uow:
        at = uow.safety.acknowledge_if_open(alert_id, admin_uid, note)
        if at is not None:
            uow.audit.record(
                actor_uid=admin_uid,
                actor_role="admin",
                action="alert.acknowledge",
                target=alert_id,
                old={"acknowledged": False},
                new={"acknowledged": True, "note": note},
            )
            uow.outbox.add(rules.alert_acknowledged(alert_id, by=admin_uid, at=at))
        alert = uow.safety.alert(alert_id)
        if alert is None:
            raise NotFound("no such alert")
        committed = uow.commit()
    projector.deliver(ports, committed)
    return alert
