"""The credited-back balance against a real PostgreSQL: checkouts arriving at once spend it one at a time (the
client's row lock, `BillingRepository.locked_client_uid`), so it is never spent twice, and one Idempotency-Key sent
twice at once uses it once."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from emulators.stack import LocalStack
from shared import bootstrap
from shared.adapters.postgres.database import Database
from shared.domain.billing import CheckoutRequest, Purpose
from shared.services.billing import checkout
from shared.services.ports import Ports
from tests.support import world
from tests.support.fake_billing import FakeXendit
from tests.support.fakes import FakeDatabase

pytestmark = pytest.mark.needs_gcloud

PRICE = 35_000  # sesi-30, as migration 0001 seeds it
BUY_A_SESSION = CheckoutRequest(tier_id="sesi-30", purpose=Purpose.SESSION, extension_id=None)


@pytest.fixture
def ports(stack: LocalStack, db: Database) -> Iterator[Ports]:
    pooled = Database(db._connect, max_idle=8)
    yield bootstrap.ports_on(pooled)
    pooled.close()


def _credited_back(db: Database, amount: int) -> str:
    """A client with `amount` rupiah credited back from a session an admin ended."""
    client_id = world.add_client(db)
    (mitra_id,) = world.add_online_mitras(db, 1)
    request_id = world.add_searching_request(db, client_id, [])
    with db.transaction() as tx:
        session_id = tx.scalar(
            """INSERT INTO sessions (request_id, client_id, mitra_id, kind, ends_at)
               VALUES (CAST(:r AS uuid), CAST(:c AS uuid), CAST(:m AS uuid), 'free_trial', now() + interval '1 hour')
               RETURNING id""",
            {"r": request_id, "c": client_id, "m": mitra_id},
        )
        tx.execute(
            """INSERT INTO session_credit_backs (session_id, client_id, unused_s, amount, created_by)
               VALUES (:s, CAST(:c AS uuid), 1200, :amount, 'admin-uid')""",
            {"s": session_id, "c": client_id, "amount": amount},
        )
    return client_id


_XENDIT = FakeXendit(FakeDatabase())  # one for the whole module: its invoice ids are unique across trials


def _at_once(ports: Ports, client_id: str, keys: list[str]) -> list[checkout.Checkout]:
    xendit = _XENDIT
    start = threading.Barrier(len(keys))

    def buy(key: str) -> checkout.Checkout:
        start.wait()
        return checkout.open_invoice(ports, xendit, client_id, BUY_A_SESSION, idempotency_key=key)

    with ThreadPoolExecutor(len(keys)) as pool:
        return list(pool.map(buy, keys))


def _uses(db: Database, client_id: str) -> list[tuple[str, int]]:
    with db.transaction() as tx:
        rows = tx.all(
            "SELECT kind, amount FROM credit_back_uses WHERE client_id = CAST(:c AS uuid) ORDER BY id",
            {"c": client_id},
        )
    return [(r["kind"], r["amount"]) for r in rows]


@pytest.mark.timeout(300)
def test_two_checkouts_at_once_never_spend_the_same_balance_twice(ports: Ports, db: Database) -> None:
    for _trial in range(5):
        client_id = _credited_back(db, 50_000)

        first, second = sorted(_at_once(ports, client_id, ["k-a", "k-b"]), key=lambda c: c.credit_back_used)

        # One took the whole price from the balance; the other only what was left, and invoices the rest.
        assert (second.status, second.credit_back_used, second.invoice_url) == ("paid", PRICE, None)
        assert (first.status, first.credit_back_used, first.amount) == ("pending", 15_000, PRICE - 15_000)
        assert first.invoice_url
        assert sorted(_uses(db, client_id)) == [("use", 15_000), ("use", PRICE)]
        with db.transaction() as tx:
            credits = tx.scalar(
                "SELECT count(*) FROM session_credits WHERE client_id = CAST(:c AS uuid) AND status = 'available'",
                {"c": client_id},
            )
        assert credits == 1, "the checkout the balance paid whole is a credit already"


@pytest.mark.timeout(300)
def test_one_idempotency_key_sent_twice_at_once_uses_the_balance_once(ports: Ports, db: Database) -> None:
    client_id = _credited_back(db, 50_000)

    one, other = _at_once(ports, client_id, ["same", "same"])

    assert one == other and (one.status, one.credit_back_used) == ("paid", PRICE)
    assert _uses(db, client_id) == [("use", PRICE)]
