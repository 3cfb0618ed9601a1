"""Xendit's callbacks against a real PostgreSQL: however many arrive at once, in whatever mix, a transaction moves
exactly once and money is recorded exactly once."""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from emulators.stack import LocalStack
from shared import bootstrap
from shared.adapters.postgres.database import Database
from shared.domain.billing import Outcome, PaidTransaction, Purpose
from shared.services.billing import payments, purposes
from shared.services.ports import Ports
from shared.services.unit_of_work import UnitOfWork
from tests.support import world

pytestmark = pytest.mark.needs_gcloud

PRICE = 35_000


@pytest.fixture
def ports(stack: LocalStack, db: Database) -> Iterator[Ports]:
    """The real adapters, on this test's own database, with a pool as large as the race."""
    pooled = Database(db._connect, max_idle=32)
    yield bootstrap.ports_on(pooled)
    pooled.close()


def _pending(db: Database, purpose: Purpose = Purpose.SESSION) -> tuple[str, str]:
    """A pending transaction with its invoice, as checkout leaves it: (transaction id, invoice id)."""
    transaction_id, invoice_id = str(uuid.uuid4()), uuid.uuid4().hex[:24]
    with db.transaction() as tx:
        tx.execute(
            """INSERT INTO customer_transactions (id, client_id, purpose, tier_id, duration_s, amount, extension_id,
                                                  xendit_invoice_id, invoice_url, expires_at)
               VALUES (CAST(:id AS uuid), CAST(:client AS uuid), :purpose, 'sesi-30', 1800, :price,
                       CAST(:extension AS uuid), :invoice, 'http://xendit.invalid/web/' || :invoice,
                       now() + interval '15 minutes')""",
            {
                "id": transaction_id,
                "client": world.add_client(db),
                "purpose": purpose,
                "price": PRICE,
                "extension": str(uuid.uuid4()) if purpose is Purpose.EXTENSION else None,
                "invoice": invoice_id,
            },
        )
    return transaction_id, invoice_id


def _callback(transaction_id: str, invoice_id: str, status: str) -> dict[str, Any]:
    return {
        "id": invoice_id,
        "external_id": transaction_id,
        "status": status,
        "amount": PRICE,
        "currency": "IDR",
        **({"paid_amount": PRICE} if status == "PAID" else {}),
    }


def _record(db: Database, transaction_id: str) -> dict[str, Any]:
    with db.transaction() as tx:
        row = tx.one(
            """SELECT t.status,
                      (SELECT count(*) FROM ledger_entries l WHERE l.transaction_id = t.id) AS ledger_rows,
                      (SELECT count(*) FROM session_credits c WHERE c.transaction_id = t.id) AS credits
               FROM customer_transactions t WHERE t.id = CAST(:id AS uuid)""",
            {"id": transaction_id},
        )
    assert row is not None
    return row


def _race(
    ports: Ports, pool: ThreadPoolExecutor, transaction_id: str, invoice_id: str, kinds: list[str]
) -> Counter[Outcome]:
    """Every callback delivered at the same instant, each on its own connection; returns the outcomes."""
    start = threading.Barrier(len(kinds))

    def deliver(status: str) -> Outcome:
        start.wait()
        return payments.receive_callback(ports, _callback(transaction_id, invoice_id, status), webhook_id=None)

    return Counter(pool.map(deliver, kinds))


@pytest.mark.timeout(600)
def test_thirty_simultaneous_callbacks_of_mixed_kinds_move_a_transaction_exactly_once(
    ports: Ports, db: Database
) -> None:
    with ThreadPoolExecutor(30) as pool:
        for trial in range(20):
            transaction_id, invoice_id = _pending(db)
            # Mostly the payment and its retries, with the odd expiry racing them (Xendit cannot send both for one
            # invoice, but the rule must not depend on that).
            kinds = ["PAID"] * 27 + ["EXPIRED"] * (3 if trial % 2 else 0) + ["PAID"] * (0 if trial % 2 else 3)

            outcomes = _race(ports, pool, transaction_id, invoice_id, kinds)

            assert outcomes[Outcome.APPLIED] == 1, (trial, outcomes)
            record = _record(db, transaction_id)
            if record["status"] == "paid":
                assert (record["ledger_rows"], record["credits"]) == (1, 1), (trial, record)
            else:
                assert (record["status"], record["ledger_rows"], record["credits"]) == ("expired", 0, 0), trial
                assert outcomes[Outcome.QUARANTINED] == 27, "every payment after the expiry waits for an admin"


def test_a_paid_purpose_that_can_no_longer_be_delivered_becomes_a_credit(
    ports: Ports, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(_uow: UnitOfWork, _paid: PaidTransaction) -> bool:
        return False  # as the extension flow answers once the session has ended

    extension = purposes.PurposeHandler(check=lambda *_: None, deliver=refuse)
    monkeypatch.setitem(purposes.PURPOSES, Purpose.EXTENSION, extension)
    transaction_id, invoice_id = _pending(db, Purpose.EXTENSION)

    outcome = payments.receive_callback(ports, _callback(transaction_id, invoice_id, "PAID"), webhook_id="w-1")

    assert outcome is Outcome.APPLIED
    assert _record(db, transaction_id) == {"status": "paid", "ledger_rows": 1, "credits": 1}
    with db.transaction() as tx:
        credit = tx.one(
            "SELECT tier_id, duration_s, status FROM session_credits WHERE transaction_id = CAST(:id AS uuid)",
            {"id": transaction_id},
        )
    assert credit == {"tier_id": "sesi-30", "duration_s": 1800, "status": "available"}
