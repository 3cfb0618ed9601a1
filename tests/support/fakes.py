"""The unit of work and the outside world in memory, for unit tests of the services (no database, no emulators).

`FakeDatabase` holds the tables every `FakeUnitOfWork` of one test shares, as one PostgreSQL database would: rows are
dicts named and shaped as PostgreSQL's (`clients`, `mitras`, `sessions`, `chat_messages`, ...), with `now` as its
clock. A unit of work that ends without `commit()` leaves the tables as it found them. Each area's fake repository
(tests/support/fake_<area>.py) keeps the promises of its PostgreSQL repository, enforcing the same domain rules in
Python that the guarded statements enforce in SQL.

    db = FakeDatabase()
    ports = fake_ports(db)
    chat.send(ports, participant, ...)
    assert ports.documents.written == [...]
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, Self

from shared.domain.config import AppConfig
from shared.domain.events import Claimed, Committed, DocumentEvent, Event, TaskRequest
from shared.services.ports import Ports
from tests.support.fake_accounts import FakeAccountsRepository
from tests.support.fake_admin_admins import FakeAdminAdminsRepository
from tests.support.fake_admin_audit import FakeAdminAuditRepository, count_read
from tests.support.fake_admin_config import FakeAdminConfigRepository
from tests.support.fake_admin_dashboard import FakeAdminDashboardRepository
from tests.support.fake_admin_mitras import FakeAdminMitrasRepository
from tests.support.fake_admin_sessions import FakeAdminSessionsRepository
from tests.support.fake_admin_statistics import FakeAdminStatisticsRepository
from tests.support.fake_admin_users import FakeAdminUsersRepository
from tests.support.fake_billing import FakeBillingRepository, FakeRefundsRepository
from tests.support.fake_billing_history import FakeBillingHistoryRepository

# After a session and safety between people (issue 25).
from tests.support.fake_blocks import FakeBlocksRepository
from tests.support.fake_chat import FakeChatRepository
from tests.support.fake_credits import FakeCreditsRepository
from tests.support.fake_feedback import FakeFeedbackRepository
from tests.support.fake_health import FakeHealthRepository
from tests.support.fake_idempotency import FakeIdempotencyRepository
from tests.support.fake_lifecycle import FakeLifecycleRepository
from tests.support.fake_notes import FakeNotesRepository
from tests.support.fake_notify import FakeNotifyRepository
from tests.support.fake_pairing import FakePairingRepository
from tests.support.fake_presence import FakePresenceRepository
from tests.support.fake_pricing import FakePricingRepository
from tests.support.fake_privacy import FakePrivacyRepository
from tests.support.fake_reports import FakeReportsRepository
from tests.support.fake_safety import FakeSafetyRepository

Row = dict[str, Any]


@dataclass
class OutboxRow:
    outbox_id: int
    event: Event
    due: datetime
    published: bool = False
    attempts: int = 0
    created_at: datetime = field(default_factory=lambda: datetime.min.replace(tzinfo=UTC))


@dataclass
class FakeDatabase:
    """The tables of one test. `tables[name][key]` is one row; `outbox` and `audit` are lists in insertion order."""

    now: datetime = field(default_factory=lambda: datetime(2026, 1, 5, 9, 0, tzinfo=UTC))
    config: AppConfig = field(default_factory=lambda: AppConfig.from_rows({}))
    tables: dict[str, dict[Any, Row]] = field(default_factory=dict)
    outbox: list[OutboxRow] = field(default_factory=list)
    audit: list[Row] = field(default_factory=list)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def table(self, name: str) -> dict[Any, Row]:
        return self.tables.setdefault(name, {})

    def tick(self, seconds: float) -> datetime:
        """Let time pass."""
        self.now += timedelta(seconds=seconds)
        return self.now

    def next_id(self) -> int:
        return next(self._ids)

    def pending(self) -> list[OutboxRow]:
        return [row for row in self.outbox if not row.published]

    def _state(self) -> tuple[Any, ...]:
        return (self.config, self.tables, self.outbox, self.audit)

    def _restore(self, state: tuple[Any, ...]) -> None:
        self.config, self.tables, self.outbox, self.audit = state


class FakeOutbox:
    def __init__(self, db: FakeDatabase) -> None:
        self._db = db
        self._pending: list[Event] = []
        self._recorded: list[Committed] = []

    def add(self, *events: Event) -> None:
        self._pending.extend(events)

    def recorded(self, committed: Sequence[Committed]) -> None:
        self._recorded.extend(committed)

    def insert(self, event: Event, *, delay_s: float = 0) -> int:
        """A row as a repository's own statement records it."""
        row = OutboxRow(self._db.next_id(), event, self._db.now + timedelta(seconds=delay_s), created_at=self._db.now)
        self._db.outbox.append(row)
        return row.outbox_id

    def flush(self) -> list[Committed]:
        events, self._pending = self._pending, []
        committed = self._recorded + [Committed(self.insert(event), event) for event in events]
        self._recorded = []
        return committed

    def has_added(self) -> bool:
        return bool(self._pending)

    def claim(self, ids: Sequence[int] | None, limit: int) -> list[Claimed]:
        rows = [
            row
            for row in self._db.outbox
            if not row.published and (row.outbox_id in ids if ids is not None else row.due <= self._db.now)
        ]
        return [Claimed(row.outbox_id, row.event) for row in rows[: limit if ids is None else None]]

    def mark_published(self, ids: Sequence[int]) -> None:
        for row in self._db.outbox:
            if row.outbox_id in ids:
                row.published = True

    def mark_failed(self, ids: Sequence[int], error: str | None) -> None:
        for row in self._db.outbox:
            if row.outbox_id in ids:
                row.attempts += 1
                cap = 2 if isinstance(row.event, TaskRequest) else 300  # TIMER_MAX_BACKOFF_S, MAX_BACKOFF_S
                row.due = self._db.now + timedelta(seconds=min(cap, 2 ** (row.attempts - 1)))

    def pending_count(self) -> int:
        return len(self._db.pending())

    def add_deferred(self, event: Event, *, delay_s: float) -> int:
        return self.insert(event, delay_s=delay_s)

    def replace_if_pending(self, outbox_id: int, event: Event) -> bool:
        for row in self._db.outbox:
            if row.outbox_id == outbox_id and not row.published:
                row.event = event
                return True
        return False

    def mark_published_if_unchanged(self, outbox_id: int, event: Event) -> bool:
        for row in self._db.outbox:
            if row.outbox_id == outbox_id and not row.published and row.event == event:
                row.published = True
                return True
        return False


