"""Push notifications as stories on the in-memory unit of work: devices registered to the last user, a notification
sent once per person to each of their devices, dead tokens pruned, transient failures retried for those only. FCM's
own answers are proven by tests/integration/test_fcm_sink.py, delivery end to end by tests/e2e/test_safety.py."""

from __future__ import annotations

import json

import pytest

from functions.notify import NotifyEvent
from shared.domain.notify import Notification, PushResult, push
from shared.errors import Unavailable
from shared.services import notify, pairing
from tests.support.fake_notify import FakeFcm
from tests.support.fake_pairing import add_client, add_mitra, uid
from tests.support.fakes import FakeDatabase, FakePorts, fake_ports

TOKEN_A, TOKEN_B, TOKEN_C = "token-phone-of-sari-0001", "token-tablet-of-sari-002", "token-phone-of-rina-0003"


@pytest.fixture
def db() -> FakeDatabase:
    return FakeDatabase()


@pytest.fixture
def ports(db: FakeDatabase) -> FakePorts:
    ports = fake_ports(db)
    notify.register_device(ports, "uid-sari", TOKEN_A, "android")
    notify.register_device(ports, "uid-sari", TOKEN_B, "ios")
    notify.register_device(ports, "uid-rina", TOKEN_C, "android")
    return ports


def _notification(key: str = "message:m1", recipients: tuple[str, ...] = ("uid-sari", "uid-rina")) -> Notification:
    return Notification(key, list(recipients), {"type": "message", "message_id": "m1"}, "Halo Bestie", "halo")


def test_a_notification_goes_once_to_every_device_of_each_recipient(ports: FakePorts) -> None:
    fcm = FakeFcm()

    sent = notify.deliver(ports, fcm, _notification())
    again = notify.deliver(ports, fcm, _notification())

    assert (sent, again) == (3, 0), "redelivered: nobody is sent it twice"
    assert {m.token for m in fcm.sent} == {TOKEN_A, TOKEN_B, TOKEN_C}
    assert fcm.sent[0].notification == {"title": "Halo Bestie", "body": "halo"}
    assert fcm.sent[0].data == {"type": "message", "message_id": "m1"}


def test_a_token_belongs_to_the_last_user_who_registered_it(ports: FakePorts) -> None:
    fcm = FakeFcm()
    notify.register_device(ports, "uid-rina", TOKEN_A, "android")  # the phone was sold

    notify.deliver(ports, fcm, _notification(recipients=("uid-sari",)))

    assert [m.token for m in fcm.sent] == [TOKEN_B]


def test_dead_tokens_are_pruned(ports: FakePorts, db: FakeDatabase) -> None:
    fcm = FakeFcm(answers={TOKEN_A: PushResult.UNREGISTERED})

    assert notify.deliver(ports, fcm, _notification()) == 2

    assert set(db.table("devices")) == {TOKEN_B, TOKEN_C}


def test_a_recipient_no_device_reached_is_released_for_the_redelivery(ports: FakePorts, db: FakeDatabase) -> None:
    fcm = FakeFcm(answers={TOKEN_C: PushResult.FAILED})

    with pytest.raises(Unavailable):
        notify.deliver(ports, fcm, _notification())
    fcm.answers = {}
    assert notify.deliver(ports, fcm, _notification()) == 1, "the redelivery tries only the one not reached"

    assert [m.token for m in fcm.sent].count(TOKEN_C) == 1
    assert set(db.table("push_log")) == {("message:m1", "uid-sari"), ("message:m1", "uid-rina")}


def test_a_person_with_one_device_reached_is_not_tried_again(ports: FakePorts) -> None:
    fcm = FakeFcm(answers={TOKEN_B: PushResult.FAILED})

    assert notify.deliver(ports, fcm, _notification(recipients=("uid-sari",))) == 1
    assert notify.deliver(ports, fcm, _notification(recipients=("uid-sari",))) == 0


def test_a_data_only_notification_shows_nothing_on_the_lock_screen(ports: FakePorts) -> None:
    fcm = FakeFcm()

    notify.deliver(ports, fcm, Notification("typing:s1", ["uid-rina"], {"type": "typing"}))

    assert [m.notification for m in fcm.sent] == [None]


