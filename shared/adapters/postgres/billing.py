"""Billing's SQL: checkout's transactions, the moves of a payment (each guarded by the status it was decided on, as
shared.domain.billing.TransactionStatus allows), the ledger, and the record of Xendit's callbacks."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

from shared.adapters.postgres.database import Row
from shared.adapters.postgres.sql import Sql
from shared.domain.billing import (
    CHECKOUT_WINDOW,
    CREDIT_BACK,
    AttachedInvoice,
    CallbackRecord,
    CheckoutRequest,
    Expired,
    Invoice,
    LockedOrder,
    PaymentWindow,
    PendingTransaction,
    Purpose,
    RecentCheckouts,
    TransactionStatus,
)
from shared.domain.pricing import PricingTier

_PENDING_COLUMNS = """id::text AS transaction_id, purpose, tier_id, extension_id::text, duration_s, amount, status,
                      invoice_url, expires_at, now() AS now,
                      coalesce((SELECT u.amount FROM credit_back_uses u
                                WHERE u.transaction_id = customer_transactions.id AND u.kind = 'use'), 0)
                          AS credit_back_used"""

# Only the first attempt attaches its invoice; any other (a concurrent retry with the same Idempotency-Key, or one
# that asked Xendit after the transaction expired) reads what is there, in the same statement.
_ATTACH = """
WITH attached AS (
    UPDATE customer_transactions SET xendit_invoice_id = :invoice, invoice_url = :url
    WHERE id = CAST(:id AS uuid) AND xendit_invoice_id IS NULL AND status = 'pending'
    RETURNING invoice_url, expires_at
)
SELECT invoice_url, expires_at FROM attached
UNION ALL
SELECT invoice_url, expires_at FROM customer_transactions
WHERE id = CAST(:id AS uuid) AND NOT EXISTS (SELECT FROM attached)
"""

_QUARANTINED_COLUMNS = """id AS event_id, received_at, kind, reason, transaction_id::text, external_id,
    xendit_invoice_id, xendit_refund_id, provider_status, amount::float8 AS amount, paid_amount::float8 AS paid_amount,
    currency, reviewed_at, reviewed_by, review_note"""


class BillingRepository:
    def __init__(self, sql: Sql) -> None:
        self._sql = sql

    # -- checkout ----------------------------------------------------------------------------------------------------

    def locked_client_uid(self, client_id: str) -> str | None:
        """The client's Firebase uid; the client's row locked until the change ends, so one client's checkouts go
        one at a time and one Idempotency-Key opens one transaction."""
        uid = self._sql.scalar(
            "SELECT firebase_uid FROM clients WHERE id = CAST(:id AS uuid) FOR UPDATE", {"id": client_id}
        )
        return str(uid) if uid is not None else None

    def checkout_by_key(self, client_id: str, idempotency_key: str) -> PendingTransaction | None:
        row = self._sql.one(
            f"""SELECT {_PENDING_COLUMNS} FROM customer_transactions
                WHERE client_id = CAST(:client AS uuid) AND idempotency_key = :key""",
            {"client": client_id, "key": idempotency_key},
        )
        return _pending(row) if row else None

    def recent_checkouts(self, client_id: str) -> RecentCheckouts:
        """The client's checkouts within CHECKOUT_WINDOW (`shared.domain.billing.checkout_wait`)."""
        row = self._sql.one(
            """SELECT count(*) AS count, min(created_at) AS earliest, now() AS now FROM customer_transactions
               WHERE client_id = CAST(:client AS uuid) AND created_at > now() - make_interval(secs => :window_s)""",
            {"client": client_id, "window_s": CHECKOUT_WINDOW.total_seconds()},
        )
        assert row is not None
        return RecentCheckouts(**row)

    def active_tier(self, tier_id: str) -> PricingTier | None:
        row = self._sql.one(
            "SELECT id, duration_s, price FROM pricing_tiers WHERE id = :id AND active", {"id": tier_id}
        )
        return PricingTier(**row) if row else None

    def open_transaction(
        self,
        transaction_id: str,
        client_id: str,
        request: CheckoutRequest,
        tier: PricingTier,
        *,
        idempotency_key: str | None,
        expires_in_s: int,
        credit_back_used: int = 0,
    ) -> PendingTransaction:
        """A pending transaction for what the tier costs now (a later change of the tier does not touch it), less
        what the credited-back balance pays of it (`shared.domain.billing.credit_back_cover`)."""
        row = self._sql.one(
            f"""INSERT INTO customer_transactions
                    (id, client_id, purpose, tier_id, duration_s, amount, extension_id, idempotency_key, expires_at)
                VALUES (CAST(:id AS uuid), CAST(:client AS uuid), :purpose, :tier, :duration, :amount,
                        CAST(:extension AS uuid), :key, now() + make_interval(secs => :expiry))
                RETURNING {_PENDING_COLUMNS}""",
            {
                "id": transaction_id,
                "client": client_id,
                "purpose": request.purpose,
                "tier": tier.id,
                "duration": tier.duration_s,
                "amount": tier.price - credit_back_used,
                "extension": request.extension_id,
                "key": idempotency_key,
                "expiry": expires_in_s,
            },
        )
        assert row is not None
        return _pending(row)

    def attach_invoice_if_none(self, transaction_id: str, invoice: Invoice) -> AttachedInvoice:
        """The rule of `shared.domain.billing.AttachedInvoice` (see _ATTACH): the invoice the transaction shows now,
        this one if it was the first."""
        row = self._sql.one(_ATTACH, {"id": transaction_id, "invoice": invoice.invoice_id, "url": invoice.invoice_url})
        assert row is not None, "the transaction was opened before its invoice"
        if row["invoice_url"] is None:
            # A concurrent attach this statement waited for may have committed after the statement's snapshot was
            # taken: a statement of its own sees it (or sees the transaction really has no invoice).
            row = self._sql.one(
                "SELECT invoice_url, expires_at FROM customer_transactions WHERE id = CAST(:id AS uuid)",
                {"id": transaction_id},
            )
            assert row is not None
        return AttachedInvoice(**row)

    # -- the credited-back balance -----------------------------------------------------------------------------------

    def credit_back_balance(self, client_id: str) -> int:
        """What the client has credited back and not spent: sum(session_credit_backs) - sum(use) + sum(return). Read
        under the client's row lock (`locked_client_uid`) so two checkouts never spend it twice."""
        found = self._sql.scalar(
            """SELECT (SELECT coalesce(sum(amount), 0) FROM session_credit_backs WHERE client_id = CAST(:c AS uuid))
                    - (SELECT coalesce(sum(CASE kind WHEN 'use' THEN amount ELSE -amount END), 0)
                       FROM credit_back_uses WHERE client_id = CAST(:c AS uuid))""",
            {"c": client_id},
        )
        return int(found or 0)

    def use_credit_back(self, transaction_id: str, amount: int) -> None:
        """The rule `shared.domain.billing.credit_back_cover`: one `use` per transaction (its unique key)."""
        self._sql.execute(
            """INSERT INTO credit_back_uses (transaction_id, client_id, kind, amount)
               SELECT id, client_id, 'use', :amount FROM customer_transactions WHERE id = CAST(:id AS uuid)""",
            {"id": transaction_id, "amount": amount},
        )

    def return_credit_back_if_used(self, transaction_id: str) -> int:
        """What the transaction took from the balance comes back, once (the unique key): the rupiah returned now, 0
        when it took nothing or they came back before."""
        found = self._sql.scalar(
            """INSERT INTO credit_back_uses (transaction_id, client_id, kind, amount)
               SELECT transaction_id, client_id, 'return', amount FROM credit_back_uses
               WHERE transaction_id = CAST(:id AS uuid) AND kind = 'use'
               ON CONFLICT (transaction_id, kind) DO NOTHING RETURNING amount""",
            {"id": transaction_id},
        )
        return int(found or 0)

    def mark_paid_from_balance_if_pending(self, transaction_id: str) -> datetime | None:
        """The rule `TransactionStatus.can_become` (pending → paid, once) for a transaction the balance paid whole
        (amount 0, no invoice): when it was paid, or None when it was not such a pending transaction."""
        paid_at = self._sql.scalar(
            """UPDATE customer_transactions
               SET status = 'paid', paid_at = now(), paid_amount = amount, payment_method = :how,
                   payment_channel = :how
               WHERE id = CAST(:id AS uuid) AND status = 'pending' AND amount = 0 AND xendit_invoice_id IS NULL
               RETURNING paid_at""",
            {"id": transaction_id, "how": CREDIT_BACK},
        )
        return paid_at if isinstance(paid_at, datetime) else None

    # -- payments ----------------------------------------------------------------------------------------------------

    def payment_window(self, transaction_id: str) -> PaymentWindow | None:
        row = self._sql.one(
            """SELECT status, xendit_invoice_id AS invoice_id, expires_at, now() AS now FROM customer_transactions
               WHERE id = CAST(:id AS uuid)""",
            {"id": transaction_id},
        )
        return PaymentWindow(**{**row, "status": TransactionStatus(row["status"])}) if row else None

    def locked_order(self, transaction_id: str) -> LockedOrder | None:
        """The transaction a callback names, its row locked until the change ends; None for one we never opened
        (including an id that is not ours in form)."""
        try:
            uuid.UUID(transaction_id)
        except ValueError:
            return None
        row = self._sql.one(
            """SELECT t.id::text AS transaction_id, t.client_id::text, c.firebase_uid AS client_uid, t.purpose,
                      t.tier_id, t.extension_id::text, t.duration_s, t.amount, t.currency, t.status,
                      t.xendit_invoice_id AS invoice_id
               FROM customer_transactions t JOIN clients c ON c.id = t.client_id
               WHERE t.id = CAST(:id AS uuid) FOR UPDATE OF t""",
            {"id": transaction_id},
        )
        if row is None:
            return None
        return LockedOrder(**{**row, "purpose": Purpose(row["purpose"]), "status": TransactionStatus(row["status"])})

    def mark_paid_if_pending(
        self, transaction_id: str, *, invoice_id: str, method: str | None, channel: str | None
    ) -> datetime | None:
        """The rule `TransactionStatus.can_become` (pending → paid, once), for the invoice the transaction shows:
        when it was paid, or None when it was no longer pending on that invoice."""
        paid_at = self._sql.scalar(
            """UPDATE customer_transactions
               SET status = 'paid', paid_at = now(), paid_amount = amount, payment_method = :method,
                   payment_channel = :channel
               WHERE id = CAST(:id AS uuid) AND status = 'pending' AND xendit_invoice_id = :invoice
               RETURNING paid_at""",
            {"id": transaction_id, "invoice": invoice_id, "method": method, "channel": channel},
        )
        return paid_at if isinstance(paid_at, datetime) else None

    def mark_expired_if_pending(self, transaction_id: str) -> Expired | None:
        """The rule `TransactionStatus.can_become` (pending → expired, once): whose it was and when, or None when it
        was no longer pending."""
        row = self._sql.one(
            """UPDATE customer_transactions t SET status = 'expired', expired_at = now()
               FROM clients c WHERE t.id = CAST(:id AS uuid) AND t.status = 'pending' AND c.id = t.client_id
               RETURNING c.firebase_uid AS client_uid, t.expired_at""",
            {"id": transaction_id},
        )
        return Expired(**row) if row else None

    def record_ledger(
        self,
        transaction_id: str,
        kind: str,
        *,
        external_ref: str | None = None,
        note: str | None = None,
        created_by: str | None = None,
    ) -> None:
        """One appended ledger row (PostgreSQL refuses updates and deletes of it) moving the whole transaction's
        amount, which is what every payment and refund here moves."""
        self._sql.execute(
            """INSERT INTO ledger_entries
                      (transaction_id, client_id, kind, amount, currency, external_ref, note, created_by)
               SELECT id, client_id, :kind, amount, currency, :ref, :note, :by
               FROM customer_transactions WHERE id = CAST(:id AS uuid)""",
            {"id": transaction_id, "kind": kind, "ref": external_ref, "note": note, "by": created_by},
        )

    def record_callback(self, record: CallbackRecord) -> None:
        """Every delivery of a Xendit callback, as received and with what we made of it."""
        self._sql.execute(
            """INSERT INTO payment_events (kind, webhook_id, xendit_invoice_id, xendit_refund_id, external_id,
                                           transaction_id, provider_status, amount, paid_amount, currency, outcome,
                                           reason, payload)
               VALUES (:kind, :webhook, :invoice, :refund, :external, CAST(:transaction AS uuid), :status, :amount,
                       :paid, :currency, :outcome, :reason, CAST(:payload AS jsonb))""",
            {
                "kind": record.kind,
                "webhook": record.webhook_id,
                "invoice": record.invoice_id,
                "refund": record.refund_id,
                "external": record.external_id,
                "transaction": record.transaction_id,
                "status": record.provider_status,
                "amount": record.amount,
                "paid": record.paid_amount,
                "currency": record.currency,
                "outcome": record.outcome,
                "reason": record.reason,
                "payload": json.dumps(record.payload),
            },
        )

    # -- the control center's quarantine -----------------------------------------------------------------------------

    def quarantined(self, *, reviewed: bool | None, after: tuple[datetime, int] | None, limit: int) -> list[Row]:
        """Quarantined callbacks, newest first, from after the keyset `after` (received_at, id)."""
        return self._sql.all(
            f"""SELECT {_QUARANTINED_COLUMNS} FROM payment_events
                WHERE outcome = 'quarantined'
                  AND (CAST(:reviewed AS boolean) IS NULL OR (reviewed_at IS NOT NULL) = CAST(:reviewed AS boolean))
                  AND (CAST(:after_at AS timestamptz) IS NULL
                       OR (received_at, id) < (CAST(:after_at AS timestamptz), CAST(:after_id AS bigint)))
                ORDER BY received_at DESC, id DESC LIMIT :limit""",
            _keyset(reviewed, after, limit),
        )

    def review_if_unreviewed(self, event_id: int, *, admin_uid: str, note: str) -> bool:
        """The first review of a quarantined callback is kept; False when it was reviewed already."""
        reviewed = self._sql.scalar(
            """UPDATE payment_events SET reviewed_at = now(), reviewed_by = :uid, review_note = :note
               WHERE id = :id AND outcome = 'quarantined' AND reviewed_at IS NULL RETURNING id""",
            {"uid": admin_uid, "note": note, "id": event_id},
        )
        return reviewed is not None

    def quarantined_event(self, event_id: int) -> Row | None:
        return self._sql.one(
            f"SELECT {_QUARANTINED_COLUMNS} FROM payment_events WHERE id = :id AND outcome = 'quarantined'",
            {"id": event_id},
        )


def _pending(row: Row) -> PendingTransaction:
    return PendingTransaction(**{**row, "purpose": Purpose(row["purpose"]), "status": TransactionStatus(row["status"])})


def _keyset(reviewed: bool | None, after: tuple[datetime, int] | None, limit: int) -> dict[str, Any]:
    return {
        "reviewed": reviewed,
        "after_at": after[0] if after else None,
        "after_id": after[1] if after else None,
        "limit": limit,
    }
