"""A client's data on request (export, deletion) and the retention of message texts: the SQL."""

from __future__ import annotations

from collections.abc import Sequence

from shared.adapters.postgres.outbox import WITHOUT_WORDS
from shared.adapters.postgres.sql import Sql
from shared.domain.privacy import ClientOnRecord, ClientSession, ErasedText, Record


class PrivacyRepository:
    def __init__(self, sql: Sql) -> None:
        self._sql = sql

    # -- export ------------------------------------------------------------------------------------------------------

    def read_one_snapshot(self) -> None:
        """The reads that follow see one snapshot, so an export is consistent with itself. First in its change."""
        self._sql.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")

    def profile(self, client_id: str) -> Record | None:
        return self._sql.one(
            """SELECT id::text AS client_id, display_name, anonymous, alias_number, phone, email, locale, push_previews,
                      created_at, suspended_at, deleted_at, now() AS exported_at
               FROM clients WHERE id = CAST(:id AS uuid)""",
            {"id": client_id},
        )

    def sessions(self, client_id: str) -> list[Record]:
        return self._sql.all(
            """SELECT s.id::text AS session_id, s.kind, s.status, m.display_name AS mitra_name, s.started_at,
                      s.ends_at, s.closed_at
               FROM sessions s JOIN mitras m ON m.id = s.mitra_id WHERE s.client_id = CAST(:id AS uuid)
               ORDER BY s.started_at, s.id""",
            {"id": client_id},
        )

    def messages(self, client_id: str) -> list[Record]:
        return self._sql.all(
            """SELECT m.id::text AS message_id, m.session_id::text, m.seq, m.kind, m.sender_role, m.text, m.created_at
               FROM chat_messages m JOIN sessions s ON s.id = m.session_id WHERE s.client_id = CAST(:id AS uuid)
               ORDER BY s.started_at, s.id, m.seq""",
            {"id": client_id},
        )

    def transactions(self, client_id: str) -> list[Record]:
        return self._sql.all(
            """SELECT id::text AS transaction_id, purpose, tier_id, duration_s, amount, currency, status,
                      payment_method, payment_channel, created_at, paid_at, expired_at
               FROM customer_transactions WHERE client_id = CAST(:id AS uuid) ORDER BY created_at, id""",
            {"id": client_id},
        )

    def feedback(self, client_id: str) -> list[Record]:
        return self._sql.all(
            """SELECT session_id::text, rating, comment, created_at, updated_at FROM session_feedback
               WHERE client_id = CAST(:id AS uuid) ORDER BY created_at, session_id""",
            {"id": client_id},
        )

    def reports_filed(self, client_id: str) -> list[Record]:
        """The reports the client filed; never those a mitra filed about them, nor an admin's decision note."""
        return self._sql.all(
            """SELECT id::text AS report_id, session_id::text, category, text, status, created_at, decided_at
               FROM reports WHERE client_id = CAST(:id AS uuid) AND reporter_role = 'client'
               ORDER BY created_at, id""",
            {"id": client_id},
        )

    def blocks_made(self, client_id: str) -> list[Record]:
        """The blocks the client made; never a mitra's block of them."""
        return self._sql.all(
            """SELECT b.id::text AS block_id, b.session_id::text, m.display_name AS mitra_name, b.created_at
               FROM blocks b JOIN mitras m ON m.id = b.mitra_id
               WHERE b.client_id = CAST(:id AS uuid) AND b.blocked_by = 'client' ORDER BY b.created_at, b.id""",
            {"id": client_id},
        )

    def credit_backs(self, client_id: str) -> list[Record]:
        """What was credited back to the client's balance (not which admin did it)."""
        return self._sql.all(
            """SELECT session_id::text, unused_s, amount, currency, created_at FROM session_credit_backs
               WHERE client_id = CAST(:id AS uuid) ORDER BY created_at, session_id""",
            {"id": client_id},
        )

    def credit_back_uses(self, client_id: str) -> list[Record]:
        return self._sql.all(
            """SELECT transaction_id::text, kind, amount, currency, created_at FROM credit_back_uses
               WHERE client_id = CAST(:id AS uuid) ORDER BY created_at, id""",
            {"id": client_id},
        )

    # -- deletion ----------------------------------------------------------------------------------------------------

    def locked_client(self, client_id: str) -> ClientOnRecord | None:
        """The client's row stays locked until the change ends: one deletion at a time."""
        row = self._sql.one(
            """SELECT firebase_uid, deleted_at IS NOT NULL AS deleted, anonymous, alias_number FROM clients
               WHERE id = CAST(:id AS uuid) FOR UPDATE""",
            {"id": client_id},
        )
        return ClientOnRecord(**row) if row else None

    def has_open_session_or_search(self, client_id: str) -> bool:
        return bool(
            self._sql.scalar(
                """SELECT EXISTS (SELECT 1 FROM sessions WHERE client_id = CAST(:id AS uuid) AND status <> 'closed')
                       OR EXISTS (SELECT 1 FROM pairing_requests
                                  WHERE client_id = CAST(:id AS uuid) AND status = 'searching')""",
                {"id": client_id},
            )
        )

    def anonymise(self, client_id: str, *, name: str) -> None:
        """The profile no longer names anyone, and no sign-in reaches it (nor its takeovers' record of sign-ins)."""
        self._sql.execute(
            """WITH forgotten AS (DELETE FROM client_takeovers WHERE client_id = CAST(:id AS uuid))
               UPDATE clients SET display_name = :name, phone = NULL, email = NULL, firebase_uid = NULL,
                   deleted_at = now(), updated_at = now()
               WHERE id = CAST(:id AS uuid)""",
            {"name": name, "id": client_id},
        )

    def erase_texts_of(self, client_id: str) -> list[ErasedText]:
        """Every text of the client's sessions, theirs and their mitras'."""
        rows = self._sql.all(
            """UPDATE chat_messages m SET text = NULL FROM sessions s
               WHERE s.id = m.session_id AND s.client_id = CAST(:id AS uuid) AND m.text IS NOT NULL
               RETURNING m.session_id::text, m.id::text AS message_id""",
            {"id": client_id},
        )
        return [ErasedText(**row) for row in rows]

    def sessions_with_mitras(self, client_id: str) -> list[ClientSession]:
        rows = self._sql.all(
            """SELECT s.id::text AS session_id, m.firebase_uid AS mitra_uid FROM sessions s
               JOIN mitras m ON m.id = s.mitra_id WHERE s.client_id = CAST(:id AS uuid)""",
            {"id": client_id},
        )
        return [ClientSession(**row) for row in rows]

    def request_ids(self, client_id: str) -> list[str]:
        rows = self._sql.all(
            "SELECT id::text FROM pairing_requests WHERE client_id = CAST(:id AS uuid)", {"id": client_id}
        )
        return [row["id"] for row in rows]

    def transaction_ids(self, client_id: str) -> list[str]:
        rows = self._sql.all(
            "SELECT id::text FROM customer_transactions WHERE client_id = CAST(:id AS uuid)", {"id": client_id}
        )
        return [row["id"] for row in rows]

    # -- every copy of the words -------------------------------------------------------------------------------------

    def erase_copies_in(self, session_ids: Sequence[str]) -> None:
        """What else holds these sessions' words once their texts are erased: a crisis flag's matched phrase and the
        acknowledging admin's note (in `safety_flags` and in the acknowledgement's audit row), and the outbox rows
        still pending (a message's document, its push). A pending message document keeps its place and says
        `erased`, so delivering it late cannot bring the text back; an erasure still pending is left as it is."""
        self._sql.execute(
            f"""WITH flags AS (
                    UPDATE safety_flags SET phrase = NULL, note = NULL
                    WHERE session_id = ANY(CAST(:due AS uuid[])) AND (phrase IS NOT NULL OR note IS NOT NULL)
                    RETURNING id::text),
                notes AS (
                    UPDATE audit_log SET new_value = new_value - 'note'
                    WHERE action = 'alert.acknowledge' AND new_value ? 'note'
                      AND target IN (SELECT id::text FROM safety_flags
                                     WHERE session_id = ANY(CAST(:due AS uuid[])) AND note IS NOT NULL)
                    RETURNING id)
                UPDATE outbox SET payload = CASE
                        WHEN jsonb_typeof(payload #> '{{data,text}}') = 'string'
                        THEN jsonb_set({WITHOUT_WORDS}, '{{data,erased}}', 'true')
                        ELSE {WITHOUT_WORDS} END
                WHERE published_at IS NULL
                  AND (jsonb_typeof(payload #> '{{data,text}}') = 'string' OR payload #> '{{data,body}}' IS NOT NULL)
                  AND ((kind = 'firestore' AND split_part(destination, '/', 1) = 'sessions'
                        AND split_part(destination, '/', 2) = ANY(CAST(:due AS text[])))
                       OR (kind = 'pubsub' AND payload #>> '{{data,data,session_id}}' = ANY(CAST(:due AS text[]))))""",
            {"due": list(session_ids)},
        )

    def erase_safety_texts_in(self, session_ids: Sequence[str]) -> None:
        """The words written about these sessions after them (migration 0024): the client's feedback comment, the
        mitra's notes, the reports' texts and the deciding admins' notes. The rows stay (a rating, a report's
        category and status), their words go."""
        self._sql.execute(
            """WITH feedback AS (
                   UPDATE session_feedback SET comment = NULL
                   WHERE session_id = ANY(CAST(:due AS uuid[])) AND comment IS NOT NULL RETURNING 1),
               notes AS (
                   UPDATE mitra_notes SET text = NULL
                   WHERE session_id = ANY(CAST(:due AS uuid[])) AND text IS NOT NULL RETURNING 1)
               UPDATE reports SET text = NULL, decision_note = NULL
               WHERE session_id = ANY(CAST(:due AS uuid[])) AND (text IS NOT NULL OR decision_note IS NOT NULL)""",
            {"due": list(session_ids)},
        )

    def forget_published_about(self, keys: Sequence[str]) -> int:
        """Published outbox rows that name any of `keys` (a deleted client's uid, sessions, requests, payments) go at
        once rather than after the week they are otherwise kept; returns how many."""
        if not keys:
            return 0
        rows = self._sql.all(
            """DELETE FROM outbox WHERE published_at IS NOT NULL
                 AND destination || ' ' || payload::text LIKE ANY(CAST(:patterns AS text[]))
               RETURNING id""",
            {"patterns": [f"%{key}%" for key in keys]},
        )
        return len(rows)

    def purge_published(self, keep_days: int, *, limit: int) -> int:
        """Up to `limit` published outbox rows older than `keep_days` (`shared.domain.privacy.PUBLISHED_KEEP_DAYS`)
        are deleted; returns how many. Rows are found by their creation (the BRIN index of migration 0018)."""
        rows = self._sql.all(
            """DELETE FROM outbox WHERE id IN (
                   SELECT id FROM outbox
                   WHERE created_at < now() - make_interval(days => :days) AND published_at IS NOT NULL
                   LIMIT :limit FOR UPDATE SKIP LOCKED)
               RETURNING id""",
            {"days": keep_days, "limit": limit},
        )
        return len(rows)

    # -- retention ---------------------------------------------------------------------------------------------------

    def sessions_past_retention(self, retention_days: int, *, limit: int) -> list[str]:
        """The rule `shared.domain.privacy.retention_over`: closed sessions whose texts are due for erasure, oldest
        first, locked (and skipped by a concurrent sweep) until the change ends."""
        rows = self._sql.all(
            """SELECT id::text FROM sessions
               WHERE status = 'closed' AND texts_erased_at IS NULL
                 AND closed_at < now() - make_interval(days => :days)
               ORDER BY closed_at LIMIT :limit FOR UPDATE SKIP LOCKED""",
            {"days": retention_days, "limit": limit},
        )
        return [row["id"] for row in rows]

    def erase_texts_in(self, session_ids: Sequence[str], *, limit: int) -> list[ErasedText]:
        """Up to `limit` texts of these sessions."""
        rows = self._sql.all(
            """UPDATE chat_messages SET text = NULL
               WHERE id IN (SELECT id FROM chat_messages WHERE session_id = ANY(CAST(:due AS uuid[]))
                              AND text IS NOT NULL LIMIT :limit)
               RETURNING session_id::text, id::text AS message_id""",
            {"due": list(session_ids), "limit": limit},
        )
        return [ErasedText(**row) for row in rows]

    def mark_texts_erased(self, session_ids: Sequence[str]) -> None:
        """Those of these sessions with no text left are done: a later sweep passes them by."""
        self._sql.execute(
            """UPDATE sessions s SET texts_erased_at = now()
               WHERE s.id = ANY(CAST(:due AS uuid[]))
                 AND NOT EXISTS (SELECT 1 FROM chat_messages m WHERE m.session_id = s.id AND m.text IS NOT NULL)""",
            {"due": list(session_ids)},
        )
