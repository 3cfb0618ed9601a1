"""Billing in memory: the promises of shared/adapters/postgres/billing.py and billing_refunds.py (each move guarded by
the status it was decided on, as shared.domain.billing's state machines allow), and Xendit as a stand-in that
answers as the real one does."""

from __future__ import annotations

import itertools
import uuid
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from shared.domain.billing import (
    CHECKOUT_WINDOW,
    CREDIT_BACK,
    CURRENCY,
    AttachedInvoice,
    CallbackRecord,
    Charged,
    CheckoutRequest,
    CreditStatus,
    Expired,
    Invoice,
    LockedOrder,
    PaymentProviderError,
    PaymentWindow,
    PendingTransaction,
    Purpose,
    RecentCheckouts,
    Refund,
    RefundStatus,
    StoredAttempt,
    TransactionStatus,
)
from shared.domain.pricing import PricingTier

if TYPE_CHECKING:
    from tests.support.fakes import FakeDatabase

Row = dict[str, Any]


def add_client(db: FakeDatabase, client_id: str, uid: str) -> Row:
    row: Row = {"id": client_id, "firebase_uid": uid, "display_name": "Sari", "anonymous": False, "alias_number": 1}
    db.table("clients")[client_id] = row
    return row


class FakeBillingRepository:
    def __init__(self, db: FakeDatabase) -> None:
        self._db = db

    def _transactions(self) -> dict[Any, Row]:
        return self._db.table("customer_transactions")

    def locked_client_uid(self, client_id: str) -> str | None:
        client = self._db.table("clients").get(client_id)
        return client["firebase_uid"] if client else None

    def checkout_by_key(self, client_id: str, idempotency_key: str) -> PendingTransaction | None:
        for row in self._transactions().values():
            if row["client_id"] == client_id and row.get("idempotency_key") == idempotency_key:
                return self._pending(row)
        return None

    def recent_checkouts(self, client_id: str) -> RecentCheckouts:
        since = self._db.now - CHECKOUT_WINDOW
        times = [
            t["created_at"]
            for t in self._transactions().values()
            if t["client_id"] == client_id and t.get("created_at", self._db.now) > since
        ]
        return RecentCheckouts(len(times), min(times, default=None), self._db.now)

    def active_tier(self, tier_id: str) -> PricingTier | None:
        row = self._db.table("pricing_tiers").get(tier_id)
        return PricingTier(row["id"], row["duration_s"], row["price"]) if row and row["active"] else None

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
        assert 0 <= credit_back_used <= tier.price
        assert idempotency_key is None or self.checkout_by_key(client_id, idempotency_key) is None, "unique key"
        row: Row = {
            "id": transaction_id,
            "client_id": client_id,
            "purpose": request.purpose,
            "tier_id": tier.id,
            "extension_id": request.extension_id,
            "duration_s": tier.duration_s,
            "amount": tier.price - credit_back_used,
            "currency": CURRENCY,
            "status": TransactionStatus.PENDING,
            "idempotency_key": idempotency_key,
            "xendit_invoice_id": None,
            "invoice_url": None,
            "expires_at": self._db.now + timedelta(seconds=expires_in_s),
            "created_at": self._db.now,
        }
        self._transactions()[transaction_id] = row
        return self._pending(row)

    def _pending(self, row: Row) -> PendingTransaction:
        return PendingTransaction(
            transaction_id=row["id"],
            purpose=Purpose(row["purpose"]),
            tier_id=row["tier_id"],
            extension_id=row["extension_id"],
            duration_s=row["duration_s"],
            amount=row["amount"],
            status=TransactionStatus(row["status"]),
            invoice_url=row["invoice_url"],
            expires_at=row["expires_at"],
            now=self._db.now,
            credit_back_used=sum(
                u["amount"]
                for u in self._db.table("credit_back_uses").values()
                if u["transaction_id"] == row["id"] and u["kind"] == "use"
            ),
        )

    # -- the credited-back balance: sum(session_credit_backs) - sum(use) + sum(return) --------------------------------

    def credit_back_balance(self, client_id: str) -> int:
        backs = sum(r["amount"] for r in self._db.table("session_credit_backs").values() if r["client_id"] == client_id)
        moves = sum(
            u["amount"] if u["kind"] == "use" else -u["amount"]
            for u in self._db.table("credit_back_uses").values()
            if u["client_id"] == client_id
        )
        return int(backs - moves)

    def _use(self, transaction_id: str, kind: str) -> Row | None:
        uses = self._db.table("credit_back_uses").values()
        return next((u for u in uses if u["transaction_id"] == transaction_id and u["kind"] == kind), None)

    def use_credit_back(self, transaction_id: str, amount: int) -> None:
        assert amount > 0 and self._use(transaction_id, "use") is None, "one use per transaction (its unique key)"
        client_id = self._transactions()[transaction_id]["client_id"]
        self._db.table("credit_back_uses")[self._db.next_id()] = {
            "transaction_id": transaction_id,
            "client_id": client_id,
            "kind": "use",
            "amount": amount,
        }

    def return_credit_back_if_used(self, transaction_id: str) -> int:
        used = self._use(transaction_id, "use")
        if used is None or self._use(transaction_id, "return") is not None:
            return 0
        self._db.table("credit_back_uses")[self._db.next_id()] = {**used, "kind": "return"}
        return int(used["amount"])

    def mark_paid_from_balance_if_pending(self, transaction_id: str) -> datetime | None:
        row = self._transactions().get(transaction_id)
        if (
            row is None
            or row["status"] != TransactionStatus.PENDING
            or row["amount"] != 0
            or row["xendit_invoice_id"] is not None
        ):
            return None
        row.update(
            status=TransactionStatus.PENDING.move(TransactionStatus.PAID),
            paid_at=self._db.now,
            payment_method=CREDIT_BACK,
            payment_channel=CREDIT_BACK,
        )
        return self._db.now

    def attach_invoice_if_none(self, transaction_id: str, invoice: Invoice) -> AttachedInvoice:
        row = self._transactions()[transaction_id]
        if row["xendit_invoice_id"] is None and row["status"] == TransactionStatus.PENDING:
            row.update(xendit_invoice_id=invoice.invoice_id, invoice_url=invoice.invoice_url)
        return AttachedInvoice(row["invoice_url"], row["expires_at"])

    def payment_window(self, transaction_id: str) -> PaymentWindow | None:
        row = self._transactions().get(transaction_id)
        if row is None:
            return None
        return PaymentWindow(
            TransactionStatus(row["status"]), row["xendit_invoice_id"], row["expires_at"], self._db.now
        )

    def locked_order(self, transaction_id: str) -> LockedOrder | None:
        row = self._transactions().get(transaction_id)
        if row is None:
            return None
        return LockedOrder(
            transaction_id=row["id"],
            client_id=row["client_id"],
            client_uid=self._db.table("clients")[row["client_id"]]["firebase_uid"],
            purpose=Purpose(row["purpose"]),
            tier_id=row["tier_id"],
            extension_id=row["extension_id"],
            duration_s=row["duration_s"],
            amount=row["amount"],
            currency=row["currency"],
            status=TransactionStatus(row["status"]),
            invoice_id=row["xendit_invoice_id"],
        )

    def mark_paid_if_pending(
        self, transaction_id: str, *, invoice_id: str, method: str | None, channel: str | None
    ) -> datetime | None:
        row = self._transactions().get(transaction_id)
        if row is None or row["status"] != TransactionStatus.PENDING or row["xendit_invoice_id"] != invoice_id:
            return None
        row.update(
            status=TransactionStatus(row["status"]).move(TransactionStatus.PAID),
            paid_at=self._db.now,
            payment_method=method,
            payment_channel=channel,
        )
        return self._db.now

    def mark_expired_if_pending(self, transaction_id: str) -> Expired | None:
        row = self._transactions().get(transaction_id)
        if row is None or row["status"] != TransactionStatus.PENDING:
            return None
        row.update(status=TransactionStatus.PENDING.move(TransactionStatus.EXPIRED), expired_at=self._db.now)
        return Expired(self._db.table("clients")[row["client_id"]]["firebase_uid"], self._db.now)

    def record_ledger(
        self,
        transaction_id: str,
        kind: str,
        *,
        external_ref: str | None = None,
        note: str | None = None,
        created_by: str | None = None,
    ) -> None:
        transaction = self._transactions()[transaction_id]
        assert transaction["amount"] > 0, "a ledger row moves money (CHECK amount > 0)"
        ledger = self._db.table("ledger_entries")
        unique = {"payment_received", "refund"}
        assert kind not in unique or not any(
            e["transaction_id"] == transaction_id and e["kind"] == kind for e in ledger.values()
        ), f"one {kind} per transaction (ledger_one_payment / ledger_one_refund)"
        ledger[self._db.next_id()] = {
            "transaction_id": transaction_id,
            "client_id": transaction["client_id"],
            "kind": kind,
            "amount": transaction["amount"],
            "request_id": None,
            "external_ref": external_ref,
            "note": note,
            "created_by": created_by,
        }

    def record_callback(self, record: CallbackRecord) -> None:
        event_id = self._db.next_id()
        self._db.table("payment_events")[event_id] = {
            "event_id": event_id,
            "received_at": self._db.now,
            "record": record,
            "reviewed_at": None,
            "reviewed_by": None,
            "review_note": None,
        }

    def quarantined(self, *, reviewed: bool | None, after: tuple[datetime, int] | None, limit: int) -> list[Row]:
        rows = sorted(
            (
                self._shown(e)
                for e in self._db.table("payment_events").values()
                if e["record"].outcome == "quarantined"
                and (reviewed is None or (e["reviewed_at"] is not None) == reviewed)
                and (after is None or (e["received_at"], e["event_id"]) < after)
            ),
            key=lambda e: (e["received_at"], e["event_id"]),
            reverse=True,
        )
        return rows[:limit]

    def review_if_unreviewed(self, event_id: int, *, admin_uid: str, note: str) -> bool:
        found = self._db.table("payment_events").get(event_id)
        if found is None or found["record"].outcome != "quarantined" or found["reviewed_at"] is not None:
            return False
        found.update(reviewed_at=self._db.now, reviewed_by=admin_uid, review_note=note)
        return True

    def quarantined_event(self, event_id: int) -> Row | None:
        found = self._db.table("payment_events").get(event_id)
        return self._shown(found) if found and found["record"].outcome == "quarantined" else None

    @staticmethod
    def _shown(found: Row) -> Row:
        record: CallbackRecord = found["record"]
        return {
            "event_id": found["event_id"],
            "received_at": found["received_at"],
            "kind": record.kind,
            "reason": record.reason,
            "transaction_id": record.transaction_id,
            "external_id": record.external_id,
            "xendit_invoice_id": record.invoice_id,
            "xendit_refund_id": record.refund_id,
            "provider_status": record.provider_status,
            "amount": float(record.amount) if record.amount is not None else None,
            "paid_amount": float(record.paid_amount) if record.paid_amount is not None else None,
            "currency": record.currency,
            "reviewed_at": found["reviewed_at"],
            "reviewed_by": found["reviewed_by"],
            "review_note": found["review_note"],
        }


