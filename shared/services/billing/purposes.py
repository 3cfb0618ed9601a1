"""What each purpose of a payment checks before it is bought, and delivers once it is paid: the one table both
checkout and the invoice callback read.

`check` refuses (a Conflict, or an InvalidRequest naming the field) a checkout for something that cannot be bought
now, e.g. an extension that is no longer open. `deliver` runs inside the change that marks the payment paid, and
answers False when what was bought can no longer be delivered (the session ended before the extension's payment
landed): the money then stays with the client as a session credit of the same tier, to use or to have refunded.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from shared.domain.billing import CheckoutRequest, PaidTransaction, Purpose
from shared.services.unit_of_work import UnitOfWork


@dataclass(frozen=True)
class PurposeHandler:
    check: Callable[[UnitOfWork, str, CheckoutRequest], None]
    deliver: Callable[[UnitOfWork, PaidTransaction], bool]


def _any_client_may_buy_a_session(_uow: UnitOfWork, _client_id: str, _request: CheckoutRequest) -> None:
    """Any client may buy a session of any active tier; the tier itself is checked for every purpose."""


def _issue_credit(uow: UnitOfWork, paid: PaidTransaction) -> bool:
    uow.credits.issue(paid.transaction_id)
    return True


def _extension_payable(uow: UnitOfWork, client_id: str, request: CheckoutRequest) -> None:
    from shared.services import lifecycle  # an extension's only: a session's checkout loads none of the lifecycle

    lifecycle.extension_payable(uow, request.extension_id, client_id, request.tier_id)


def _apply_extension(uow: UnitOfWork, paid: PaidTransaction) -> bool:
    from shared.services import lifecycle

    return paid.extension_id is not None and lifecycle.apply_paid_extension(uow, paid.extension_id)


PURPOSES: dict[Purpose, PurposeHandler] = {
    Purpose.SESSION: PurposeHandler(check=_any_client_may_buy_a_session, deliver=_issue_credit),
    Purpose.EXTENSION: PurposeHandler(check=_extension_payable, deliver=_apply_extension),
}
