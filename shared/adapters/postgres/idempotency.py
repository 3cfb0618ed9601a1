"""Idempotency keys' SQL: the first answer to each (caller, function, key), kept for KEY_LIFETIME."""

from __future__ import annotations

import json

from shared.adapters.postgres.sql import Sql
from shared.domain.idempotency import KEY_LIFETIME, Answer, KeyedCall

_LIFETIME_S = KEY_LIFETIME.total_seconds()


class IdempotencyRepository:
    def __init__(self, sql: Sql) -> None:
        self._sql = sql

    def lock_key(self, call: KeyedCall) -> None:
        """A lock on this caller's key until the change ends: a second call with the same key waits here for the
        first's change to commit (then `answer_to` reads its answer) or roll back (then it decides afresh). Taken
        before any row lock, by keyed calls only, so it adds no lock cycle."""
        self._sql.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended(:lock, 0))",
            {"lock": f"idempotency\x1f{call.caller_uid}\x1f{call.function}\x1f{call.key}"},
        )

    def answer_to(self, call: KeyedCall) -> Answer | None:
        """The first answer to this key, unless it has outlived KEY_LIFETIME. A statement of its own after
        `lock_key`, so it sees an answer committed while the lock was waited for."""
        row = self._sql.one(
            """SELECT request_hash, status, body FROM idempotency_keys
               WHERE caller_uid = :uid AND function = :function AND key = :key
                 AND created_at > now() - make_interval(secs => :lifetime_s)""",
            {"uid": call.caller_uid, "function": call.function, "key": call.key, "lifetime_s": _LIFETIME_S},
        )
        return Answer(row["request_hash"], row["status"], row["body"]) if row else None

    def remember(self, call: KeyedCall, answer: Answer) -> None:
        """The answer, in the change's transaction. An expired answer not yet swept is replaced; a live one cannot
        be there, since the change holds the key's lock and found none."""
        self._sql.execute(
            """INSERT INTO idempotency_keys (caller_uid, function, key, request_hash, status, body)
               VALUES (:uid, :function, :key, :hash, :status, CAST(:body AS jsonb))
               ON CONFLICT (caller_uid, function, key) DO UPDATE
               SET request_hash = EXCLUDED.request_hash, status = EXCLUDED.status, body = EXCLUDED.body,
                   created_at = now()""",
            {
                "uid": call.caller_uid,
                "function": call.function,
                "key": call.key,
                "hash": answer.request_hash,
                "status": answer.status,
                "body": json.dumps(answer.body),
            },
        )

    def forget_expired(self, limit: int) -> int:
        """At most `limit` keys older than KEY_LIFETIME deleted; how many."""
        return self._sql.execute(
            """DELETE FROM idempotency_keys WHERE ctid IN (
                   SELECT ctid FROM idempotency_keys
                   WHERE created_at <= now() - make_interval(secs => :lifetime_s)
                   LIMIT :limit)""",
            {"lifetime_s": _LIFETIME_S, "limit": limit},
        )

    def forget_caller(self, caller_uid: str) -> int:
        """Every answer kept for this caller (a deleted account: a registration's answer names the person)."""
        return self._sql.execute("DELETE FROM idempotency_keys WHERE caller_uid = :uid", {"uid": caller_uid})
