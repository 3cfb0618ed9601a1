"""Arranging states in plain SQL (and paying on the Xendit stand-in), for tests and benchmarks alike."""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence

import requests

from shared.adapters.postgres.database import Database


def add_client(db: Database) -> str:
    with db.transaction() as tx:
        return str(
            tx.scalar(
                """INSERT INTO clients (firebase_uid, display_name, alias_number)
                   SELECT :uid, 'Klien', COALESCE(max(alias_number), 999) + 1 FROM clients RETURNING id::text""",
                {"uid": f"client-{uuid.uuid4().hex}"},
            )
        )


def add_online_mitras(db: Database, count: int) -> list[str]:
    """Online mitras with a Firebase uid and a fresh heartbeat: offered every request. Eleven random digits per
    phone number keep thousands of them (a blast bench) from colliding."""
    with db.transaction() as tx:
        rows = tx.all(
            """INSERT INTO mitras (phone, display_name, firebase_uid, presence, last_heartbeat_at, heard_until)
               SELECT phone, 'Mitra ' || n, 'mitra-' || md5(phone), 'online', now(), now() + interval '1 hour'
               FROM unnest(CAST(:phones AS text[])) WITH ORDINALITY AS rows (phone, n) RETURNING id::text""",
            {"phones": [f"+6281{uuid.uuid4().int % 10**11:011d}" for _ in range(count)]},
        )
    return [row["id"] for row in rows]


def add_searching_request(db: Database, client_id: str, offered_to: Sequence[str]) -> str:
    """A free-trial request searching for a minute, already offered to `offered_to`."""
    with db.transaction() as tx:
        request_id = str(
            tx.scalar(
                """INSERT INTO pairing_requests (client_id, status, kind, duration_s, search_deadline)
                   VALUES (CAST(:c AS uuid), 'searching', 'free_trial', 900, now() + interval '60 seconds')
                   RETURNING id::text""",
                {"c": client_id},
            )
        )
        tx.execute(
            """INSERT INTO pairing_offers (request_id, mitra_id)
               SELECT CAST(:r AS uuid), id FROM unnest(CAST(:m AS uuid[])) AS id""",
            {"r": request_id, "m": list(offered_to)},
        )
    return request_id


def set_offline(db: Database, mitra_ids: Sequence[str]) -> None:
    with db.transaction() as tx:
        tx.execute("UPDATE mitras SET presence = 'offline' WHERE id = ANY(CAST(:m AS uuid[]))", {"m": list(mitra_ids)})


def pay_invoice(db: Database, xendit_port: int, transaction_id: str, *, timeout: float = 15) -> str:
    """Pay a checkout's invoice on the Xendit stand-in's page; returns once the webhook has marked it paid."""
    with db.transaction() as tx:
        invoice_id = tx.scalar(
            "SELECT xendit_invoice_id FROM customer_transactions WHERE id = CAST(:id AS uuid)", {"id": transaction_id}
        )
    paid = requests.post(f"http://127.0.0.1:{xendit_port}/_standin/invoices/{invoice_id}/pay", timeout=10)
    if paid.status_code != 200:
        raise RuntimeError(f"paying invoice {invoice_id}: {paid.status_code} {paid.text[:200]}")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with db.transaction() as tx:
            status = tx.scalar(
                "SELECT status FROM customer_transactions WHERE id = CAST(:id AS uuid)", {"id": transaction_id}
            )
        if status == "paid":
            return transaction_id
        time.sleep(0.05)
    raise RuntimeError(f"transaction {transaction_id} never became paid")