class FakeRefundsRepository:
    def __init__(self, db: FakeDatabase) -> None:
        self._db = db

    def _attempts(self) -> dict[Any, Row]:
        return self._db.table("credit_refunds")

    def charged(self, transaction_id: str) -> Charged | None:
        row = self._db.table("customer_transactions").get(transaction_id)
        return Charged(TransactionStatus(row["status"]), row["amount"], row["currency"]) if row else None

    def locked_credit(self, transaction_id: str) -> CreditStatus | None:
        credit = self._db.table("session_credits").get(transaction_id)
        return CreditStatus(credit["status"]) if credit else None

    def move_credit(self, transaction_id: str, *, from_status: CreditStatus, to: CreditStatus) -> bool:
        credit = self._db.table("session_credits").get(transaction_id)
        if credit is None or credit["status"] != from_status:
            return False
        credit["status"] = from_status.move(to)
        return True

    def refund_made(self, transaction_id: str) -> str | None:
        for entry in self._db.table("ledger_entries").values():
            if entry["transaction_id"] == transaction_id and entry["kind"] == "refund":
                return str(entry["external_ref"])
        return None

    def open_attempt(self, transaction_id: str) -> StoredAttempt | None:
        for row in self._attempts().values():
            if row["transaction_id"] == transaction_id and RefundStatus(row["status"]).is_open:
                return self._attempt(row)
        return None

    def last_attempt(self, transaction_id: str) -> int:
        return max(
            (row["attempt"] for row in self._attempts().values() if row["transaction_id"] == transaction_id), default=0
        )

    def add_attempt(
        self, transaction_id: str, *, number: int, reference_id: str, reason: str, requested_by: str
    ) -> StoredAttempt:
        assert self.open_attempt(transaction_id) is None, "one open attempt per credit (credit_refunds_one_open)"
        row: Row = {
            "transaction_id": transaction_id,
            "attempt": number,
            "reference_id": reference_id,
            "status": RefundStatus.REQUESTED,
            "refund_id": None,
            "failure_code": None,
            "reason": reason,
            "requested_by": requested_by,
            "updated_at": self._db.now,
            "checked_at": None,
        }
        self._attempts()[(transaction_id, number)] = row
        return self._attempt(row)

    def locked_attempt(self, transaction_id: str, number: int) -> StoredAttempt | None:
        row = self._attempts().get((transaction_id, number))
        return self._attempt(row) if row else None

    def locked_attempt_by_reference(self, reference_id: str) -> StoredAttempt | None:
        return next((self._attempt(r) for r in self._attempts().values() if r["reference_id"] == reference_id), None)

    def locked_attempt_by_refund(self, refund_id: str) -> StoredAttempt | None:
        return next((self._attempt(r) for r in self._attempts().values() if r["refund_id"] == refund_id), None)

    def move_attempt(self, settled: StoredAttempt, *, from_status: RefundStatus) -> bool:
        row = self._attempts().get((settled.transaction_id, settled.attempt))
        if row is None or row["status"] != from_status:
            return False
        row.update(
            status=from_status.move(settled.status),
            refund_id=settled.refund_id,
            failure_code=settled.failure_code,
            updated_at=self._db.now,
        )
        return True

    def claim_due(self, *, pending_for_s: int, looked_up_every_s: int, limit: int) -> list[StoredAttempt]:
        now = self._db.now
        due = sorted(
            (
                row
                for row in self._attempts().values()
                if row["status"] == RefundStatus.PENDING
                and row["updated_at"] < now - timedelta(seconds=pending_for_s)
                and (row["checked_at"] is None or row["checked_at"] < now - timedelta(seconds=looked_up_every_s))
            ),
            key=lambda row: row["checked_at"] or row["updated_at"],
        )[:limit]
        for row in due:
            row["checked_at"] = now
        return [self._attempt(row) for row in due]

    def _attempt(self, row: Row) -> StoredAttempt:
        transaction = self._db.table("customer_transactions")[row["transaction_id"]]
        return StoredAttempt(
            transaction_id=row["transaction_id"],
            attempt=row["attempt"],
            reference_id=row["reference_id"],
            status=RefundStatus(row["status"]),
            refund_id=row["refund_id"],
            failure_code=row["failure_code"],
            reason=row["reason"],
            requested_by=row["requested_by"],
            invoice_id=transaction["xendit_invoice_id"],
            amount=transaction["amount"],
            currency=transaction["currency"],
        )


