"""The control center's rules: which changes an admin may make, which changes are really changes (and so versioned
and audited), and what the apps are told when an admin moves something.

The rules PostgreSQL must apply atomically are applied by the control center's repositories
(shared/adapters/postgres/admin_*.py); each rule below names the method that enforces it. The data types are what
those repositories hand the services (shared/services/admin_*.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from shared.domain import accounts, days
from shared.domain.events import DocumentWrite, Event, ts
from shared.domain.notify import push
from shared.domain.session import Session, SessionStatus, session_document

# The presence history an admin sees unless they ask for other days: the last seven Jakarta days.
HISTORY_DAYS = 7


@dataclass(frozen=True)
class Refused:
    """A change the rules refuse: `code` is the contract's error code, `message` for the admin."""

    code: str
    message: str


SESSION_NOT_ACTIVE = Refused("session_not_active", "only an active session can be rerouted")
SAME_MITRA = Refused("same_mitra", "the session is already with this mitra")
MITRA_UNAVAILABLE = Refused("mitra_unavailable", "this mitra is not online, not fresh, or at capacity")
PHONE_OF_CLIENT = Refused("phone_taken", "this phone number belongs to a client")
PHONE_OF_MITRA = Refused("phone_taken", "this phone number already belongs to a mitra")
ROLE_CONFLICT = Refused("role_conflict", "this sign-in belongs to a client or a mitra")
EMAIL_NOT_VERIFIED = Refused(
    "email_not_verified",
    "this sign-in has not verified its email: the person opens the verification link Firebase sends, then ask again",
)
CANNOT_REVOKE_SELF = Refused("cannot_revoke_self", "an admin cannot revoke their own role")


# -- the live figures --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LiveFigures:
    """What is live now (mitras, searches, sessions) and what happened today, as one statement counts them
    (`AdminDashboardRepository.figures`). Available is `shared.domain.pairing.is_available`, at capacity
    `shared.domain.pairing.has_capacity` denied."""

    as_of: datetime
    mitras_active: int
    mitras_online: int
    mitras_available: int
    mitras_busy: int
    mitras_at_capacity: int
    clients_searching: int
    active_sessions: int
    closing_sessions: int
    sessions_today: int
    requests_total: int
    requests_searching: int
    requests_matched: int
    requests_no_mitra: int
    requests_cancelled: int
    median_wait_s: float | None
    revenue: int
    payments: int

    @property
    def no_mitra_rate(self) -> float | None:
        """Of today's requests that have ended, the share that found nobody."""
        ended = self.requests_matched + self.requests_no_mitra + self.requests_cancelled
        return days.rate(self.requests_no_mitra, ended)


# -- settings and prices -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StoredSetting:
    key: str
    value: Any
    version: int
    updated_at: datetime | None
    updated_by: str | None


def changed_settings(stored: Mapping[str, StoredSetting], requested: Mapping[str, Any]) -> dict[str, Any]:
    """Only a value that really changes is written, versioned (+1) and audited: sending the same value again
    changes nothing (`AdminConfigRepository.set_setting` bumps the version)."""
    return {key: value for key, value in requested.items() if key not in stored or stored[key].value != value}


def version_of(stored: StoredSetting | None) -> dict[str, Any]:
    """A setting never changed is at version 0, at its default."""
    if stored is None:
        return {"version": 0, "updated_at": None, "updated_by": None}
    return {"version": stored.version, "updated_at": stored.updated_at, "updated_by": stored.updated_by}


@dataclass(frozen=True)
class TierPrice:
    """A pricing tier as an admin sets it. Credits already paid for keep what they bought."""

    id: str
    duration_s: int
    price: int
    active: bool


@dataclass(frozen=True)
class ListedTier(TierPrice):
    sort_order: int


def tier_changed(before: TierPrice | None, after: TierPrice) -> bool:
    """A tier is written (and audited) only when it is new or differs."""
    return before != after


# -- sessions ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SessionOnFile:
    """A session as the control center lists it."""

    session_id: str
    request_id: str
    status: str
    kind: str
    client_id: str
    client_name: str
    alias_number: int
    mitra_id: str
    mitra_name: str
    started_at: datetime
    ends_at: datetime
    closed_at: datetime | None
    messages: int

    @property
    def client_alias(self) -> str:
        return accounts.alias(self.alias_number)


@dataclass(frozen=True)
class SessionToReroute:
    """A session and its participants as a reroute finds them, its row locked until the change ends; `now` is
    PostgreSQL's clock for the change."""

    session_id: str
    state: Session
    mitra_id: str
    client_uid: str | None
    mitra_uid: str | None
    now: datetime


