"""The audit trail end to end: admins' reads counted per hour rather than logged per poll, the reader
(`admin_audit`) filtering and paging changes and reads together, and PostgreSQL refusing to rewrite the trail
(the one erasure change excepted)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from emulators.simulator import App
from shared.adapters.postgres.database import Database
from tests.support.people import Pair, uid_of

pytestmark = pytest.mark.needs_gcloud


def _reads(db: Database, admin_uid: str, function: str) -> list[dict[str, Any]]:
    with db.transaction() as tx:
        return tx.all(
            "SELECT reads, queries FROM audit_reads WHERE actor_uid = :uid AND function = :f ORDER BY hour",
            {"uid": admin_uid, "f": function},
        )


def test_a_polled_dashboard_is_counted_in_one_row_per_hour_with_the_questions_asked(
    admin: App, halo_db: Database
) -> None:
    term = f"nobody-{uuid.uuid4().hex[:8]}"
    before = sum(row["reads"] for row in _reads(halo_db, uid_of(admin), "admin_dashboard"))
    rows_before = len(_reads(halo_db, uid_of(admin), "admin_dashboard"))

    for _ in range(5):
        assert admin.get("admin_dashboard").status == 200
    assert admin.get("admin_users", q=term).status == 200
    assert admin.get("admin_users", q=term, limit=10).status == 200
    assert admin.get("admin_users").status == 200, "a question inside another is a question of its own"

    dashboard = _reads(halo_db, uid_of(admin), "admin_dashboard")
    assert sum(row["reads"] for row in dashboard) == before + 5
    assert len(dashboard) - rows_before <= 1, "five polls, at most one new row (two only across an hour's turn)"
    users = _reads(halo_db, uid_of(admin), "admin_users")
    asked = [query for row in users for query in row["queries"]]
    assert {"q": term, "limit": 50} in asked and {"q": term, "limit": 10} in asked and {"limit": 50} in asked
    with halo_db.transaction() as tx:
        logged = tx.scalar("SELECT count(*) FROM audit_log WHERE action = 'admin_dashboard.read'")
    assert logged == 0, "reads are not audit_log rows"


def test_the_reader_filters_and_pages_changes_and_reads_and_is_itself_counted(
    admin: App, paired: Callable[..., Pair], halo_db: Database
) -> None:
    pair = paired()
    ended = admin.post(
        "admin_session_end",
        {"session_id": pair.session_id, "reason": "crisis hand-off", "goodbye": False, "credit_unused": False},
    )
    assert ended.status == 200, ended.body
    reads_before = sum(row["reads"] for row in _reads(halo_db, uid_of(admin), "admin_audit"))

    by_target = admin.get("admin_audit", target=pair.session_id)
    by_action = admin.get("admin_audit", action="session.end", actor_uid=uid_of(admin), limit=1)
    reads = admin.get("admin_audit", action="admin_audit.read", actor_uid=uid_of(admin))
    today = admin.get("admin_audit", target=pair.session_id, from_date="2020-01-01", to_date="2020-01-02")

    assert by_target.status == 200, by_target.body
    (entry,) = by_target.body["entries"]
    assert (entry["action"], entry["actor_uid"], entry["reads"]) == ("session.end", uid_of(admin), 1)
    assert entry["new"]["reason"] == "crisis hand-off" and entry["old"]["status"] == "active"
    assert [e["target"] for e in by_action.body["entries"]] == [pair.session_id], "newest first"
    made = 4
    if by_action.body["next_cursor"] is not None:  # other tests' session ends: the next page is older
        made += 1
        following = admin.get(
            "admin_audit", action="session.end", actor_uid=uid_of(admin), limit=1, cursor=by_action.body["next_cursor"]
        )
        assert following.status == 200 and following.body["entries"][0]["target"] != pair.session_id
    (counted,) = reads.body["entries"][:1]
    assert counted["target"] == "admin_audit" and counted["reads"] >= 1
    assert today.body["entries"] == [], "another day's range"
    assert sum(row["reads"] for row in _reads(halo_db, uid_of(admin), "admin_audit")) == reads_before + made
    bad = admin.get("admin_audit", from_date="2026-01-05", to_date="2026-01-04")
    assert (bad.status, [f["field"] for f in bad.body["error"]["fields"]]) == (400, ["to_date"])
    assert admin.get("admin_audit", cursor="not-ours").status == 400


def test_postgresql_refuses_to_rewrite_the_trail_but_lets_erasure_take_a_note_out(halo_db: Database) -> None:
    with halo_db.transaction() as tx:
        change = tx.scalar(
            """INSERT INTO audit_log (actor_uid, actor_role, action, target, new_value)
               VALUES ('t', 'admin', 'mitra.deactivate', 'm', '{"active": false}') RETURNING id"""
        )
        acknowledged = tx.scalar(
            """INSERT INTO audit_log (actor_uid, actor_role, action, target, new_value)
               VALUES ('t', 'admin', 'alert.acknowledge', 'f', :v) RETURNING id""",
            {"v": json.dumps({"acknowledged": True, "note": "kata-kata klien"})},
        )
        read = tx.scalar(
            """INSERT INTO audit_reads (actor_uid, actor_role, function, hour) VALUES ('t', 'admin', 'f', now())
               RETURNING id"""
        )
    refused = [
        ("UPDATE audit_log SET new_value = '{}' WHERE id = :id", change),
        ("DELETE FROM audit_log WHERE id = :id", change),
        (
            "UPDATE audit_log SET actor_uid = 'someone else', new_value = new_value - 'note' WHERE id = :id",
            acknowledged,
        ),
        ("TRUNCATE audit_log", None),
        ("UPDATE audit_reads SET reads = 0 WHERE id = :id", read),
        ("DELETE FROM audit_reads WHERE id = :id", read),
    ]
    for statement, row_id in refused:
        with pytest.raises(Exception, match=r"append-only|only counts up"), halo_db.transaction() as tx:
            tx.execute(statement, {"id": row_id})

    with halo_db.transaction() as tx:
        tx.execute("UPDATE audit_log SET new_value = new_value - 'note' WHERE id = :id", {"id": acknowledged})
        tx.execute("UPDATE audit_reads SET reads = reads + 1 WHERE id = :id", {"id": read})
        kept = tx.scalar("SELECT new_value FROM audit_log WHERE id = :id", {"id": acknowledged})
    assert kept == {"acknowledged": True}, "erasure's one change: the note leaves, the row stays"
