"""Billing: checkout through a Xendit invoice, the unpaid-invoice timeout, admin refunds.

Xendit's callback is functions/billing_webhook.py: its instance needs none of what is imported here.
"""

from __future__ import annotations

from functions._http import Call, endpoint
from functions._tasks import task_handler
from shared import bootstrap
from shared.domain.billing import Purpose
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
from shared.services import admin_payments, billing, lifecycle

# Extensions are bought here (the lifecycle checks the extension is payable); functions/billing_webhook.py registers
# the same for the webhook's instance, which delivers them.
lifecycle.register_extension_purpose()


@endpoint(post=CheckoutBody, roles={Role.CLIENT}, response=CheckoutReply)
def billing_checkout(call: Call[CheckoutBody]) -> CheckoutReply:
    """Open a Xendit invoice for a tier, priced by us; pay it at `invoice_url` before `expires_at`."""
    assert call.caller.account_id is not None
    extension_id = str(call.body.extension_id) if call.body.extension_id else None
    request = billing.CheckoutRequest(tier_id=call.body.tier_id, purpose=Purpose(call.body.purpose),
                                      extension_id=extension_id)  # fmt: skip
    opened = billing.checkout(bootstrap.ports(), bootstrap.payments(), call.caller.account_id, request,
                              idempotency_key=call.idempotency_key)  # fmt: skip
    return CheckoutReply.model_validate(opened, from_attributes=True)


@task_handler(TransactionRef)
def task_payment_timeout(payload: TransactionRef) -> str:
    """The payment window has passed: expire the invoice and the transaction unless Xendit says it was paid."""
    return billing.expire_unpaid(bootstrap.ports(), bootstrap.payments(), str(payload.transaction_id))


@endpoint(post=RefundBody, roles={Role.ADMIN}, response=RefundReply, check_revoked=True)
def admin_refund(call: Call[RefundBody]) -> RefundReply:
    """Refund a paid session credit the client has not used, through Xendit; refused once a session used it.
    `refunding` until Xendit confirms the money is back (its refund callback), `refunded` once it has."""
    done = billing.refund(bootstrap.ports(), bootstrap.payments(), call.caller.uid, str(call.body.transaction_id),
                          call.body.reason)  # fmt: skip
    return RefundReply.model_validate(done, from_attributes=True)


@endpoint(get=PaymentEventQuery, post=ReviewPaymentEvent, roles={Role.ADMIN}, response=PaymentEventPage,
          check_revoked=True)  # fmt: skip
def admin_payment_events(call: Call[PaymentEventQuery | ReviewPaymentEvent]) -> PaymentEventPage:
    """GET: quarantined Xendit callbacks (money not matched as ordered or refunded). POST: record one's review.
    Listed newest first; a refund's callback has `kind` refund."""
    body = call.body
    if isinstance(body, ReviewPaymentEvent):
        row = admin_payments.review(bootstrap.database(), call.caller.uid, body.event_id, body.note)
        return PaymentEventPage(events=[QuarantinedPayment.model_validate(row)])
    reviewed = None if body.status is None else body.status == "reviewed"
    rows, cursor = admin_payments.list_quarantined(bootstrap.database(), reviewed=reviewed, cursor=body.cursor,
                                                   limit=body.limit)  # fmt: skip
    return PaymentEventPage(events=[QuarantinedPayment.model_validate(row) for row in rows], next_cursor=cursor)
