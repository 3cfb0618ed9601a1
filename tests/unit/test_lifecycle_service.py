"""The session lifecycle's use cases as stories, on the in-memory unit of work (tests/support/fakes.py): the timer,
the warning, closing with goodbyes, early end and extensions. The same rules on PostgreSQL, with real Cloud Tasks,
are proven by tests/e2e/test_lifecycle.py and tests/integration/test_redelivery.py."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from shared.domain.chat import Participant
from shared.domain.events import DocumentWrite, TaskRequest, ts
from shared.domain.roles import Role
from shared.domain.session import ExtensionStatus, close_task_id, expire_task_id, warning_task_id
from shared.errors import Conflict, Forbidden, InvalidRequest, NotFound, Unavailable
from shared.services import lifecycle, projector
from tests.support.fake_chat import add_session
from tests.support.fake_lifecycle import add_tier
from tests.support.fakes import FakeDatabase, FakePorts, fake_ports, with_config

SESSION = "5e551011-0000-4000-8000-000000000002"
CLIENT = Participant(Role.CLIENT, "c1", "uid-client")
MITRA = Participant(Role.MITRA, "m1", "uid-mitra")


@pytest.fixture
def db() -> FakeDatabase:
    database = FakeDatabase()
    add_session(
        database,
        SESSION,
        client={"id": "c1", "firebase_uid": "uid-client", "display_name": "Sari"},
        mitra={"id": "m1", "firebase_uid": "uid-mitra", "display_name": "Mitra Anisa"},
        minutes=30,
    )
    with_config(database, goodbye_window_s=60, session_warning_s=300, extension_timeout_s=60)
    add_tier(database, "tambah-10", duration_s=600, price=5000)
    add_tier(database, "gratis-5", duration_s=300, price=0)
    return database


@pytest.fixture
def ports(db: FakeDatabase) -> FakePorts:
    return fake_ports(db)


def _session(db: FakeDatabase) -> dict[str, object]:
    return db.table("sessions")[SESSION]


def _pushes(ports: FakePorts) -> list[dict[str, object]]:
    return [json.loads(data) for topic, data, _ in ports.publisher.published if topic == "notify"]


def _session_writes(ports: FakePorts) -> list[dict[str, object]]:
    return [
        dict(e.data)
        for e in ports.documents.written
        if isinstance(e, DocumentWrite) and e.paths == (f"sessions/{SESSION}",)
    ]


def _to_the_end(db: FakeDatabase) -> None:
    db.tick(30 * 60)


# -- the timer ---------------------------------------------------------------------------------------------------------


def test_the_warning_is_a_system_message_and_a_push_once_per_version(ports: FakePorts, db: FakeDatabase) -> None:
    db.tick(25 * 60)

    assert lifecycle.warn(ports, SESSION, 1) == "warned"
    assert lifecycle.warn(ports, SESSION, 1) == "already_warned"
    assert lifecycle.warn(ports, SESSION, 2) == "stale", "a version that never was"

    (message,) = db.table("chat_messages").values()
    assert (message["kind"], message["sender_role"], message["text"]) == (
        "system",
        "system",
        "Sesi tinggal 5 menit lagi.",
    )
    assert _session_writes(ports) == [{"session_id": SESSION, "warning": {"version": 1, "at": ts(db.now)}}]
    (push,) = _pushes(ports)
    assert (push["dedup_key"], push["recipients"]) == (f"warning:{SESSION}:1", ["uid-client"])
    assert db.pending() == [], "delivered after the commit"


def test_the_expiry_opens_the_goodbye_window_and_sets_the_close_timer(ports: FakePorts, db: FakeDatabase) -> None:
    db.tick(30 * 60 - 5)
    with pytest.raises(Unavailable):
        lifecycle.expire(ports, SESSION, 1)  # fired early: Cloud Tasks retries it
    assert _session(db)["status"] == "active"

    db.tick(5)
    assert lifecycle.expire(ports, SESSION, 1) == "closing"
    assert lifecycle.expire(ports, SESSION, 1) == "stale"

    assert (_session(db)["status"], _session(db)["goodbye_until"]) == ("closing", db.now + timedelta(seconds=60))
    closures = [(c["reason"], c["closed_by"]) for c in db.table("session_closures").values()]
    assert closures == [("expired", "system")]
    (closing,) = _session_writes(ports)
    assert (closing["status"], closing["close_reason"]) == ("closing", "expired")
    (push,) = _pushes(ports)
    assert push["recipients"] == ["uid-client", "uid-mitra"]
    timer = ports.tasks.created[close_task_id(SESSION)]
    assert (timer.handler, timer.at) == ("task_session_close", db.now + timedelta(seconds=60))


def test_an_outage_of_cloud_tasks_delays_a_timer_and_refuses_no_change(ports: FakePorts, db: FakeDatabase) -> None:
    _to_the_end(db)
    ports.tasks.refuse = True

    assert lifecycle.expire(ports, SESSION, 1) == "closing", "the change is committed"
    assert _session(db)["status"] == "closing"
    pending_timers = [row.event for row in db.pending() if isinstance(row.event, TaskRequest)]
    assert [timer.task_id for timer in pending_timers] == [close_task_id(SESSION)]

    ports.tasks.refuse = False
    assert projector.project(ports).failed == 0
    assert close_task_id(SESSION) in ports.tasks.created


def test_the_session_closes_only_once_the_goodbye_window_is_over(ports: FakePorts, db: FakeDatabase) -> None:
    assert lifecycle.close(ports, SESSION) == "stale", "an active session is not closed by the goodbye timer"
    _to_the_end(db)
    lifecycle.expire(ports, SESSION, 1)

    db.tick(30)
    with pytest.raises(Unavailable):
        lifecycle.close(ports, SESSION)
    db.tick(30)
    assert lifecycle.close(ports, SESSION) == "closed"
    assert lifecycle.close(ports, SESSION) == "stale"
    assert lifecycle.expire(ports, SESSION, 1) == "stale"

    assert _session_writes(ports)[-1] == {"session_id": SESSION, "status": "closed", "closed_at": ts(db.now)}


# -- participants ------------------------------------------------------------------------------------------------------


def test_early_end_follows_the_control_center_per_role(ports: FakePorts, db: FakeDatabase) -> None:
    with pytest.raises(Forbidden) as refused:
        lifecycle.end_early(ports, MITRA, session_id=SESSION)
    assert refused.value.code == "early_end_disabled"
    with pytest.raises(NotFound):
        lifecycle.end_early(ports, Participant(Role.CLIENT, "c2", "uid-other"), session_id=SESSION)

    first = lifecycle.end_early(ports, CLIENT, session_id=SESSION)
    assert (first.session_id, first.status) == (SESSION, "closing")
    assert lifecycle.end_early(ports, CLIENT, session_id=SESSION) == first, "a repeat is answered as the first"
    closures = [(c["reason"], c["closed_by"]) for c in db.table("session_closures").values()]
    assert closures == [("ended_by_client", "uid-client")]


def test_goodbye_notes_once_per_side_inside_the_window_only(ports: FakePorts, db: FakeDatabase) -> None:
    with pytest.raises(Conflict) as early:
        lifecycle.goodbye(ports, CLIENT, session_id=SESSION, text="dah")
    assert early.value.code == "goodbye_window_closed"
    lifecycle.end_early(ports, CLIENT, session_id=SESSION)

    first = lifecycle.goodbye(ports, CLIENT, session_id=SESSION, text="Terima kasih")
    document = ports.documents.written[-1]
    with pytest.raises(Conflict) as again:
        lifecycle.goodbye(ports, CLIENT, session_id=SESSION, text="sekali lagi")
    db.tick(61)
    repeated = lifecycle.goodbye(ports, CLIENT, session_id=SESSION, text="Terima kasih")
    with pytest.raises(Conflict) as late:
        lifecycle.goodbye(ports, MITRA, session_id=SESSION, text="terlambat")

    assert first.seq == 1
    assert repeated == first, "the same note again (its reply lost) is answered with the note stored"
    assert again.value.code == "goodbye_already_sent"
    assert late.value.code == "goodbye_window_closed"
    notes = sorted((m["sender_role"], m["kind"]) for m in db.table("chat_messages").values())
    assert notes == [("client", "goodbye")]
    assert document.paths == (f"sessions/{SESSION}/messages/{first.message_id}",)


# -- extensions --------------------------------------------------------------------------------------------------------


def test_an_extension_request_asks_the_mitra_and_expires_unanswered(ports: FakePorts, db: FakeDatabase) -> None:
    with pytest.raises(InvalidRequest):
        lifecycle.request_extension(ports, CLIENT, session_id=SESSION, tier_id="tidak-ada")
    requested = lifecycle.request_extension(ports, CLIENT, session_id=SESSION, tier_id="tambah-10")
    add_tier(db, "tambah-20", duration_s=1200, price=9000)
    with pytest.raises(Conflict) as pending:
        lifecycle.request_extension(ports, CLIENT, session_id=SESSION, tier_id="tambah-20")

    assert pending.value.code == "extension_pending"
    assert requested.respond_by == db.now + timedelta(seconds=60)
    extension = _session_writes(ports)[0]["extension"]
    assert extension == {
        "extension_id": requested.extension_id,
        "status": "requested",
        "minutes": 10,
        "duration_s": 600,
        "price": 5000,
        "respond_by": ts(requested.respond_by),
    }
    assert _pushes(ports)[0]["recipients"] == ["uid-mitra"]
    timer = ports.tasks.created[f"extension-timeout-{requested.extension_id}"]
    assert (timer.handler, timer.at) == ("task_extension_timeout", requested.respond_by)

    with pytest.raises(Unavailable):
        lifecycle.expire_extension(ports, requested.extension_id)
    db.tick(60)
    assert lifecycle.expire_extension(ports, requested.extension_id) == "expired"
    assert lifecycle.expire_extension(ports, requested.extension_id) == "stale"
    with pytest.raises(Conflict) as late:
        lifecycle.respond_extension(ports, mitra_id="m1", extension_id=requested.extension_id, accept=True)
    assert late.value.code == "extension_closed"


def test_only_the_session_s_mitra_answers_and_a_rejection_frees_the_slot(ports: FakePorts) -> None:
    requested = lifecycle.request_extension(ports, CLIENT, session_id=SESSION, tier_id="tambah-10")
    with pytest.raises(NotFound):
        lifecycle.respond_extension(ports, mitra_id="m2", extension_id=requested.extension_id, accept=True)

    answer = lifecycle.respond_extension(ports, mitra_id="m1", extension_id=requested.extension_id, accept=False)

    assert answer.status == ExtensionStatus.REJECTED
    assert lifecycle.request_extension(ports, CLIENT, session_id=SESSION, tier_id="tambah-10").status == "requested"


def test_a_free_extension_applies_at_once_with_a_new_timer(ports: FakePorts, db: FakeDatabase) -> None:
    first_end = _session(db)["ends_at"]
    requested = lifecycle.request_extension(ports, CLIENT, session_id=SESSION, tier_id="gratis-5")

    answer = lifecycle.respond_extension(ports, mitra_id="m1", extension_id=requested.extension_id, accept=True)

    assert answer.status == ExtensionStatus.APPLIED
    assert (_session(db)["ends_at"], _session(db)["version"]) == (first_end + timedelta(minutes=5), 2)
    assert {expire_task_id(SESSION, 2), warning_task_id(SESSION, 2)} <= set(ports.tasks.created)
    assert ports.tasks.created[expire_task_id(SESSION, 2)].at == first_end + timedelta(minutes=5)
    db.tick(30 * 60)
    assert lifecycle.expire(ports, SESSION, 1) == "stale", "the old version's timer is harmless"
    db.tick(5 * 60)
    assert lifecycle.expire(ports, SESSION, 2) == "closing"


def test_a_paid_extension_is_payable_once_accepted_and_applied_when_paid(ports: FakePorts, db: FakeDatabase) -> None:
    requested = lifecycle.request_extension(ports, CLIENT, session_id=SESSION, tier_id="tambah-10")
    extension_id = requested.extension_id
    with ports.uow() as uow, pytest.raises(Conflict) as unanswered:
        lifecycle.extension_payable(uow, extension_id, "c1", "tambah-10")
    assert unanswered.value.code == "extension_closed"

    answer = lifecycle.respond_extension(ports, mitra_id="m1", extension_id=extension_id, accept=True)
    assert answer.status == ExtensionStatus.ACCEPTED
    with ports.uow() as uow:
        with pytest.raises(Conflict) as stranger:
            lifecycle.extension_payable(uow, extension_id, "c2", "tambah-10")
        with pytest.raises(InvalidRequest) as other_tier:
            lifecycle.extension_payable(uow, extension_id, "c1", "gratis-5")
        lifecycle.extension_payable(uow, extension_id, "c1", "tambah-10")
    assert stranger.value.code == "extension_not_found"
    assert other_tier.value.details["fields"] == [{"field": "tier_id", "problem": "must be tambah-10"}]

    with ports.uow() as uow:
        assert lifecycle.apply_paid_extension(uow, extension_id) is True
        committed = uow.commit()
    projector.deliver(ports, committed)

    assert (_session(db)["version"], db.table("session_extensions")[extension_id]["status"]) == (2, "applied")
    assert _session_writes(ports)[-1]["extension"] == {"extension_id": extension_id, "status": "applied"}
    with ports.uow() as uow:
        assert lifecycle.apply_paid_extension(uow, extension_id) is False, "paid twice, applied once"


def test_a_session_that_ends_voids_its_pending_extension(ports: FakePorts, db: FakeDatabase) -> None:
    requested = lifecycle.request_extension(ports, CLIENT, session_id=SESSION, tier_id="tambah-10")
    lifecycle.respond_extension(ports, mitra_id="m1", extension_id=requested.extension_id, accept=True)

    _to_the_end(db)
    lifecycle.expire(ports, SESSION, 1)

    assert _session_writes(ports)[-1]["extension"] == {"extension_id": requested.extension_id, "status": "void"}
    with ports.uow() as uow, pytest.raises(Conflict) as void:
        lifecycle.extension_payable(uow, requested.extension_id, "c1", "tambah-10")
    assert void.value.code == "extension_closed"
    with ports.uow() as uow:
        assert lifecycle.apply_paid_extension(uow, requested.extension_id) is False
    assert _session(db)["version"] == 1


def test_extensions_are_for_an_active_session(ports: FakePorts) -> None:
    lifecycle.end_early(ports, CLIENT, session_id=SESSION)

    with pytest.raises(Conflict) as closing:
        lifecycle.request_extension(ports, CLIENT, session_id=SESSION, tier_id="tambah-10")
    assert closing.value.code == "session_not_active"