class FakeSettings:
    def __init__(self, db: FakeDatabase) -> None:
        self._db = db

    def load(self) -> AppConfig:
        return self._db.config


class FakeAudit:
    def __init__(self, db: FakeDatabase) -> None:
        self._db = db

    def record(self, *, actor_uid: str, actor_role: str, action: str, target: str, old: Any, new: Any) -> None:
        self._db.audit.append(
            {
                "actor_uid": actor_uid,
                "actor_role": actor_role,
                "action": action,
                "target": target,
                "old": old,
                "new": new,
                "id": self._db.next_id(),
                "at": self._db.now,
            }
        )

    def count_read(self, *, actor_uid: str, actor_role: str, function: str, query: Mapping[str, Any]) -> None:
        count_read(self._db, actor_uid=actor_uid, actor_role=actor_role, function=function, query=query)


class FakeUnitOfWork:
    def __init__(self, db: FakeDatabase, *, one_statement: bool = False) -> None:
        self._db = db
        self._one_statement = one_statement
        self._saved: tuple[Any, ...] | None = None
        self._committed = False
        self.outbox = FakeOutbox(db)
        self.settings = FakeSettings(db)
        self.audit = FakeAudit(db)
        self.accounts = FakeAccountsRepository(db)
        self.admin_admins = FakeAdminAdminsRepository(db)
        self.admin_audit = FakeAdminAuditRepository(db)
        self.admin_config = FakeAdminConfigRepository(db)
        self.admin_dashboard = FakeAdminDashboardRepository(db)
        self.admin_statistics = FakeAdminStatisticsRepository(db)
        self.admin_mitras = FakeAdminMitrasRepository(db)
        self.admin_sessions = FakeAdminSessionsRepository(db)
        self.admin_users = FakeAdminUsersRepository(db)
        self.billing = FakeBillingRepository(db)
        self.chat = FakeChatRepository(db, self.outbox)
        self.credits = FakeCreditsRepository(db)
        self.health = FakeHealthRepository(db)
        self.idempotency = FakeIdempotencyRepository(db)
        self.pairing = FakePairingRepository(db)
        self.presence = FakePresenceRepository(db)
        self.lifecycle = FakeLifecycleRepository(db)
        self.refunds = FakeRefundsRepository(db)
        self.notify = FakeNotifyRepository(db)
        self.pricing = FakePricingRepository(db)
        self.privacy = FakePrivacyRepository(db)
        self.safety = FakeSafetyRepository(db)
        self.billing_history = FakeBillingHistoryRepository(db)

        # After a session and safety between people (issue 25).
        self.feedback = FakeFeedbackRepository(db)
        self.notes = FakeNotesRepository(db)
        self.reports = FakeReportsRepository(db)
        self.blocks = FakeBlocksRepository(db)

    def __enter__(self) -> Self:
        if not self._one_statement:
            self._saved = copy.deepcopy(self._db._state())
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        if self._saved is not None and not self._committed:
            self._db._restore(self._saved)

    def commit(self) -> list[Committed]:
        if self._one_statement and self.outbox.has_added():
            raise RuntimeError("a one-statement unit of work commits only the events its statement recorded")
        self._committed = True
        return self.outbox.flush()


