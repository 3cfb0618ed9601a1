"""The unit of work: what a use case sees of storage.

One unit of work is one PostgreSQL transaction. Its repositories, one per area, hold that area's SQL; its outbox
gathers the events of the change. `commit()` inserts the events and commits, and returns them with their outbox ids
for the projector to deliver; leaving the block without committing rolls everything back. A use case whose whole
change is one guarded statement asks for `one_statement=True`: each statement then runs alone (one round trip, no
BEGIN/COMMIT), and only events that statement recorded itself can be committed.

    with ports.uow() as uow:
        request = uow.pairing.searching_request(request_id)     # load
        decision = rules.decide(request, config)                # decide (shared/domain)
        uow.pairing.save(...)                                   # save (guarded SQL, named for its intent)
        uow.outbox.add(DocumentWrite.at(...), TopicMessage(...))
        committed = uow.commit()
    projector.deliver(ports, committed)                         # publish, after the commit

Services are unit-tested on `tests/support/fakes.py`'s FakeUnitOfWork, which keeps the same promises in memory.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol, Self

from shared.domain.config import AppConfig
from shared.domain.events import Claimed, Committed, Event

if TYPE_CHECKING:
    from shared.services.accounts import AccountsRepository
    from shared.services.admin_admins import AdminAdminsRepository
    from shared.services.admin_audit import AdminAuditRepository
    from shared.services.admin_config import AdminConfigRepository
    from shared.services.admin_dashboard import AdminDashboardRepository
    from shared.services.admin_mitras import AdminMitrasRepository
    from shared.services.admin_sessions import AdminSessionsRepository
    from shared.services.admin_statistics import AdminStatisticsRepository
    from shared.services.admin_users import AdminUsersRepository
    from shared.services.billing import BillingRepository, RefundsRepository
    from shared.services.billing.history import BillingHistoryRepository

    # After a session and safety between people (issue 25).
    from shared.services.blocks import BlocksRepository
    from shared.services.chat import ChatRepository
    from shared.services.credits import CreditsRepository
    from shared.services.feedback import FeedbackRepository
    from shared.services.health import HealthRepository
    from shared.services.idempotency import IdempotencyRepository
    from shared.services.lifecycle import LifecycleRepository
    from shared.services.notes import NotesRepository
    from shared.services.notify import NotifyRepository
    from shared.services.pairing import PairingRepository
    from shared.services.presence import PresenceRepository
    from shared.services.pricing import PricingRepository
    from shared.services.privacy import PrivacyRepository
    from shared.services.reports import ReportsRepository
    from shared.services.safety import SafetyRepository


class Outbox(Protocol):
    def add(self, *events: Event) -> None:
        """Events to commit with this unit of work."""

    def recorded(self, committed: Sequence[Committed]) -> None:
        """Events a repository's statement recorded itself (a hot path's single round trip)."""

    def claim(self, ids: Sequence[int] | None, limit: int) -> list[Claimed]:
        """Pending rows to deliver (these, or those due), locked until this unit of work ends."""

    def mark_published(self, ids: Sequence[int]) -> None: ...

    def mark_failed(self, ids: Sequence[int], error: str | None) -> None: ...

    def pending_count(self) -> int: ...

    def add_deferred(self, event: Event, *, delay_s: float) -> int:
        """An event due only after `delay_s`, unless another write carries it first; its row's id."""

    def replace_if_pending(self, outbox_id: int, event: Event) -> bool: ...

    def mark_published_if_unchanged(self, outbox_id: int, event: Event) -> bool: ...


class SettingsStore(Protocol):
    def load(self) -> AppConfig: ...


class AuditLog(Protocol):
    def record(self, *, actor_uid: str, actor_role: str, action: str, target: str, old: Any, new: Any) -> None: ...

    def count_read(self, *, actor_uid: str, actor_role: str, function: str, query: Mapping[str, Any]) -> None: ...


class UnitOfWork(Protocol):
    @property
    def outbox(self) -> Outbox: ...

    @property
    def settings(self) -> SettingsStore: ...

    @property
    def audit(self) -> AuditLog: ...

    @property
    def admin_admins(self) -> AdminAdminsRepository: ...

    @property
    def admin_audit(self) -> AdminAuditRepository: ...

    @property
    def admin_config(self) -> AdminConfigRepository: ...

    @property
    def admin_dashboard(self) -> AdminDashboardRepository: ...

    @property
    def admin_mitras(self) -> AdminMitrasRepository: ...

    @property
    def admin_sessions(self) -> AdminSessionsRepository: ...

    @property
    def admin_users(self) -> AdminUsersRepository: ...

    @property
    def admin_statistics(self) -> AdminStatisticsRepository: ...

    @property
    def billing(self) -> BillingRepository: ...

    @property
    def accounts(self) -> AccountsRepository: ...

    @property
    def chat(self) -> ChatRepository: ...

    @property
    def credits(self) -> CreditsRepository: ...

    @property
    def health(self) -> HealthRepository: ...

    @property
    def idempotency(self) -> IdempotencyRepository: ...

    @property
    def pairing(self) -> PairingRepository: ...

    @property
    def presence(self) -> PresenceRepository: ...

    @property
    def lifecycle(self) -> LifecycleRepository: ...

    @property
    def refunds(self) -> RefundsRepository: ...

    @property
    def notify(self) -> NotifyRepository: ...

    @property
    def pricing(self) -> PricingRepository: ...

    @property
    def privacy(self) -> PrivacyRepository: ...

    @property
    def safety(self) -> SafetyRepository: ...

    @property
    def billing_history(self) -> BillingHistoryRepository: ...

    # After a session and safety between people (issue 25).
    @property
    def feedback(self) -> FeedbackRepository: ...

    @property
    def notes(self) -> NotesRepository: ...

    @property
    def reports(self) -> ReportsRepository: ...

    @property
    def blocks(self) -> BlocksRepository: ...

    def __enter__(self) -> Self: ...

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None: ...

    def commit(self) -> list[Committed]:
        """Insert the outbox's events and commit; the events with their outbox ids, to deliver."""


class UnitOfWorkFactory(Protocol):
    def __call__(self, *, one_statement: bool = False) -> UnitOfWork: ...
