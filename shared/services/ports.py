"""What the use cases need from the outside world, as protocols; shared/bootstrap.py builds the adapters behind them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from shared.domain.events import DocumentEvent
from shared.services.unit_of_work import UnitOfWorkFactory

if TYPE_CHECKING:
    from shared.domain.accounts import EmailSignIn
    from shared.domain.billing import Invoice, Refund


class DocumentWriter(Protocol):
    def apply(self, events: Sequence[DocumentEvent], versions: Sequence[int | None] | None = None) -> None:
        """Write every document; batched, so a failure means none of one batch landed. `versions`, one per event,
        are their outbox row ids: a versioned document (shared/domain/projection.py) keeps the newest of each
        field."""


class Publisher(Protocol):
    def publish(self, topic: str, data: bytes, attributes: dict[str, str]) -> str:
        """Publish and wait for the server's message id."""

    def publish_all(self, messages: Sequence[tuple[str, bytes, dict[str, str]]]) -> list[str]:
        """Publish (topic, data, attributes) messages, each topic's in one request; their ids in the order given."""


class TaskScheduler(Protocol):
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
        """True if created, False if a task of that name exists or existed recently. `trace`: the trace id the
        handler's log lines join."""

    def cancel(self, *, queue: str, task_id: str) -> bool: ...


class PublishedMarks(Protocol):
    def mark(self, ids: Sequence[int]) -> None:
        """These outbox rows were delivered (shared with concurrent requests' rows in one statement)."""


@dataclass(frozen=True)
class Ports:
    """Everything a use case may touch, built once per instance by shared/bootstrap.py."""

    uow: UnitOfWorkFactory
    documents: DocumentWriter
    publisher: Publisher
    tasks: TaskScheduler
    marks: PublishedMarks


class IdentityProvider(Protocol):
    """Firebase Auth as the use cases need it."""

    def set_role(self, uid: str, role: str | None) -> None: ...

    def revoke_sessions(self, uid: str) -> None: ...

    def delete_user(self, uid: str) -> None:
        """The Firebase user is gone (its tokens with it), so its phone number or email can sign up afresh.
        Deleting a user that no longer exists does nothing."""

    def sign_in_for_email(self, email: str) -> EmailSignIn | None:
        """The Firebase user signing in with this email, and whether Firebase has verified that they own it."""


class PaymentProvider(Protocol):
    """Xendit as billing needs it. Errors are `PaymentProviderError`, which says whether repeating may succeed."""

    def create_invoice(
        self, *, external_id: str, amount: int, description: str, invoice_duration_s: int
    ) -> Invoice: ...

    def get_invoice(self, invoice_id: str) -> Invoice: ...

    def expire_invoice(self, invoice_id: str) -> Invoice: ...

    def refund_invoice(self, *, invoice_id: str, amount: int, reference_id: str, reason: str) -> Refund: ...

    def get_refund(self, refund_id: str) -> Refund: ...
