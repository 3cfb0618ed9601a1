"""The unit of work on PostgreSQL (see shared/services/unit_of_work.py): one transaction, the repositories on it,
and the outbox committed with it. Each repository's module is imported when a use case first asks for it, so an
instance loads the SQL of its own function only."""

from __future__ import annotations

from types import TracebackType
from typing import TYPE_CHECKING, Any, Self, TypeVar

from shared.adapters.postgres.database import Database, Transaction
from shared.adapters.postgres.outbox import PostgresOutbox
from shared.adapters.postgres.settings import SettingsRepository
from shared.adapters.postgres.sql import Autocommit, Sql
from shared.domain.events import Committed

if TYPE_CHECKING:
    from shared.adapters.postgres.accounts import AccountsRepository
    from shared.adapters.postgres.admin_admins import AdminAdminsRepository
    from shared.adapters.postgres.admin_audit import AdminAuditRepository
    from shared.adapters.postgres.admin_config import AdminConfigRepository
    from shared.adapters.postgres.admin_dashboard import AdminDashboardRepository
    from shared.adapters.postgres.admin_mitras import AdminMitrasRepository
    from shared.adapters.postgres.admin_sessions import AdminSessionsRepository
    from shared.adapters.postgres.admin_statistics import AdminStatisticsRepository
    from shared.adapters.postgres.admin_users import AdminUsersRepository
    from shared.adapters.postgres.audit import AuditRepository
    from shared.adapters.postgres.billing import BillingRepository
    from shared.adapters.postgres.billing_history import BillingHistoryRepository
    from shared.adapters.postgres.billing_refunds import RefundsRepository

    # After a session and safety between people (issue 25).
    from shared.adapters.postgres.blocks import BlocksRepository
    from shared.adapters.postgres.chat import ChatRepository
    from shared.adapters.postgres.credits import CreditsRepository
    from shared.adapters.postgres.feedback import FeedbackRepository
    from shared.adapters.postgres.health import HealthRepository
    from shared.adapters.postgres.idempotency import IdempotencyRepository
    from shared.adapters.postgres.lifecycle import LifecycleRepository
    from shared.adapters.postgres.notes import NotesRepository
    from shared.adapters.postgres.notify import NotifyRepository
    from shared.adapters.postgres.pairing import PairingRepository
    from shared.adapters.postgres.presence import PresenceRepository
    from shared.adapters.postgres.pricing import PricingRepository
    from shared.adapters.postgres.privacy import PrivacyRepository
    from shared.adapters.postgres.reports import ReportsRepository
    from shared.adapters.postgres.safety import SafetyRepository

Repository = TypeVar("Repository")


