"""Arranging PostgreSQL states for integration tests, in plain SQL."""

from __future__ import annotations

import uuid

from shared.adapters.db import Database


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
    with db.transaction() as tx:
        rows = tx.all(
            """INSERT INTO mitras (phone, display_name, firebase_uid, presence, last_heartbeat_at)
               SELECT '+62814' || lpad((random() * 99999999)::bigint::text, 8, '0') || n, 'Mitra ' || n,
                      'mitra-' || md5(random()::text), 'online', now()
               FROM generate_series(1, :count) AS n RETURNING id::text""",
            {"count": count},
        )
    return [row["id"] for row in rows]


def add_searching_request(db: Database, client_id: str, offered_to: list[str]) -> str:
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
            {"r": request_id, "m": offered_to},
        )
    return request_id
