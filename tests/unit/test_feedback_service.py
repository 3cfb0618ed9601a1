"""Feedback as stories on the in-memory unit of work: a client rates a closed session once, edits it for 24 hours,
and the control center sees averages and (with a reason, audited) the comments. The same on PostgreSQL through the
gateway: tests/e2e/test_feedback.py."""

from __future__ import annotations

from datetime import timedelta

import pytest

from shared.domain.chat import Participant
from shared.domain.roles import Role
from shared.errors import Conflict, NotFound
from shared.services import feedback
from tests.support.fake_chat import add_session
from tests.support.fakes import FakeDatabase, FakePorts, fake_ports

SESSION = "5e551011-0000-4000-8000-000000000001"
OTHER = "5e551011-0000-4000-8000-000000000002"
M1 = "0000a111-0000-4000-8000-000000000001"
M2 = "0000a111-0000-4000-8000-000000000002"
CLIENT = Participant(Role.CLIENT, "c1", "uid-client")
STRANGER = Participant(Role.CLIENT, "c2", "uid-stranger")


@pytest.fixture
def db() -> FakeDatabase:
    database = FakeDatabase()
    client = {"id": "c1", "firebase_uid": "uid-client", "display_name": "Sari", "alias_number": 4821}
    add_session(database, SESSION, client=client, mitra={"id": M1, "firebase_uid": "m", "display_name": "Anisa"})
    add_session(database, OTHER, client=client, mitra={"id": M2, "firebase_uid": "m2", "display_name": "Budi"})
    stranger = {"id": "c2", "firebase_uid": "uid-stranger", "alias_number": 7, "anonymous": False}
    database.table("clients")["c2"] = stranger
    return database


@pytest.fixture
def ports(db: FakeDatabase) -> FakePorts:
    return fake_ports(db)


def _close(db: FakeDatabase, session_id: str) -> None:
    db.table("sessions")[session_id].update(status="closed", closed_at=db.now)


def test_a_closed_session_is_rated_once_and_a_second_rating_is_refused(ports: FakePorts, db: FakeDatabase) -> None:
    with pytest.raises(Conflict) as early:
        feedback.give(ports, CLIENT, SESSION, rating=5, comment=None)
    assert early.value.code == "session_not_closed"
    _close(db, SESSION)

    given = feedback.give(ports, CLIENT, SESSION, rating=4, comment="Terima kasih")

    assert (given.rating, given.comment, given.mitra_id) == (4, "Terima kasih", M1)
    assert feedback.give(ports, CLIENT, SESSION, rating=4, comment="Terima kasih") == given, "a repeat: the first"
    with pytest.raises(Conflict) as again:
        feedback.give(ports, CLIENT, SESSION, rating=1, comment=None)
    assert again.value.code == "feedback_exists"
    assert feedback.own(ports, CLIENT, SESSION).rating == 4


def test_only_the_session_s_client_rates_it(ports: FakePorts, db: FakeDatabase) -> None:
    _close(db, SESSION)
    with pytest.raises(NotFound):
        feedback.give(ports, STRANGER, SESSION, rating=1, comment=None)
    with pytest.raises(NotFound):
        feedback.give(ports, Participant(Role.MITRA, M1, "m"), SESSION, rating=5, comment=None)
    assert db.table("session_feedback") == {}


def test_a_rating_is_edited_for_24_hours_then_locked(ports: FakePorts, db: FakeDatabase) -> None:
    _close(db, SESSION)
    with pytest.raises(NotFound):
        feedback.edit(ports, CLIENT, SESSION, rating=3, comment=None)
    feedback.give(ports, CLIENT, SESSION, rating=2, comment="kurang")
    db.tick(timedelta(hours=23).total_seconds())

    edited = feedback.edit(ports, CLIENT, SESSION, rating=5, comment=None)

    assert (edited.rating, edited.comment, edited.updated_at) == (5, None, db.now)
    db.tick(timedelta(hours=2).total_seconds())
    with pytest.raises(Conflict) as locked:
        feedback.edit(ports, CLIENT, SESSION, rating=1, comment=None)
    assert locked.value.code == "feedback_locked"
    assert feedback.own(ports, CLIENT, SESSION).rating == 5


def test_the_control_center_sees_averages_and_reads_comments_with_a_reason_audited(
    ports: FakePorts, db: FakeDatabase
) -> None:
    _close(db, SESSION)
    _close(db, OTHER)
    feedback.give(ports, CLIENT, SESSION, rating=4, comment="baik sekali")
    db.tick(1)
    feedback.give(ports, CLIENT, OTHER, rating=2, comment=None)

    ratings, cursor = feedback.ratings(ports, mitra_id=None, cursor=None, limit=1)
    more, end = feedback.ratings(ports, mitra_id=None, cursor=cursor, limit=1)

    assert [(r.mitra_id, r.ratings, r.average, r.comments) for r in ratings + more] == [
        (M1, 1, 4.0, 1),
        (M2, 1, 2.0, 0),
    ]
    assert end is None
    assert db.audit == [], "averages hold no words: not a read to audit"
    comments, _ = feedback.comments(ports, "uid-admin", mitra_id=None, reason="tinjauan mutu", cursor=None, limit=10)
    assert [(c.session_id, c.comment) for c in comments] == [(OTHER, None), (SESSION, "baik sekali")]
    (audit,) = db.audit
    assert (audit["action"], audit["new"]) == ("feedback.comments_read", {"reason": "tinjauan mutu", "comments": 2})


def test_a_session_whose_words_were_erased_takes_no_new_comment(ports: FakePorts, db: FakeDatabase) -> None:
    _close(db, SESSION)
    db.table("sessions")[SESSION]["texts_erased_at"] = db.now
    with pytest.raises(Conflict) as erased:
        feedback.give(ports, CLIENT, SESSION, rating=3, comment="x")
    assert erased.value.code == "session_erased"