@dataclass(frozen=True)
class MitraTakingOver:
    """The mitra a session moves to, its row locked until the change ends."""

    # None until the mitra first signs in; such a mitra is never available.
    firebase_uid: str | None
    display_name: str


@dataclass(frozen=True)
class Moved:
    """The closure row that ends the previous mitra's part in a session."""

    closure_id: int
    at: datetime


def may_reroute(session: SessionToReroute, to_mitra_id: str) -> Refused | None:
    """Only a session still running (`Session.accepts_messages`) moves, and only to another mitra. Who it moves to
    must be available as for an offer (`shared.domain.pairing.is_available`), which
    `AdminSessionsRepository.is_available` checks under the mitra's row lock, so the mitra's own accepts cannot
    fill their room meanwhile."""
    if not session.state.accepts_messages(session.now):
        return SESSION_NOT_ACTIVE
    if session.mitra_id == to_mitra_id:
        return SAME_MITRA
    return None


def rerouted_events(session: SessionToReroute, to: MitraTakingOver, moved: Moved) -> list[Event]:
    """The session document names the new participants, which is what firestore.rules reads: the previous mitra's
    listener is cut off at once and the new mitra reads every message. Both mitras are told by a push."""
    assert to.firebase_uid is not None, "an available mitra has signed in"
    session_id = session.session_id
    document = session_document(
        session_id,
        {
            "participant_uids": [session.client_uid, to.firebase_uid],
            "mitra_uid": to.firebase_uid,
            "mitra_name": to.display_name,
            "rerouted_at": ts(moved.at),
            "typing": {"mitra": {"typing_until": None}},
        },
    )
    assigned = push(
        dedup_key=f"rerouted:{moved.closure_id}:to",
        recipients=[to.firebase_uid],
        data={"type": "session_assigned", "session_id": session_id},
        text_key="push.session_assigned",
    )
    events: list[Event] = [document, assigned]
    if session.mitra_uid is not None:
        events.append(
            push(
                dedup_key=f"rerouted:{moved.closure_id}:from",
                recipients=[session.mitra_uid],
                data={"type": "session_rerouted", "session_id": session_id},
                text_key="push.session_rerouted",
            )
        )
    return events


# -- mitras ------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MitraOnRoster:
    """A mitra as the control center lists it."""

    mitra_id: str
    firebase_uid: str | None
    display_name: str
    phone: str
    active: bool
    presence: str
    last_heartbeat_at: datetime | None
    created_at: datetime
    open_sessions: int
    # The mitra's own maximum of concurrent clients; None: the global setting (shared.domain.pairing.capacity_of).
    max_concurrent_clients: int | None = None

    @property
    def signed_in(self) -> bool:
        """Whether the mitra has signed in at least once (a Firebase account is linked)."""
        return self.firebase_uid is not None


def may_register_mitra(*, phone_of_client: bool) -> Refused | None:
    """A phone number belongs to one person: never to a client and a mitra at once (checked here), and to one mitra
    only (the unique index on mitras.phone: `AdminMitrasRepository.add_if_phone_free` refuses a second, which the
    service reports as `PHONE_OF_MITRA`)."""
    return PHONE_OF_CLIENT if phone_of_client else None


def renamed_events(session_ids: list[str], display_name: str) -> list[DocumentWrite]:
    """The clients of the mitra's running sessions see the new name at once."""
    return [session_document(session_id, {"mitra_name": display_name}) for session_id in session_ids]


@dataclass(frozen=True)
class StatusChange:
    at: datetime
    from_status: str
    to_status: str
    reason: str


@dataclass(frozen=True)
class OnlineDay:
    day: date
    online_s: int


@dataclass(frozen=True)
class PresenceHistory:
    mitra_id: str
    from_date: date
    to_date: date
    changes: list[StatusChange]
    online_by_day: list[OnlineDay]

    @property
    def total_online_s(self) -> int:
        return sum(day.online_s for day in self.online_by_day)


def history_days(first: date | None, last: date | None, *, today: date) -> tuple[date, date]:
    """The Jakarta days (both included) of a presence history: up to today, the last seven by default. Whether the
    range is one an admin may ask for is `shared.domain.days.bounds`."""
    last = last or today
    return first or last - timedelta(days=HISTORY_DAYS - 1), last


