"""Reports as stories on the in-memory unit of work: either side reports the other into the review queue (the admins
on duty are pushed), a report of a crisis raises a crisis alert, an admin decides a report once (audited); and the
words of reports, notes and feedback go with retention. The same through the gateway:
tests/e2e/test_reports_blocks.py."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from shared.domain.chat import Participant
from shared.domain.events import DocumentWrite
from shared.domain.reports import RecentReports, ReportCategory, ReportStatus, report_wait
from shared.domain.roles import Role
from shared.errors import Conflict, NotFound, RateLimited
from shared.services import feedback, notes, privacy, reports, safety
from tests.support.fake_accounts import add_admin
from tests.support.fake_chat import add_session
from tests.support.fake_idempotency import keyed
from tests.support.fakes import FakeDatabase, FakePorts, fake_ports, with_config

SESSION = "5e551011-0000-4000-8000-000000000001"
REPORTS_PER_HOUR = 10
CLIENT = Participant(Role.CLIENT, "c1", "uid-client")
MITRA = Participant(Role.MITRA, "m1", "uid-mitra")
STRANGER = Participant(Role.MITRA, "m2", "uid-stranger")
HOTLINES = "119 ext 8 (SEJIWA), 112"


@pytest.fixture
def db() -> FakeDatabase:
    database = FakeDatabase()
    add_session(
        database,
        SESSION,
        client={"id": "c1", "firebase_uid": "uid-client", "display_name": "Sari", "alias_number": 4821},
        mitra={"id": "m1", "firebase_uid": "uid-mitra", "display_name": "Anisa"},
    )
    database.table("mitras")["m2"] = {"id": "m2", "firebase_uid": "uid-stranger", "display_name": "Budi"}
    add_admin(database, "a1", firebase_uid="uid-admin")
    add_admin(database, "a2", firebase_uid="uid-resting", on_duty=False)
    with_config(database, hotline_numbers=HOTLINES)
    return database


@pytest.fixture
def ports(db: FakeDatabase) -> FakePorts:
    return fake_ports(db)


def _pushes(ports: FakePorts) -> list[dict[str, object]]:
    return [json.loads(data) for topic, data, _ in ports.publisher.published if topic == "notify"]


def test_a_report_joins_the_queue_and_the_admins_on_duty_are_pushed(ports: FakePorts, db: FakeDatabase) -> None:
    filed = reports.report(ports, MITRA, SESSION, ReportCategory.ABUSIVE_LANGUAGE, "klien memaki terus")

    assert (filed.status, filed.category) == ("open", "abusive_language")
    (row,) = db.table("reports").values()
    assert (row["reporter_role"], row["text"]) == ("mitra", "klien memaki terus")
    (pushed,) = _pushes(ports)
    assert pushed["recipients"] == ["uid-admin"]
    assert pushed["data"] == {
        "type": "report_filed",
        "report_id": filed.report_id,
        "session_id": SESSION,
        "category": "abusive_language",
    }
    assert "memaki" not in json.dumps(pushed), "a push carries no words of the report"
    assert db.table("safety_flags") == {}, "not a crisis: no alert"
    queue, _ = reports.list_reports(ports, "uid-admin", status=ReportStatus.OPEN, category=None, cursor=None, limit=10)
    assert [r.report_id for r in queue] == [filed.report_id]
    (audit,) = db.audit
    assert (audit["action"], audit["actor_uid"], audit["new"]) == (
        "reports.read",
        "uid-admin",
        {"status": "open", "reports": 1},
    )


def test_only_the_session_s_two_sides_report_it(ports: FakePorts, db: FakeDatabase) -> None:
    with pytest.raises(NotFound):
        reports.report(ports, STRANGER, SESSION, ReportCategory.OTHER, "bukan sesiku")
    assert db.table("reports") == {}


def test_a_client_s_report_of_a_crisis_raises_a_crisis_alert(ports: FakePorts, db: FakeDatabase) -> None:
    filed = reports.report(ports, CLIENT, SESSION, ReportCategory.SELF_HARM_RISK, "aku takut menyakiti diriku")

    (flag,) = db.table("safety_flags").values()
    assert (flag["report_id"], flag["message_id"], flag["category"]) == (filed.report_id, None, "self_harm")
    (alert_document,) = [
        d for d in ports.documents.written if isinstance(d, DocumentWrite) and d.paths[0].startswith("admin_alerts/")
    ]
    assert alert_document.data["report_id"] == filed.report_id and "message_id" not in alert_document.data
    (pushed,) = _pushes(ports)
    assert pushed["data"]["type"] == "safety_alert", "the crisis alert's push stands for the report's"
    (alert,), _ = safety.list_alerts(ports, acknowledged=False, cursor=None, limit=10)
    assert (alert.report_id, alert.message_id) == (filed.report_id, None)
    (card,) = db.table("chat_messages").values()
    assert (card["kind"], card["session_id"]) == ("system", SESSION) and HOTLINES in card["text"]
    assert flag["hotline_message_id"] == card["id"], "the card is shown once per session"


def test_a_report_of_a_crisis_from_a_closed_session_puts_no_card_in_it(ports: FakePorts, db: FakeDatabase) -> None:
    db.table("sessions")[SESSION].update(status="closed", closed_at=db.now)

    reports.report(ports, CLIENT, SESSION, ReportCategory.CRISIS, "aku tidak aman")

    assert len(db.table("safety_flags")) == 1 and db.table("chat_messages") == {}


def test_an_admin_decides_a_report_once_audited_without_the_note(ports: FakePorts, db: FakeDatabase) -> None:
    filed = reports.report(ports, CLIENT, SESSION, ReportCategory.HARASSMENT, "mitra kasar")

    decided = reports.decide(ports, "uid-admin", filed.report_id, ReportStatus.RESOLVED, "sudah ditegur")

    assert (decided.status, decided.decided_by, decided.decision_note) == (
        ReportStatus.RESOLVED,
        "uid-admin",
        "sudah ditegur",
    )
    with pytest.raises(Conflict) as again:
        reports.decide(ports, "uid-admin", filed.report_id, ReportStatus.DISMISSED, None)
    assert again.value.code == "report_decided"
    (audit,) = db.audit
    assert (audit["action"], audit["old"], audit["new"]) == (
        "report.resolved",
        {"status": "open"},
        {"status": "resolved"},
    )
    with pytest.raises(NotFound):
        reports.decide(ports, "uid-admin", "5e551011-0000-4000-8000-00000000dead", ReportStatus.RESOLVED, None)


def test_the_queue_filters_by_status_and_category_in_pages(ports: FakePorts, db: FakeDatabase) -> None:
    ids = []
    for who, category in (
        (MITRA, ReportCategory.SPAM_OR_SCAM),
        (MITRA, ReportCategory.OTHER),
        (CLIENT, ReportCategory.OTHER),
    ):
        ids.append(reports.report(ports, who, SESSION, category, "teks").report_id)
        db.tick(1)
    reports.decide(ports, "uid-admin", ids[2], ReportStatus.DISMISSED, None)

    other = ReportCategory.OTHER
    first, cursor = reports.list_reports(ports, "uid-admin", status=None, category=other, cursor=None, limit=1)
    second, end = reports.list_reports(ports, "uid-admin", status=None, category=other, cursor=cursor, limit=1)
    still_open = ReportStatus.OPEN
    open_ones, _ = reports.list_reports(ports, "uid-admin", status=still_open, category=None, cursor=None, limit=9)

    assert [r.report_id for r in first + second] == [ids[2], ids[1]] and end is None
    assert [r.report_id for r in open_ones] == [ids[1], ids[0]]


def test_one_side_files_one_report_per_session_and_category_and_a_second_is_answered_the_first(
    ports: FakePorts, db: FakeDatabase
) -> None:
    first = reports.report(ports, CLIENT, SESSION, ReportCategory.HARASSMENT, "pertama")
    db.tick(5)

    again = reports.report(ports, CLIENT, SESSION, ReportCategory.HARASSMENT, "kedua")
    other_side = reports.report(ports, MITRA, SESSION, ReportCategory.HARASSMENT, "dari mitra")
    other_category = reports.report(ports, CLIENT, SESSION, ReportCategory.OTHER, "lain")

    db.table("sessions")[SESSION]["mitra_id"] = "m2"  # rerouted by an admin: another pair
    rerouted = reports.report(ports, CLIENT, SESSION, ReportCategory.HARASSMENT, "mitra baru")

    assert again == first, "the first report, as filed"
    assert rerouted.report_id != first.report_id, "a report of the new mitra is its own"
    assert len({first.report_id, other_side.report_id, other_category.report_id}) == 3
    assert sorted(r["text"] for r in db.table("reports").values()) == ["dari mitra", "lain", "mitra baru", "pertama"]
    assert [p["data"]["report_id"] for p in _pushes(ports)] == [
        first.report_id,
        other_side.report_id,
        other_category.report_id,
        rerouted.report_id,
    ], "no push for the answered repeat"


def test_an_account_files_at_most_reports_per_hour_new_reports_but_a_crisis_is_never_refused(
    ports: FakePorts, db: FakeDatabase
) -> None:
    with_config(db, reports_per_hour=REPORTS_PER_HOUR)
    sessions = [f"5e551011-0000-4000-8000-0000000001{n:02d}" for n in range(REPORTS_PER_HOUR + 1)]
    for session_id in sessions:
        add_session(db, session_id, client=dict(db.table("clients")["c1"]), mitra=dict(db.table("mitras")["m1"]))
    for session_id in sessions[:REPORTS_PER_HOUR]:
        reports.report(ports, CLIENT, session_id, ReportCategory.OTHER, "teks")
        db.tick(60)

    with pytest.raises(RateLimited) as refused:
        reports.report(ports, CLIENT, sessions[-1], ReportCategory.OTHER, "satu lagi")

    assert refused.value.retry_after_s == 3600 - 60 * REPORTS_PER_HOUR
    assert reports.report(ports, CLIENT, sessions[0], ReportCategory.OTHER, "ulang").session_id == sessions[0], (
        "a repeat answered the first is not a new report"
    )
    assert reports.report(ports, MITRA, sessions[-1], ReportCategory.OTHER, "mitra").report_id, "per account"
    db.tick(refused.value.retry_after_s)
    assert reports.report(ports, CLIENT, sessions[-1], ReportCategory.OTHER, "satu lagi").session_id == sessions[-1]
    with pytest.raises(RateLimited):
        reports.report(ports, CLIENT, sessions[-1], ReportCategory.HARASSMENT, "dan lagi")
    crisis = reports.report(ports, CLIENT, sessions[-1], ReportCategory.CRISIS, "dia dalam bahaya")
    assert crisis.category == "crisis", "a crisis is never refused by the limit"


def test_the_limit_counts_an_accounts_reports_in_a_rolling_hour() -> None:
    now = datetime(2026, 12, 7, 8, tzinfo=UTC)
    other = ReportCategory.OTHER
    assert report_wait(RecentReports(9, now - timedelta(minutes=30), now), 10, other) is None
    assert report_wait(RecentReports(10, now - timedelta(minutes=30), now), 10, other) == 1800
    almost = now - timedelta(minutes=59, seconds=59, milliseconds=500)
    assert report_wait(RecentReports(10, almost, now), 10, other) == 1
    assert report_wait(RecentReports(50, now, now), 10, ReportCategory.SELF_HARM_RISK) is None


def test_retention_erases_the_words_of_reports_notes_and_feedback(ports: FakePorts, db: FakeDatabase) -> None:
    filed = reports.report(ports, CLIENT, SESSION, ReportCategory.HARASSMENT, "kata-kata rahasia")
    reports.decide(ports, "uid-admin", filed.report_id, ReportStatus.RESOLVED, "catatan admin")
    note = notes.write(ports, MITRA, SESSION, "catatan mitra")
    db.table("sessions")[SESSION].update(status="closed", closed_at=db.now)
    feedback.give(ports, CLIENT, SESSION, rating=5, comment="komentar klien")
    db.tick(timedelta(days=db.config.retention_days + 1).total_seconds())

    privacy.retention_sweep(ports, budget_s=5)

    report = db.table("reports")[filed.report_id]
    assert (report["text"], report["decision_note"], report["category"]) == (None, None, "harassment")
    assert db.table("mitra_notes")[note.note_id]["text"] is None
    assert (db.table("session_feedback")[SESSION]["comment"], db.table("session_feedback")[SESSION]["rating"]) == (
        None,
        5,
    )
    with pytest.raises(Conflict) as erased:
        reports.report(ports, CLIENT, SESSION, ReportCategory.OTHER, "lagi")
    assert erased.value.code == "session_erased"


def test_a_keyed_retry_is_answered_the_first_report_and_files_nothing_more(ports: FakePorts, db: FakeDatabase) -> None:
    body = {"session_id": SESSION, "category": "crisis", "text": "tolong"}
    call = keyed("session_report", body, "k1", caller_uid=CLIENT.uid)

    first = reports.report(ports, CLIENT, SESSION, ReportCategory.CRISIS, "tolong", keyed=call)
    again = reports.report(ports, CLIENT, SESSION, ReportCategory.CRISIS, "tolong", keyed=call)

    assert again == first
    assert len(db.table("reports")) == 1 and len(db.table("safety_flags")) == 1
    assert len(_pushes(ports)) == 1, "one report, one push"
    assert "tolong" not in str(db.table("idempotency_keys")), "the kept answer holds no words"