class FakeXendit:
    """Xendit's invoices and refunds, answering as the real API does (and as emulators/xendit_standin.py does).
    `outage` makes every call fail as an unreachable Xendit does; `refund_status` is what a new refund answers."""

    def __init__(self, db: FakeDatabase) -> None:
        self._db = db
        self._ids = itertools.count(1)
        self.invoices: dict[str, Invoice] = {}
        self.refunds: dict[str, Refund] = {}
        self.outage = False
        self.refund_status = "SUCCEEDED"

    def _reachable(self) -> None:
        if self.outage:
            raise PaymentProviderError("Xendit unreachable: ConnectionError", retryable=True)

    def create_invoice(self, *, external_id: str, amount: int, description: str, invoice_duration_s: int) -> Invoice:
        self._reachable()
        invoice_id = f"inv-{next(self._ids)}"
        invoice = Invoice(
            invoice_id=invoice_id,
            external_id=external_id,
            invoice_url=f"https://checkout.xendit.invalid/web/{invoice_id}",
            status="PENDING",
            amount=amount,
            currency=CURRENCY,
            expires_at=self._db.now + timedelta(seconds=invoice_duration_s),
        )
        self.invoices[invoice_id] = invoice
        return invoice

    def pay(self, invoice_id: str) -> None:
        self._set(invoice_id, "PAID")

    def _set(self, invoice_id: str, status: str) -> Invoice:
        invoice = self.invoices[invoice_id]
        self.invoices[invoice_id] = changed = Invoice(**{**invoice.__dict__, "status": status})
        return changed

    def get_invoice(self, invoice_id: str) -> Invoice:
        self._reachable()
        if invoice_id not in self.invoices:
            raise PaymentProviderError("Xendit 404 INVOICE_NOT_FOUND_ERROR", retryable=False, status=404)
        return self.invoices[invoice_id]

    def expire_invoice(self, invoice_id: str) -> Invoice:
        """Only an unpaid invoice can be expired (Xendit answers a paid one as not found); twice is harmless."""
        invoice = self.get_invoice(invoice_id)
        if invoice.is_paid:
            raise PaymentProviderError("Xendit 404 INVOICE_NOT_FOUND_ERROR", retryable=False, status=404)
        return self._set(invoice_id, "EXPIRED") if invoice.status == "PENDING" else invoice

    def refund_invoice(self, *, invoice_id: str, amount: int, reference_id: str, reason: str) -> Refund:
        """`reference_id` is the idempotency key: asking again answers with the same refund."""
        self._reachable()
        if reference_id in self.refunds:
            return self.refunds[reference_id]
        refund = Refund(f"rfd-{uuid.uuid4()}", invoice_id, amount, CURRENCY, self.refund_status)
        self.refunds[reference_id] = refund
        return refund

    def settle_refund(self, refund_id: str, status: str) -> Refund:
        """Xendit ends a pending refund (its callback may or may not reach us)."""
        key, refund = next((k, r) for k, r in self.refunds.items() if r.refund_id == refund_id)
        self.refunds[key] = settled = Refund(**{**refund.__dict__, "status": status})
        return settled

    def get_refund(self, refund_id: str) -> Refund:
        self._reachable()
        return next(r for r in self.refunds.values() if r.refund_id == refund_id)
