"""A call repeated because its reply was lost gets the first answer and changes nothing, with or without an
Idempotency-Key (shared/services/idempotency.py and each use case's own repeat recognition), and the abuse limits
(checkouts per hour, free-trial churn, the free trial bound to a phone or email); on the in-memory unit of work.
The same on the real stack: tests/e2e/test_retries.py."""

from __future__ import annotations

from datetime import timedelta

import pytest

from shared.domain.billing import CheckoutRequest, Purpose
from shared.domain.chat import Participant
from shared.domain.idempotency import KEY_LIFETIME, REPEAT_WINDOW
from shared.domain.presence import Presence
from shared.domain.roles import Role
from shared.errors import Conflict, RateLimited
from shared.services import idempotency, lifecycle, notify, pairing, presence, pricing
from shared.services.billing import checkout
from tests.support.fake_billing import FakeXendit
from tests.support.fake_chat import add_session
from tests.support.fake_idempotency import keyed
from tests.support.fake_lifecycle import add_tier
from tests.support.fake_pairing import add_client, add_mitra
from tests.support.fakes import FakeDatabase, FakePorts, fake_ports, with_config

SESSION = "5e551011-0000-4000-8000-000000000009"
CLIENT = Participant(Role.CLIENT, "c1", "uid-client")
MITRA = Participant(Role.MITRA, "m1", "uid-mitra")


@pytest.fixture
def db() -> FakeDatabase:
    return FakeDatabase()


@pytest.fixture
def ports(db: FakeDatabase) -> FakePorts:
    return fake_ports(db)


def _in_session(db: FakeDatabase) -> None:
    add_session(
        db,
        SESSION,
        client={"id": "c1", "firebase_uid": "uid-client", "display_name": "Sari"},
        mitra={"id": "m1", "firebase_uid": "uid-mitra", "display_name": "Mitra Anisa"},
        minutes=30,
    )
    add_tier(db, "tambah-10", duration_s=600, price=5000)
    add_tier(db, "gratis-5", duration_s=300, price=0)


def _searching(ports: FakePorts, db: FakeDatabase, client_id: str) -> str:
    request_id = pairing.request_pairing(ports, client_id, tier_id=None, free_trial=True).request_id
    pairing.blast(ports, request_id)
    return request_id


def _changes(db: FakeDatabase) -> int:
    """Rows written so far: a repeat adds none."""
    return len(db.outbox)


# -- pairing -----------------------------------------------------------------------------------------------------------


def test_the_winner_asking_again_gets_its_session_and_the_loser_is_still_told_it_lost(
    ports: FakePorts, db: FakeDatabase
) -> None:
    winner, loser = add_mitra(db), add_mitra(db)
    request_id = _searching(ports, db, add_client(db))
    won = pairing.accept(ports, winner, request_id)
    written = _changes(db)
    db.table("sessions")[won.session_id]["ends_at"] += timedelta(minutes=10)  # extended meanwhile
    db.tick(30)

    assert pairing.accept(ports, winner, request_id) == won, "the first answer, ends_at as it was then"
    with pytest.raises(Conflict) as lost:
        pairing.accept(ports, loser, request_id)
    assert lost.value.code == "already_taken"
    assert _changes(db) == written
    assert len(db.table("sessions")) == 1


def test_a_keyed_accept_replays_and_refuses_the_key_for_another_request(ports: FakePorts, db: FakeDatabase) -> None:
    mitra = add_mitra(db)
    first_request = _searching(ports, db, add_client(db))
    other_request = _searching(ports, db, add_client(db))
    call = keyed("pairing_accept", {"request_id": first_request}, "tap-1")

    won = pairing.accept(ports, mitra, first_request, keyed=call)

    assert pairing.accept(ports, mitra, first_request, keyed=call) == won
    with pytest.raises(Conflict) as reused:
        pairing.accept(
            ports, mitra, other_request, keyed=keyed("pairing_accept", {"request_id": other_request}, "tap-1")
        )
    assert reused.value.code == "idempotency_key_reused"
    assert db.table("pairing_requests")[other_request]["status"] == "searching"


def test_cancel_and_decline_asked_again_answer_the_same(ports: FakePorts, db: FakeDatabase) -> None:
    mitra, client = add_mitra(db), add_client(db)
    request_id = _searching(ports, db, client)

    declined = pairing.decline(ports, mitra, request_id)
    assert pairing.decline(ports, mitra, request_id) == declined
    cancelled = pairing.cancel(ports, client, request_id)
    written = _changes(db)
    assert pairing.cancel(ports, client, request_id) == cancelled
    assert (cancelled.request_id, cancelled.status) == (request_id, "cancelled")
    assert _changes(db) == written


