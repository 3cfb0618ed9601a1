"""Session credits in memory: the promises of shared/adapters/postgres/credits.py. Each move appends its ledger row,
and a credit moves only as shared.domain.billing.CreditStatus allows."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from shared.domain.billing import Balance, Credit, CreditedBack, CreditStatus

if TYPE_CHECKING:
    from tests.support.fakes import FakeDatabase

Row = dict[str, Any]


def add_paid_transaction(
    db: FakeDatabase, transaction_id: str, *, client_id: str, tier_id: str, duration_s: int, amount: int = 30000
) -> Row:
    """A transaction Xendit reported paid (its credit is issued separately, as billing does)."""
    row: Row = {
        "id": transaction_id,
        "client_id": client_id,
        "tier_id": tier_id,
        "duration_s": duration_s,
        "amount": amount,
        "currency": "IDR",
        "status": "paid",
    }
    db.table("customer_transactions")[transaction_id] = row
    return row


class FakeCreditsRepository:
    def __init__(self, db: FakeDatabase) -> None:
        self._db = db

    def _credits(self) -> dict[Any, Row]:
        return self._db.table("session_credits")

    def _ledger(self, transaction_id: str, kind: str, request_id: str | None = None) -> None:
        transaction = self._db.table("customer_transactions")[transaction_id]
        self._db.table("ledger_entries")[self._db.next_id()] = {
            "transaction_id": transaction_id,
            "client_id": transaction["client_id"],
            "kind": kind,
            "amount": transaction["amount"]
            + sum(
                u["amount"]
                for u in self._db.table("credit_back_uses").values()
                if u["transaction_id"] == transaction_id and u["kind"] == "use"
            ),
            "request_id": request_id,
        }

    def issue(self, transaction_id: str) -> None:
        transaction = self._db.table("customer_transactions").get(transaction_id)
        if transaction is None or transaction["status"] != "paid" or transaction_id in self._credits():
            return
        self._credits()[transaction_id] = {
            "transaction_id": transaction_id,
            "client_id": transaction["client_id"],
            "tier_id": transaction["tier_id"],
            "duration_s": transaction["duration_s"],
            "status": CreditStatus.AVAILABLE,
            "created_at": self._db.now,
            "seq": self._db.next_id(),
        }

    def reserve(self, client_id: str, *, tier_id: str, request_id: str) -> Credit | None:
        available = sorted(
            (
                c
                for c in self._credits().values()
                if c["client_id"] == client_id and c["tier_id"] == tier_id and c["status"] == CreditStatus.AVAILABLE
            ),
            key=lambda c: (c["created_at"], c["seq"]),
        )
        if not available:
            return None
        credit = available[0]
        credit["status"] = CreditStatus(credit["status"]).move(CreditStatus.RESERVED)
        self._ledger(credit["transaction_id"], "credit_reserved", request_id)
        return Credit(credit["transaction_id"], credit["duration_s"])

    def release(self, request_id: str) -> bool:
        return self._move_held(request_id, CreditStatus.AVAILABLE, "credit_released")

    def consume(self, request_id: str) -> bool:
        return self._move_held(request_id, CreditStatus.CONSUMED, "credit_consumed")

    def _move_held(self, request_id: str, to: CreditStatus, kind: str) -> bool:
        request = self._db.table("pairing_requests").get(request_id)
        credit = self._credits().get(request["transaction_id"]) if request else None
        if credit is None or credit["status"] != CreditStatus.RESERVED:
            return False
        credit["status"] = CreditStatus.RESERVED.move(to)
        self._ledger(credit["transaction_id"], kind, request_id)
        return True

    def balances(self, client_id: str) -> list[Balance]:
        counts: dict[tuple[str, int], int] = {}
        for c in self._credits().values():
            if c["client_id"] == client_id and c["status"] == CreditStatus.AVAILABLE:
                counts[(c["tier_id"], c["duration_s"])] = counts.get((c["tier_id"], c["duration_s"]), 0) + 1
        return [Balance(tier, duration, n) for (tier, duration), n in sorted(counts.items())]

    def credited_back(self, client_id: str) -> list[CreditedBack]:
        rows = [r for r in self._db.table("session_credit_backs").values() if r["client_id"] == client_id]
        rows.sort(key=lambda r: r["created_at"], reverse=True)
        return [CreditedBack(r["session_id"], r["unused_s"], r["amount"], r["created_at"]) for r in rows]
