"""The audit trail: who did what, when, from which value to which (audit_log, append-only), and how often each admin
read each function in each hour (audit_reads, counted up)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from shared.adapters.postgres.sql import Sql
from shared.domain.admin import READ_QUERIES_KEPT, read_query


class AuditRepository:
    def __init__(self, sql: Sql) -> None:
        self._sql = sql

    def record(self, *, actor_uid: str, actor_role: str, action: str, target: str, old: Any, new: Any) -> None:
        self._sql.execute(
            """INSERT INTO audit_log (actor_uid, actor_role, action, target, old_value, new_value)
               VALUES (:uid, :role, :action, :target, CAST(:old AS jsonb), CAST(:new AS jsonb))""",
            {
                "uid": actor_uid,
                "role": actor_role,
                "action": action,
                "target": target,
                "old": json.dumps(old, default=str),
                "new": json.dumps(new, default=str),
            },
        )

    def count_read(self, *, actor_uid: str, actor_role: str, function: str, query: Mapping[str, Any]) -> None:
        """One more read of `function` by this admin in this hour (UTC): the hour's row counts it, and keeps the
        question if it is new (`shared.domain.admin.read_query`; equal as a whole, not merely contained), up to
        READ_QUERIES_KEPT of them. One statement (the trigger audit_reads_count_up lets it only count up)."""
        self._sql.execute(
            """INSERT INTO audit_reads (actor_uid, actor_role, function, hour, queries)
               VALUES (:uid, :role, :function, date_trunc('hour', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC',
                       jsonb_build_array(CAST(:query AS jsonb)))
               ON CONFLICT (actor_uid, function, hour) DO UPDATE
               SET reads = audit_reads.reads + 1, last_at = greatest(audit_reads.last_at, now()),
                   queries = CASE WHEN EXISTS (SELECT 1 FROM jsonb_array_elements(audit_reads.queries) AS asked
                                               WHERE asked = EXCLUDED.queries -> 0)
                                    OR jsonb_array_length(audit_reads.queries) >= :kept
                                  THEN audit_reads.queries
                                  ELSE audit_reads.queries || EXCLUDED.queries END""",
            {
                "uid": actor_uid,
                "role": actor_role,
                "function": function,
                "query": json.dumps(read_query(query), default=str),
                "kept": READ_QUERIES_KEPT,
            },
        )