class FakeDocuments:
    """Firestore: the documents written, in order; `refuse` makes every write fail as an outage does."""

    def __init__(self) -> None:
        self.written: list[DocumentEvent] = []
        # Each written event's version (its outbox row id; None for a write made outside the outbox).
        self.versions: list[int | None] = []
        self.refuse = False

    def apply(self, events: Sequence[DocumentEvent], versions: Sequence[int | None] | None = None) -> None:
        if self.refuse:
            raise ConnectionError("firestore is unreachable")
        self.written.extend(events)
        self.versions.extend(versions if versions is not None else [None] * len(events))


class FakePublisher:
    def __init__(self) -> None:
        self.published: list[tuple[str, bytes, dict[str, str]]] = []
        self.refuse = False

    def publish(self, topic: str, data: bytes, attributes: dict[str, str]) -> str:
        return self.publish_all([(topic, data, attributes)])[0]

    def publish_all(self, messages: Sequence[tuple[str, bytes, dict[str, str]]]) -> list[str]:
        if self.refuse:
            raise ConnectionError("pubsub is unreachable")
        self.published.extend(messages)
        return [str(len(self.published) - len(messages) + n) for n in range(len(messages))]


class FakeTasks:
    """Cloud Tasks: tasks by name, created once each."""

    def __init__(self) -> None:
        self.created: dict[str, TaskRequest] = {}
        self.refuse = False

    def schedule(
        self,
        *,
        queue: str,
        task_id: str,
        handler: str,
        payload: dict[str, Any],
        at: datetime | None,
        trace: str | None = None,
    ) -> bool:
        if self.refuse:
            raise ConnectionError("cloud tasks is unreachable")
        if task_id in self.created:
            return False
        self.created[task_id] = TaskRequest(queue, task_id, handler, payload, at)
        return True

    def cancel(self, *, queue: str, task_id: str) -> bool:
        return self.created.pop(task_id, None) is not None


class FakeMarks:
    def __init__(self, db: FakeDatabase) -> None:
        self._db = db

    def mark(self, ids: Sequence[int]) -> None:
        for row in self._db.outbox:
            if row.outbox_id in ids:
                row.published = True


@dataclass(frozen=True)
class FakePorts(Ports):
    """Ports whose adapters are the fakes above (typed so a test reaches their records)."""

    documents: FakeDocuments
    publisher: FakePublisher
    tasks: FakeTasks


def fake_ports(db: FakeDatabase) -> FakePorts:
    def unit_of_work(*, one_statement: bool = False) -> FakeUnitOfWork:
        return FakeUnitOfWork(db, one_statement=one_statement)

    return FakePorts(
        uow=unit_of_work,
        documents=FakeDocuments(),
        publisher=FakePublisher(),
        tasks=FakeTasks(),
        marks=FakeMarks(db),
    )


def with_config(db: FakeDatabase, **settings: Any) -> None:
    """Change settings, as the control center would."""
    db.config = db.config.model_copy(update=settings)
