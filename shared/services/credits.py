"""Session credits: a paid `session` transaction is one credit for its tier, the client's until a session uses it
or an admin refunds it (so is a paid extension that could no longer be applied). Pairing reserves, releases and
consumes credits inside its own units of work; billing issues them and refunds them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from shared.errors import Conflict
from shared.services.unit_of_work import UnitOfWork

if TYPE_CHECKING:  # types only: pairing's instances, which consume credits, load none of billing
    from shared.domain.billing import Balance, Credit, CreditedBack


class CreditsRepository(Protocol):
    """shared/adapters/postgres/credits.py"""

    def issue(self, transaction_id: str) -> None: ...

    def reserve(self, client_id: str, *, tier_id: str, request_id: str) -> Credit | None: ...

    def release(self, request_id: str) -> bool: ...

    def consume(self, request_id: str) -> bool: ...

    def balances(self, client_id: str) -> list[Balance]: ...

    def credited_back(self, client_id: str) -> list[CreditedBack]: ...


def consume_held(uow: UnitOfWork, request_id: str) -> None:
    """The paid request's session starts: its credit is used up. A paid request reaching a session without its
    credit would be a free session, so the start is refused."""
    if not uow.credits.consume(request_id):
        raise Conflict("this request's payment is no longer held", code="credit_unavailable")