def test_a_keyed_pairing_request_replays_its_first_answer_and_refuses_another_body(
    ports: FakePorts, db: FakeDatabase
) -> None:
    add_mitra(db)
    client = add_client(db)
    call = keyed("pairing_request", {"tier_id": None, "free_trial": True}, "mulai-1", caller_uid=client)
    first = pairing.request_pairing(ports, client, tier_id=None, free_trial=True, keyed=call)
    pairing.cancel(ports, client, first.request_id)

    assert pairing.request_pairing(ports, client, tier_id=None, free_trial=True, keyed=call) == first, (
        "the first answer (searching), not the request as it stands now"
    )
    changed = keyed("pairing_request", {"tier_id": "sesi-30", "free_trial": False}, "mulai-1", caller_uid=client)
    with pytest.raises(Conflict) as reused:
        pairing.request_pairing(ports, client, tier_id="sesi-30", free_trial=False, keyed=changed)
    assert reused.value.code == "idempotency_key_reused"
    assert len(db.table("pairing_requests")) == 1


def test_a_key_lives_its_lifetime_then_is_swept(ports: FakePorts, db: FakeDatabase) -> None:
    mitra = add_mitra(db)
    request_id = _searching(ports, db, add_client(db))
    pairing.decline(ports, mitra, request_id, keyed=keyed("pairing_decline", {"request_id": request_id}, "k"))
    db.tick(KEY_LIFETIME.total_seconds() - 1)
    assert idempotency.sweep(ports) == 0
    db.tick(1)

    assert idempotency.sweep(ports) == 1
    assert db.table("idempotency_keys") == {}


# -- the session's life ------------------------------------------------------------------------------------------------


def test_an_early_end_asked_again_answers_closing_even_once_closed_or_switched_off(
    ports: FakePorts, db: FakeDatabase
) -> None:
    _in_session(db)
    with_config(db, goodbye_window_s=60)
    ended = lifecycle.end_early(ports, CLIENT, session_id=SESSION)
    written = _changes(db)
    with_config(db, early_end_client=False)
    db.tick(61)
    lifecycle.close(ports, SESSION)
    written = _changes(db)

    assert lifecycle.end_early(ports, CLIENT, session_id=SESSION) == ended
    assert _changes(db) == written
    with pytest.raises(Conflict) as other_side:
        with_config(db, early_end_mitra=True)
        lifecycle.end_early(ports, MITRA, session_id=SESSION)
    assert other_side.value.code == "session_not_active", "the mitra did not end it"


def test_a_goodbye_sent_again_is_the_note_stored_and_a_keyed_one_refuses_another_text(
    ports: FakePorts, db: FakeDatabase
) -> None:
    _in_session(db)
    lifecycle.end_early(ports, CLIENT, session_id=SESSION)
    call = keyed("session_goodbye", {"session_id": SESSION, "text": "Terima kasih"}, "bye-1")
    sent = lifecycle.goodbye(ports, CLIENT, session_id=SESSION, text="Terima kasih", keyed=call)

    assert lifecycle.goodbye(ports, CLIENT, session_id=SESSION, text="Terima kasih", keyed=call) == sent
    assert lifecycle.goodbye(ports, CLIENT, session_id=SESSION, text="Terima kasih") == sent
    other = keyed("session_goodbye", {"session_id": SESSION, "text": "Dah"}, "bye-1")
    with pytest.raises(Conflict) as reused:
        lifecycle.goodbye(ports, CLIENT, session_id=SESSION, text="Dah", keyed=other)
    assert reused.value.code == "idempotency_key_reused"
    assert len(db.table("chat_messages")) == 1


def test_an_extension_request_asked_again_is_the_pending_one_whatever_the_mitra_did(
    ports: FakePorts, db: FakeDatabase
) -> None:
    _in_session(db)
    requested = lifecycle.request_extension(ports, CLIENT, session_id=SESSION, tier_id="tambah-10")
    accepted = lifecycle.respond_extension(ports, mitra_id="m1", extension_id=requested.extension_id, accept=True)

    assert lifecycle.request_extension(ports, CLIENT, session_id=SESSION, tier_id="tambah-10") == requested
    assert requested.status == "requested"
    assert accepted.status == "accepted"
    assert len(db.table("session_extensions")) == 1


def test_an_extension_answer_given_again_is_answered_as_first_and_the_other_answer_is_refused(
    ports: FakePorts, db: FakeDatabase
) -> None:
    _in_session(db)
    free = lifecycle.request_extension(ports, CLIENT, session_id=SESSION, tier_id="gratis-5")
    applied = lifecycle.respond_extension(ports, mitra_id="m1", extension_id=free.extension_id, accept=True)
    version = db.table("sessions")[SESSION]["version"]

    assert applied.status == "applied"
    assert lifecycle.respond_extension(ports, mitra_id="m1", extension_id=free.extension_id, accept=True) == applied
    assert db.table("sessions")[SESSION]["version"] == version, "the time was added once"
    with pytest.raises(Conflict) as other:
        lifecycle.respond_extension(ports, mitra_id="m1", extension_id=free.extension_id, accept=False)
    assert other.value.code == "extension_closed"

    paid = lifecycle.request_extension(ports, CLIENT, session_id=SESSION, tier_id="tambah-10")
    rejected = lifecycle.respond_extension(ports, mitra_id="m1", extension_id=paid.extension_id, accept=False)
    assert lifecycle.respond_extension(ports, mitra_id="m1", extension_id=paid.extension_id, accept=False) == rejected


