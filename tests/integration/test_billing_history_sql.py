"""The payment history's and receipts' SQL against a real PostgreSQL (shared/adapters/postgres/billing_history.py):
the keyset holds on transactions created in the same instant, refund attempts come back in order from their JSON,
another client's transaction is never found, and a person's language is read with their devices."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from emulators.stack import LocalStack
from shared import bootstrap
from shared.adapters.postgres.database import Database
from shared.services.billing import history
from shared.services.ports import Ports
from tests.support import world

pytestmark = pytest.mark.needs_gcloud


@pytest.fixture
def ports(stack: LocalStack, db: Database) -> Iterator[Ports]:
    yield bootstrap.ports_on(db)


def _transactions(db: Database, client_id: str, count: int) -> list[str]:
    """`count` paid transactions of the client, all created in one instant (one statement's now())."""
    ids = [str(uuid.uuid4()) for _ in range(count)]
    with db.transaction() as tx:
        tx.execute(
            """INSERT INTO customer_transactions (id, client_id, purpose, tier_id, duration_s, amount, status,
                                                  xendit_invoice_id, invoice_url, expires_at, paid_at, paid_amount,
                                                  payment_method, payment_channel)
               SELECT id, CAST(:client AS uuid), 'session', 'sesi-30', 1800, 35000, 'paid', 'inv-' || id::text,
                      'http://xendit.invalid/' || id::text, now() + interval '15 minutes', now(), 35000, 'EWALLET',
                      'OVO'
               FROM unnest(CAST(:ids AS uuid[])) AS id""",
            {"client": client_id, "ids": ids},
        )
    return ids


def test_the_keyset_pages_through_transactions_created_in_the_same_instant(ports: Ports, db: Database) -> None:
    client_id = world.add_client(db)
    ids = _transactions(db, client_id, 5)
    _transactions(db, world.add_client(db), 2)

    seen: list[str] = []
    cursor: str | None = None
    for _ in range(5):
        page, cursor = history.history(ports, client_id, cursor=cursor, limit=2)
        seen += [entry.transaction_id for entry in page]
        if cursor is None:
            break

    assert seen == sorted(ids, reverse=True), "each once, by id within the instant, nobody else's"


def test_refund_attempts_come_back_in_order_with_their_outcomes(ports: Ports, db: Database) -> None:
    client_id = world.add_client(db)
    (transaction_id,) = _transactions(db, client_id, 1)
    with db.transaction() as tx:
        tx.execute(
            "INSERT INTO session_credits (transaction_id, client_id, tier_id, duration_s, status) "
            "VALUES (CAST(:id AS uuid), CAST(:client AS uuid), 'sesi-30', 1800, 'refunding')",
            {"id": transaction_id, "client": client_id},
        )
        tx.execute(
            """INSERT INTO credit_refunds (transaction_id, attempt, reference_id, status, xendit_refund_id,
                                           failure_code, reason, requested_by)
               VALUES (CAST(:id AS uuid), 1, 'refund-' || :id, 'failed', 'rf-1', 'INSUFFICIENT_BALANCE',
                       'admin words', 'uid-admin'),
                      (CAST(:id AS uuid), 2, 'refund-' || :id || '-2', 'pending', 'rf-2', NULL,
                       'admin words', 'uid-admin')""",
            {"id": transaction_id},
        )

    receipt = history.receipt(ports, client_id, transaction_id)
    (entry,), _ = history.history(ports, client_id, cursor=None, limit=10)

    assert [(r.attempt, r.status, r.failure_code) for r in entry.refunds] == [
        (1, "failed", "INSUFFICIENT_BALANCE"),
        (2, "pending", None),
    ]
    assert entry.refunds[0].requested_at.tzinfo is not None
    assert receipt.refunds == entry.refunds and receipt.locale == "id"
    assert receipt.xendit_invoice_id == f"inv-{transaction_id}" and receipt.payment_channel == "OVO"


def test_another_clients_transaction_is_not_found(ports: Ports, db: Database) -> None:
    (theirs,) = _transactions(db, world.add_client(db), 1)
    mine = world.add_client(db)

    with ports.uow(one_statement=True) as uow:
        assert uow.billing_history.client_transaction(mine, theirs) is None


def test_a_devices_language_is_its_users(ports: Ports, db: Database) -> None:
    client_id = world.add_client(db)
    with db.transaction() as tx:
        uid = tx.scalar(
            "UPDATE clients SET locale = 'en' WHERE id = CAST(:id AS uuid) RETURNING firebase_uid", {"id": client_id}
        )
        tx.execute("INSERT INTO devices (token, firebase_uid, platform) VALUES ('t-en', :uid, 'android')", {"uid": uid})
        tx.execute("INSERT INTO devices (token, firebase_uid, platform) VALUES ('t-admin', 'uid-adm', 'web')")

    with ports.uow() as uow:
        devices = {device.token: device.locale for device in uow.notify.devices_of([uid, "uid-adm"])}

    assert devices == {"t-en": "en", "t-admin": "id"}