class PostgresUnitOfWork:
    def __init__(self, database: Database, *, one_statement: bool = False) -> None:
        self._database = database
        self._one_statement = one_statement
        self._tx: Transaction | None = None
        self._sql: Sql | None = None
        self._outbox: PostgresOutbox | None = None
        self._repositories: dict[type[Any], Any] = {}

    def __enter__(self) -> Self:
        if self._one_statement:
            self._sql = Autocommit(self._database)
        else:
            self._sql = self._tx = self._database.begin()
        self._outbox = PostgresOutbox(self._sql)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        """Rolls back unless committed; a connection lost under the block is a retryable Unavailable."""
        if self._tx is not None:
            self._tx.close(exc)

    def commit(self) -> list[Committed]:
        committed = self.outbox.flush() if self._tx is not None else self._recorded_alone()
        if self._tx is not None:
            self._tx.commit()
        return committed

    def _recorded_alone(self) -> list[Committed]:
        """Statements that ran alone committed as they ran: only the rows they recorded themselves are atomic with
        them, so an event merely added could be published for a change that never happened."""
        if self.outbox.has_added():
            raise RuntimeError("a one-statement unit of work commits only the events its statement recorded")
        return self.outbox.flush()

    @property
    def sql(self) -> Sql:
        if self._sql is None:
            raise RuntimeError("a unit of work is used inside its `with` block")
        return self._sql

    @property
    def outbox(self) -> PostgresOutbox:
        if self._outbox is None:
            raise RuntimeError("a unit of work is used inside its `with` block")
        return self._outbox

    @property
    def settings(self) -> SettingsRepository:
        return self._repository(SettingsRepository)

    @property
    def audit(self) -> AuditRepository:
        from shared.adapters.postgres.audit import AuditRepository

        return self._repository(AuditRepository)

    @property
    def admin_admins(self) -> AdminAdminsRepository:
        from shared.adapters.postgres.admin_admins import AdminAdminsRepository

        return self._repository(AdminAdminsRepository)

    @property
    def admin_audit(self) -> AdminAuditRepository:
        from shared.adapters.postgres.admin_audit import AdminAuditRepository

        return self._repository(AdminAuditRepository)

    @property
    def admin_config(self) -> AdminConfigRepository:
        from shared.adapters.postgres.admin_config import AdminConfigRepository

        return self._repository(AdminConfigRepository)

    @property
    def admin_dashboard(self) -> AdminDashboardRepository:
        from shared.adapters.postgres.admin_dashboard import AdminDashboardRepository

        return self._repository(AdminDashboardRepository)

    @property
    def admin_statistics(self) -> AdminStatisticsRepository:
        from shared.adapters.postgres.admin_statistics import AdminStatisticsRepository

        return self._repository(AdminStatisticsRepository)

    @property
    def admin_mitras(self) -> AdminMitrasRepository:
        from shared.adapters.postgres.admin_mitras import AdminMitrasRepository

        return self._repository(AdminMitrasRepository)

    @property
    def admin_sessions(self) -> AdminSessionsRepository:
        from shared.adapters.postgres.admin_sessions import AdminSessionsRepository

        return self._repository(AdminSessionsRepository)

    @property
    def admin_users(self) -> AdminUsersRepository:
        from shared.adapters.postgres.admin_users import AdminUsersRepository

        return self._repository(AdminUsersRepository)

    @property
    def billing(self) -> BillingRepository:
        from shared.adapters.postgres.billing import BillingRepository

        return self._repository(BillingRepository)

    @property
    def accounts(self) -> AccountsRepository:
        from shared.adapters.postgres.accounts import AccountsRepository

        return self._repository(AccountsRepository)

    @property
    def chat(self) -> ChatRepository:
        from shared.adapters.postgres.chat import ChatRepository

        return self._repository(ChatRepository)

    @property
    def credits(self) -> CreditsRepository:
        from shared.adapters.postgres.credits import CreditsRepository

        return self._repository(CreditsRepository)

    @property
    def health(self) -> HealthRepository:
        from shared.adapters.postgres.health import HealthRepository

        return self._repository(HealthRepository)

    @property
    def idempotency(self) -> IdempotencyRepository:
        from shared.adapters.postgres.idempotency import IdempotencyRepository

        return self._repository(IdempotencyRepository)

    @property
    def pairing(self) -> PairingRepository:
        from shared.adapters.postgres.pairing import PairingRepository

        return self._repository(PairingRepository)

    @property
    def presence(self) -> PresenceRepository:
        from shared.adapters.postgres.presence import PresenceRepository

        return self._repository(PresenceRepository)

    @property
    def lifecycle(self) -> LifecycleRepository:
        from shared.adapters.postgres.lifecycle import LifecycleRepository

        return self._repository(LifecycleRepository)

    @property
    def refunds(self) -> RefundsRepository:
        from shared.adapters.postgres.billing_refunds import RefundsRepository

        return self._repository(RefundsRepository)

    @property
    def notify(self) -> NotifyRepository:
        from shared.adapters.postgres.notify import NotifyRepository

        return self._repository(NotifyRepository)

    @property
    def pricing(self) -> PricingRepository:
        from shared.adapters.postgres.pricing import PricingRepository

        return self._repository(PricingRepository)

    @property
    def privacy(self) -> PrivacyRepository:
        from shared.adapters.postgres.privacy import PrivacyRepository

        return self._repository(PrivacyRepository)

    @property
    def safety(self) -> SafetyRepository:
        from shared.adapters.postgres.safety import SafetyRepository

        return self._repository(SafetyRepository)

    @property
    def billing_history(self) -> BillingHistoryRepository:
        from shared.adapters.postgres.billing_history import BillingHistoryRepository

        return self._repository(BillingHistoryRepository)

    # After a session and safety between people (issue 25).
    @property
    def feedback(self) -> FeedbackRepository:
        from shared.adapters.postgres.feedback import FeedbackRepository

        return self._repository(FeedbackRepository)

    @property
    def notes(self) -> NotesRepository:
        from shared.adapters.postgres.notes import NotesRepository

        return self._repository(NotesRepository)

    @property
    def reports(self) -> ReportsRepository:
        from shared.adapters.postgres.reports import ReportsRepository

        return self._repository(ReportsRepository)

    @property
    def blocks(self) -> BlocksRepository:
        from shared.adapters.postgres.blocks import BlocksRepository

        return self._repository(BlocksRepository)

    def _repository(self, kind: type[Repository]) -> Repository:
        found = self._repositories.get(kind)
        if found is None:
            found = self._repositories[kind] = kind(self.sql)  # type: ignore[call-arg]
        return found  # type: ignore[no-any-return]
