"""Feedback end to end through the gateway on PostgreSQL: a client rates a closed session once, edits it for 24 hours
and no longer; the mitra is given no function that shows a rating; the control center sees each mitra's average and
reads the comments only with a reason, audited."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest

from emulators.simulator import App
from shared.adapters.postgres.database import Database
from tests.support.people import Pair, account_id, uid_of

pytestmark = pytest.mark.needs_gcloud


def _close(db: Database, session_id: str) -> None:
    """As the goodbye timer would have left it (arranged, so a test need not wait out the window)."""
    with db.transaction() as tx:
        tx.execute(
            "UPDATE sessions SET status = 'closed', closed_at = now() WHERE id = CAST(:s AS uuid)", {"s": session_id}
        )


def _rate(app: App, session_id: str, action: str = "create", **fields: Any) -> Any:
    return app.post("session_feedback", {"action": action, "session_id": session_id, **fields})


def test_a_client_rates_a_closed_session_once_and_edits_it_for_24_hours(
    paired: Callable[..., Pair], halo_db: Database
) -> None:
    pair = paired()
    early = _rate(pair.client, pair.session_id, rating=5)
    assert (early.status, early.body["error"]["code"]) == (409, "session_not_closed")
    _close(halo_db, pair.session_id)

    given = _rate(pair.client, pair.session_id, rating=4, comment="Terima kasih sudah mendengar")

    assert given.status == 200, given.body
    assert (given.body["rating"], given.body["comment"]) == (4, "Terima kasih sudah mendengar")
    again = _rate(pair.client, pair.session_id, rating=1)
    assert (again.status, again.body["error"]["code"]) == (409, "feedback_exists")
    edited = _rate(pair.client, pair.session_id, "edit", rating=5)
    assert edited.status == 200 and (edited.body["rating"], edited.body["comment"]) == (5, None)
    assert pair.client.get("session_feedback", session_id=pair.session_id).body["rating"] == 5
    with halo_db.transaction() as tx:
        tx.execute(
            "UPDATE session_feedback SET created_at = now() - interval '25 hours' WHERE session_id = CAST(:s AS uuid)",
            {"s": pair.session_id},
        )
    locked = _rate(pair.client, pair.session_id, "edit", rating=1)
    assert (locked.status, locked.body["error"]["code"]) == (409, "feedback_locked")


def test_bad_ratings_are_refused_naming_the_field_and_only_the_client_rates(
    paired: Callable[..., Pair], new_client: Callable[..., App], halo_db: Database
) -> None:
    pair = paired()
    _close(halo_db, pair.session_id)

    for fields, field in (({"rating": 6}, "rating"), ({"rating": 3, "comment": "x" * 1001}, "comment")):
        refused = _rate(pair.client, pair.session_id, **fields)
        assert refused.status == 400, refused.body
        assert [f["field"] for f in refused.body["error"]["fields"]] == [field]
    assert _rate(pair.mitra, pair.session_id, rating=1).status == 403, "a mitra rates nothing"
    assert pair.mitra.get("session_feedback", session_id=pair.session_id).status == 403, "nor reads a rating"
    assert _rate(new_client("Orang Lain"), pair.session_id, rating=1).status == 404


def test_the_control_center_sees_averages_and_reads_comments_with_a_reason_audited(
    paired: Callable[..., Pair], admin: App, halo_db: Database
) -> None:
    pair = paired()
    _close(halo_db, pair.session_id)
    marker = f"komentar-{uuid.uuid4().hex[:8]}"
    assert _rate(pair.client, pair.session_id, rating=3, comment=marker).status == 200
    mitra_id = account_id(halo_db, pair.mitra)

    ratings = admin.get("admin_feedback", mitra_id=mitra_id)

    assert ratings.status == 200, ratings.body
    assert [(m["mitra_id"], m["ratings"], m["average"], m["comments"]) for m in ratings.body["mitras"]] == [
        (mitra_id, 1, 3.0, 1)
    ]
    assert marker not in str(ratings.body)
    unexplained = admin.get("admin_feedback_comments", mitra_id=mitra_id)
    assert unexplained.status == 400
    assert [f["field"] for f in unexplained.body["error"]["fields"]] == ["reason"]
    comments = admin.get("admin_feedback_comments", mitra_id=mitra_id, reason="tinjauan mutu bulanan")
    assert comments.status == 200, comments.body
    assert [(c["session_id"], c["comment"]) for c in comments.body["comments"]] == [(pair.session_id, marker)]
    with halo_db.transaction() as tx:
        (audit,) = tx.all(
            "SELECT actor_role, new_value FROM audit_log WHERE action = 'feedback.comments_read' AND target = :t",
            {"t": mitra_id},
        )
    assert audit == {"actor_role": "admin", "new_value": {"reason": "tinjauan mutu bulanan", "comments": 1}}
    assert pair.client.get("admin_feedback").status == 403
    assert uid_of(pair.mitra)