# -- presence and devices ----------------------------------------------------------------------------------------------


def test_going_online_again_soon_answers_changed_as_the_call_it_repeats(ports: FakePorts, db: FakeDatabase) -> None:
    mitra = add_mitra(db, online=False)
    first = presence.set_status(ports, mitra, Presence.ONLINE)
    db.tick(10)
    repeat = presence.set_status(ports, mitra, Presence.ONLINE)
    db.tick(REPEAT_WINDOW.total_seconds())
    later = presence.set_status(ports, mitra, Presence.ONLINE)

    assert (first.changed, repeat, later.changed) == (True, first, False)
    assert len(db.table("mitra_status_logs")) == 1, "only the transition is logged"


def test_a_keyed_status_change_is_answered_exactly_whenever_it_is_repeated(ports: FakePorts, db: FakeDatabase) -> None:
    mitra = add_mitra(db, online=False)
    call = keyed("mitra_set_status", {"status": "online"}, "online-1")
    first = presence.set_status(ports, mitra, Presence.ONLINE, keyed=call)
    db.tick(REPEAT_WINDOW.total_seconds() * 2)

    assert presence.set_status(ports, mitra, Presence.ONLINE, keyed=call) == first
    with pytest.raises(Conflict):
        presence.set_status(
            ports, mitra, Presence.OFFLINE, keyed=keyed("mitra_set_status", {"status": "offline"}, "online-1")
        )


def test_registering_a_device_again_answers_the_same(ports: FakePorts, db: FakeDatabase) -> None:
    token = "fcm-token-0123456789abcdef"
    call = keyed("devices_register", {"token": token, "platform": "android"}, "dev-1")
    first = notify.register_device(ports, "uid-a", token, "android", keyed=call)

    assert notify.register_device(ports, "uid-a", token, "android", keyed=call) == first
    assert notify.register_device(ports, "uid-a", token, "android") == first
    with pytest.raises(Conflict):
        other = keyed("devices_register", {"token": token, "platform": "ios"}, "dev-1")
        notify.register_device(ports, "uid-a", token, "ios", keyed=other)


# -- abuse limits ------------------------------------------------------------------------------------------------------


def test_free_trial_searches_cancelled_too_often_are_limited_for_a_day(ports: FakePorts, db: FakeDatabase) -> None:
    add_mitra(db)
    client = add_client(db)
    with_config(db, free_trial_cancels_per_day=2)
    for _ in range(2):
        pairing.cancel(ports, client, _searching(ports, db, client))
        db.tick(60)

    with pytest.raises(RateLimited) as limited:
        pairing.request_pairing(ports, client, tier_id=None, free_trial=True)
    assert limited.value.retry_after_s == 24 * 3600 - 120
    db.tick(24 * 3600 - 120)
    assert pairing.request_pairing(ports, client, tier_id=None, free_trial=True).request_id


def test_a_new_account_on_a_phone_or_email_that_had_the_trial_gets_none(ports: FakePorts, db: FakeDatabase) -> None:
    mitra = add_mitra(db)
    first = add_client(db, phone="+6281234567890", email="Sari@Example.com")
    pairing.accept(ports, mitra, _searching(ports, db, first))
    same_phone = add_client(db, phone="+6281234567890")
    same_email = add_client(db, email="sari@example.com")
    someone_else = add_client(db, phone="+6281234567891")

    for client in (same_phone, same_email):
        with pytest.raises(Conflict) as refused:
            pairing.request_pairing(ports, client, tier_id=None, free_trial=True)
        assert refused.value.code == "free_trial_unavailable"
        assert pricing.quote(ports, client).free_trial_available is False
    assert pricing.quote(ports, someone_else).free_trial_available is True


def test_checkouts_per_hour_are_limited_and_a_keyed_retry_is_not_counted(ports: FakePorts, db: FakeDatabase) -> None:
    _in_session(db)
    add_tier(db, "sesi-30", duration_s=1800, price=35_000)
    with_config(db, checkouts_per_hour=2)
    xendit = FakeXendit(db)
    buy = CheckoutRequest(tier_id="sesi-30", purpose=Purpose.SESSION, extension_id=None)
    first = checkout.open_invoice(ports, xendit, "c1", buy, idempotency_key="pay-1")
    db.tick(600)
    checkout.open_invoice(ports, xendit, "c1", buy, idempotency_key="pay-2")

    assert checkout.open_invoice(ports, xendit, "c1", buy, idempotency_key="pay-1") == first
    with pytest.raises(RateLimited) as limited:
        checkout.open_invoice(ports, xendit, "c1", buy, idempotency_key="pay-3")
    assert limited.value.retry_after_s == 3600 - 600
    db.tick(3600 - 600)
    checkout.open_invoice(ports, xendit, "c1", buy, idempotency_key="pay-3")
