"""Retention: the texts of messages in sessions closed longer ago than `retention_days` are erased, in PostgreSQL
(text := NULL, the row and its seq stay) and in Firestore (through the outbox). Bounded batches, each its own
transaction; running it again finds nothing left to do.
"""

from __future__ import annotations

import time

from shared.services import projections, settings_store
from shared.services.ports import Ports
from shared.services.projector import project_after_commit

_SESSIONS_PER_BATCH = 50
_MESSAGES_PER_BATCH = 500


def sweep(ports: Ports, *, budget_s: float) -> int:
    """Erase batch after batch until nothing is due or the time budget is spent; returns the texts erased."""
    deadline = time.monotonic() + budget_s
    erased = 0
    while time.monotonic() < deadline:
        batch = _erase_batch(ports)
        if batch is None:
            break
        erased += batch
    return erased


def _erase_batch(ports: Ports) -> int | None:
    """None when no session is due (or every due one is being swept by another run)."""
    with ports.db.transaction() as tx:
        days = settings_store.load_config(tx).retention_days
        due = [
            row["id"]
            for row in tx.all(
                """SELECT id::text FROM sessions
                   WHERE status = 'closed' AND texts_erased_at IS NULL
                     AND closed_at < now() - make_interval(days => :days)
                   ORDER BY closed_at LIMIT :limit FOR UPDATE SKIP LOCKED""",
                {"days": days, "limit": _SESSIONS_PER_BATCH},
            )
        ]
        if not due:
            return None
        erased = tx.all(
            """UPDATE chat_messages SET text = NULL
               WHERE id IN (SELECT id FROM chat_messages WHERE session_id = ANY(CAST(:due AS uuid[]))
                              AND text IS NOT NULL LIMIT :limit)
               RETURNING id::text AS message_id, session_id::text""",
            {"due": due, "limit": _MESSAGES_PER_BATCH},
        )
        tx.execute(
            """UPDATE sessions s SET texts_erased_at = now()
               WHERE s.id = ANY(CAST(:due AS uuid[]))
                 AND NOT EXISTS (SELECT 1 FROM chat_messages m WHERE m.session_id = s.id AND m.text IS NOT NULL)""",
            {"due": due},
        )
        projections.erased_messages(tx, erased)
    project_after_commit(ports, tx.outbox_ids)
    return len(erased)
