"""The audit log in memory: the promises of shared/adapters/postgres/audit.py's `count_read` (one row per admin,
function and hour, counting up) and shared/adapters/postgres/admin_audit.py's reader (changes and hourly reads as
one list, newest first)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from shared.domain.admin import READ_QUERIES_KEPT, AuditEntry, read_query

if TYPE_CHECKING:
    from tests.support.fakes import FakeDatabase


def count_read(db: FakeDatabase, *, actor_uid: str, actor_role: str, function: str, query: Mapping[str, Any]) -> None:
    hour = db.now.replace(minute=0, second=0, microsecond=0)
    reads = db.table("audit_reads")
    asked = read_query(query)
    row = reads.get((actor_uid, function, hour))
    if row is None:
        reads[(actor_uid, function, hour)] = {
            "id": db.next_id(),
            "actor_uid": actor_uid,
            "actor_role": actor_role,
            "function": function,
            "hour": hour,
            "reads": 1,
            "queries": [asked],
            "first_at": db.now,
            "last_at": db.now,
        }
        return
    row["reads"] += 1
    row["last_at"] = db.now
    if asked not in row["queries"] and len(row["queries"]) < READ_QUERIES_KEPT:
        row["queries"].append(asked)


class FakeAdminAuditRepository:
    def __init__(self, db: FakeDatabase) -> None:
        self._db = db

    def _all(self) -> list[AuditEntry]:
        changes = [
            AuditEntry(
                entry_id=f"log-{row['id']:019d}",
                at=row["at"],
                last_at=row["at"],
                actor_uid=row["actor_uid"],
                actor_role=row["actor_role"],
                action=row["action"],
                target=row["target"],
                old=row["old"],
                new=row["new"],
                reads=1,
            )
            for row in self._db.audit
        ]
        reads = [
            AuditEntry(
                entry_id=f"reads-{row['id']:019d}",
                at=row["first_at"],
                last_at=row["last_at"],
                actor_uid=row["actor_uid"],
                actor_role=row["actor_role"],
                action=f"{row['function']}.read",
                target=row["function"],
                old=None,
                new=list(row["queries"]),
                reads=row["reads"],
            )
            for row in self._db.table("audit_reads").values()
        ]
        return changes + reads

    def entries(
        self,
        *,
        actor_uid: str | None,
        action: str | None,
        target: str | None,
        starts: datetime | None,
        ends: datetime | None,
        after_entry: tuple[datetime, str] | None,
        limit: int,
    ) -> list[AuditEntry]:
        found = [
            e
            for e in self._all()
            if (actor_uid is None or e.actor_uid == actor_uid)
            and (action is None or e.action == action)
            and (target is None or e.target == target)
            and (starts is None or e.at >= starts)
            and (ends is None or e.at < ends)
            and (after_entry is None or (e.at, e.entry_id) < after_entry)
        ]
        found.sort(key=lambda e: (e.at, e.entry_id), reverse=True)
        return found[:limit]