def test_a_keyed_notification_is_written_in_each_recipients_language(ports: FakePorts, db: FakeDatabase) -> None:
    db.table("clients")["c1"] = {"id": "c1", "firebase_uid": "uid-sari", "locale": "en"}
    db.table("mitras")["m1"] = {"id": "m1", "firebase_uid": "uid-rina", "locale": "id"}
    notify.register_device(ports, "uid-admin", "token-admin-console-04", "web")
    fcm = FakeFcm()
    event = push(
        dedup_key="matched:r1",
        recipients=["uid-sari", "uid-rina", "uid-admin"],
        data={"type": "matched", "request_id": "r1", "session_id": "s1"},
        text_key="push.matched",
        params={"name": "Anisa"},
    )
    assert (event.data["title"], event.data["body"]) == ("Bestie kamu sudah siap", "Anisa siap mendengarkan")

    notify.deliver(ports, fcm, Notification(**NotifyEvent.model_validate(event.data).model_dump()))  # as on_notify

    shown = {message.token: message.notification for message in fcm.sent}
    assert shown[TOKEN_A] == shown[TOKEN_B] == {"title": "Your Bestie is ready", "body": "Anisa is ready to listen"}
    assert shown[TOKEN_C] == {"title": "Bestie kamu sudah siap", "body": "Anisa siap mendengarkan"}
    assert shown["token-admin-console-04"] == shown[TOKEN_C], "an admin (no locale) reads the default"


def test_a_keyed_notification_whose_words_were_erased_is_still_sent_without_them(ports: FakePorts) -> None:
    fcm = FakeFcm()
    erased = Notification(
        "message:m9", ["uid-rina"], {"type": "message", "message_id": "m9"}, "Halo Bestie", None, "push.message_preview"
    )

    assert notify.deliver(ports, fcm, erased) == 1

    assert fcm.sent[0].notification == {"title": "Halo Bestie", "body": ""}


# -- a pairing offer's push --------------------------------------------------------------------------------------------


def _offer_push(ports: FakePorts, request_id: str) -> Notification:
    """The offer's push the blast asked for, as on_notify reads it from the `notify` topic."""
    (payload,) = [
        json.loads(data)
        for topic, data, _ in ports.publisher.published
        if topic == "notify" and json.loads(data)["data"] == {"type": "pairing_offer", "request_id": request_id}
    ]
    return Notification(**NotifyEvent.model_validate(payload).model_dump())


def _offered_mitras_with_phones(ports: FakePorts, db: FakeDatabase, count: int) -> tuple[str, list[str], list[str]]:
    """A request blasted to `count` online mitras, each with a phone: (request, mitra ids, their tokens)."""
    mitras = [add_mitra(db) for _ in range(count)]
    tokens = [f"token-mitra-phone-{n:04d}" for n in range(count)]
    for mitra_id, token in zip(mitras, tokens, strict=True):
        notify.register_device(ports, uid(db, "mitras", mitra_id), token, "android")
    request_id = pairing.request_pairing(ports, add_client(db), tier_id=None, free_trial=True).request_id
    assert pairing.blast(ports, request_id) == count
    return request_id, mitras, tokens


def test_an_offer_s_push_goes_to_the_mitras_whose_offer_is_still_open(ports: FakePorts, db: FakeDatabase) -> None:
    request_id, (declined, *_), tokens = _offered_mitras_with_phones(ports, db, 3)
    pairing.decline(ports, declined, request_id)
    fcm = FakeFcm()

    assert notify.deliver(ports, fcm, _offer_push(ports, request_id)) == 2

    assert sorted(message.token for message in fcm.sent) == tokens[1:], "not the mitra who declined before it went"


@pytest.mark.parametrize("ended", ["accepted by another mitra", "cancelled by the client"])
def test_an_offer_s_push_delivered_after_the_request_was_taken_or_cancelled_rings_nobody(
    ports: FakePorts, db: FakeDatabase, ended: str
) -> None:
    request_id, mitras, _ = _offered_mitras_with_phones(ports, db, 2)
    if ended == "accepted by another mitra":
        pairing.accept(ports, mitras[0], request_id)
    else:
        client_id = db.table("pairing_requests")[request_id]["client_id"]
        pairing.cancel(ports, client_id, request_id)
    fcm = FakeFcm()
    late = _offer_push(ports, request_id)

    assert notify.deliver(ports, fcm, late) == 0

    assert fcm.sent == []
    assert db.table("push_log") == {}, "nobody is marked as reached by a push that was never sent"


def test_an_open_offer_s_push_goes_once_however_often_it_is_delivered(ports: FakePorts, db: FakeDatabase) -> None:
    request_id, _, tokens = _offered_mitras_with_phones(ports, db, 1)
    fcm = FakeFcm()

    assert notify.deliver(ports, fcm, _offer_push(ports, request_id)) == 1
    assert notify.deliver(ports, fcm, _offer_push(ports, request_id)) == 0, "the same offer's push goes once"
    assert [message.token for message in fcm.sent] == tokens
