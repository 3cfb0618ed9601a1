"""Billing: checkout through a Xendit invoice, the unpaid-invoice timeout, admin refunds, the quarantine's review.

Xendit's callback is functions/billing_webhook.py, and the refund sweep functions/billing_sweep.py: their instances
need none of what is imported here.
"""

from __future__ import annotations

from functions._http import Call, endpoint
from functions._tasks import task_handler
from shared import bootstrap
from shared.domain.billing import CheckoutRequest, Purpose
from shared.domain.roles import Role
from shared.schemas.billing import (
    CheckoutBody,
    CheckoutReply,
    PaymentEventPage,
    PaymentEventQuery,
    QuarantinedPayment,
    RefundBody,
    RefundReply,
    ReviewPaymentEvent,
    TransactionRef,
)
from shared.services.billing import checkout

# Each function imports the part of billing it runs in its body (payments, refunds, quarantine): billing_checkout's
# cold start loads neither what a paid transaction delivers (purposes.py, and the pairing and chat behind it) nor
# the refunds.


@endpoint(post=CheckoutBody, roles={Role.CLIENT}, response=CheckoutReply, errors={404, 409, 429})
def billing_checkout(call: Call[CheckoutBody]) -> CheckoutReply:
    """Open a Xendit invoice for a tier, priced by us; pay it at `invoice_url` before `expires_at`."""
    body = call.body
    request = CheckoutRequest(
        tier_id=body.tier_id,
        purpose=Purpose(body.purpose),
        extension_id=str(body.extension_id) if body.extension_id else None,
    )
    client_id = call.caller.participant().account_id
    opened = checkout.open_invoice(
        bootstrap.ports(), bootstrap.payments(), client_id, request, idempotency_key=call.idempotency_key
    )
    return CheckoutReply.model_validate(opened, from_attributes=True)


@task_handler(TransactionRef)
def task_payment_timeout(payload: TransactionRef) -> str:
    """The payment window has passed: expire the invoice and the transaction unless Xendit says it was paid."""
    from shared.services.billing import payments

    return payments.expire_unpaid(bootstrap.ports(), bootstrap.payments(), str(payload.transaction_id))


@endpoint(post=RefundBody, roles={Role.ADMIN}, response=RefundReply, check_revoked=True, errors={404, 409})
def admin_refund(call: Call[RefundBody]) -> RefundReply:
    """Refund a paid session credit the client has not used, through Xendit; refused once a session used it.
    `refunding` until Xendit confirms the money is back (its refund callback), `refunded` once it has."""
    from shared.services.billing import refunds

    body = call.body
    done = refunds.refund(
        bootstrap.ports(), bootstrap.payments(), call.caller.uid, str(body.transaction_id), body.reason
    )
    return RefundReply.model_validate(done, from_attributes=True)


@endpoint(
    get=PaymentEventQuery,
    post=ReviewPaymentEvent,
    roles={Role.ADMIN},
    response=PaymentEventPage,
    check_revoked=True,
    errors={404},
)
def admin_payment_events(call: Call[PaymentEventQuery | ReviewPaymentEvent]) -> PaymentEventPage:
    """GET: the quarantined Xendit callbacks (money not matched as ordered or refunded), newest first; a refund's
    callback has `kind` refund. POST: record an admin's review of one."""
    from shared.services.billing import quarantine

    body = call.body
    if isinstance(body, ReviewPaymentEvent):
        row = quarantine.review(bootstrap.ports(), call.caller.uid, body.event_id, body.note)
        return PaymentEventPage(events=[QuarantinedPayment.model_validate(row)])
    reviewed = None if body.status is None else body.status == "reviewed"
    rows, cursor = quarantine.list_quarantined(
        bootstrap.ports(), reviewed=reviewed, cursor=body.cursor, limit=body.limit
    )
    return PaymentEventPage(events=[QuarantinedPayment.model_validate(row) for row in rows], next_cursor=cursor)