# -- clients -----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClientOnFile:
    """A client as the control center lists it."""

    client_id: str
    firebase_uid: str | None
    display_name: str
    alias_number: int
    anonymous: bool
    phone: str | None
    email: str | None
    suspended_at: datetime | None
    created_at: datetime

    @property
    def alias(self) -> str:
        return accounts.alias(self.alias_number)

    @property
    def suspended(self) -> bool:
        """A suspended client is refused everywhere at once: identity is read from PostgreSQL
        (`shared.domain.accounts.identity_of`), not from the token."""
        return self.suspended_at is not None


# -- admins ------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AdminOnFile:
    admin_id: str
    firebase_uid: str
    email: str
    created_at: datetime
    created_by: str | None
    # Pushed when a client's message raises a crisis signal.
    on_duty: bool


def may_grant(sign_in: accounts.EmailSignIn, *, client_or_mitra: bool) -> Refused | None:
    """The admin role goes only to an email Firebase has verified: anyone can create an unverified sign-in with a
    future admin's address, and it gets nothing. Admins, mitras and clients are different people: a sign-in that is
    a client's or a mitra's does not become an admin's (`AdminAdminsRepository.is_client_or_mitra`)."""
    if not sign_in.email_verified:
        return EMAIL_NOT_VERIFIED
    return ROLE_CONFLICT if client_or_mitra else None


def may_revoke(admin: AdminOnFile, *, actor_uid: str) -> Refused | None:
    """An admin cannot revoke their own role: the control center always keeps the admin who is acting."""
    return CANNOT_REVOKE_SELF if admin.firebase_uid == actor_uid else None


# -- an admin ends a session -------------------------------------------------------------------------------------------

SESSION_ALREADY_ENDED = Refused(
    "session_not_active",
    "this session has already ended, or is in its goodbye window (end it with goodbye false to close it now)",
)


@dataclass(frozen=True)
class PaidTime:
    """What the client paid for a session's time: its credit and the extensions paid for and applied
    (`AdminSessionsRepository.paid_time`); nothing for a free trial."""

    amount: int
    duration_s: int


@dataclass(frozen=True)
class CreditBack:
    """The unused time of a session an admin ended, credited back to its client."""

    unused_s: int
    amount: int


def may_end(state: Session, *, goodbye: bool) -> Refused | None:
    """An admin ends a session that is still active; one in its goodbye window only to close it at once (`goodbye`
    false: the window is cut short, its ending stays the one it had). One closed, or closing when the admin asks for
    the goodbye window, is `session_not_active` (its end is under way or done: the Idempotency-Key is how a lost
    reply is asked again)."""
    if state.status is SessionStatus.ACTIVE or (state.status is SessionStatus.CLOSING and not goodbye):
        return None
    return SESSION_ALREADY_ENDED


def unused_seconds(state: Session, now: datetime) -> int:
    """The session's time not yet used when an admin ends it: whole seconds up to its end."""
    return max(0, int((state.ends_at - now).total_seconds()))


def credit_back(paid: PaidTime, unused_s: int) -> CreditBack | None:
    """The unused share of what the client paid, rounded down to the rupiah (pro rata of the paid time); None when
    nothing was paid (a free trial) or no time is left. Recorded once per session
    (`AdminSessionsRepository.record_credit_back`, the primary key of session_credit_backs)."""
    if paid.amount <= 0 or paid.duration_s <= 0 or unused_s <= 0:
        return None
    unused = min(unused_s, paid.duration_s)
    return CreditBack(unused_s=unused, amount=paid.amount * unused // paid.duration_s)


@dataclass(frozen=True)
class EndedByAdmin:
    """`admin_session_end`'s answer, given again to a repeat with the same Idempotency-Key."""

    session_id: str
    status: str
    close_reason: str
    goodbye_until: datetime | None
    credited_s: int
    credited_amount: int


# -- the audit log -----------------------------------------------------------------------------------------------------

# The distinct questions an admin's reads of one function in one hour keep (audit_reads.queries); beyond that they are
# counted only.
READ_QUERIES_KEPT = 20


def read_query(asked: Mapping[str, Any]) -> dict[str, Any]:
    """What an admin read asked, as its hour's row keeps it: the filters, not the page's cursor (paging through one
    question is one question)."""
    return {key: value for key, value in asked.items() if key != "cursor"}


@dataclass(frozen=True)
class AuditEntry:
    """One line of the audit log as the reader shows it: a change (one row of audit_log, `reads` 1) or an admin's
    reads of one function in one hour (one row of audit_reads: `at` is the first read, `last_at` the last, `new`
    the questions asked)."""

    entry_id: str
    at: datetime
    last_at: datetime
    actor_uid: str
    actor_role: str
    action: str
    target: str | None
    old: Any
    new: Any
    reads: int
