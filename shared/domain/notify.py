"""Push notifications: the event that asks for one (sent by `on_notify`), and the rules of delivering it to people's
devices through FCM.

A notification goes once per (dedup key, recipient), to every device the recipient registered; a device token
belongs to the last user who registered it. Both are enforced by the notify repository
(shared/adapters/postgres/notify.py: `claim_pushes`, `register_device`).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from shared.domain import texts
from shared.domain.documents import NOTIFY_TOPIC
from shared.domain.events import TopicMessage
from shared.domain.pushes import push_data


@dataclass(frozen=True)
class Notification:
    """`data` is what the app acts on; `title` and `body` are what a lock screen shows (data-only without a
    title). With a `text_key`, the title and body are the texts `<text_key>.title` and `<text_key>.body` filled from
    `params`, written in each recipient's language when sent (`message_to`); `title` and `body` are then the
    default language's, for a sender that predates languages."""

    dedup_key: str
    recipients: list[str]
    data: dict[str, str]
    title: str | None = None
    body: str | None = None
    text_key: str | None = None
    params: dict[str, str] = field(default_factory=dict)


def push(
    *,
    dedup_key: str,
    recipients: Sequence[str],
    data: Mapping[str, str],
    title: str | None = None,
    body: str | None = None,
    text_key: str | None = None,
    params: Mapping[str, object] | None = None,
) -> TopicMessage:
    """The event asking for a notification: sent once per (dedup_key, recipient), to every device the recipient
    registered. Its lock-screen texts are `text_key`'s (shared/domain/texts: `<text_key>.title`, `.body`), written in
    each recipient's language when sent; `title`/`body` without a key are sent as they are."""
    message: dict[str, object] = {
        "dedup_key": dedup_key,
        "recipients": list(recipients),
        "data": push_data(data),  # through its model (shared/domain/pushes.py)
        "title": title,
        "body": body,
    }
    if text_key is not None:
        filled = {name: str(value) for name, value in (params or {}).items()}
        message.update(
            title=texts.text(f"{text_key}.title", texts.DEFAULT_LOCALE, **filled),
            body=texts.text(f"{text_key}.body", texts.DEFAULT_LOCALE, **filled),
            text_key=text_key,
            params=filled,
        )
    return TopicMessage(NOTIFY_TOPIC, message)


def offered_request(notification: Notification) -> str | None:
    """The request a `pairing_offer` push invites its recipients to take, else None. Such a push is worth sending
    only to the mitras whose offer is still open when it is sent: delivered late (Pub/Sub redelivers after an FCM
    outage, minutes on), "someone wants to talk" would otherwise ring for a request already taken, cancelled or
    ended, or for an offer the mitra has declined or lost."""
    if notification.data.get("type") != "pairing_offer":
        return None
    return notification.data.get("request_id")


@dataclass(frozen=True)
class Registered:
    """A device registered: registering it again, by anyone, answers the same (the token is the last registrant's)."""

    registered: bool = True


class PushResult(enum.Enum):
    SENT = "sent"
    UNREGISTERED = "unregistered"  # the app is gone from that device: delete the token
    FAILED = "failed"  # FCM is unavailable or refused the message; the token itself may be fine


@dataclass(frozen=True)
class PushMessage:
    """One notification to one device, as FCM sends it."""

    token: str
    data: dict[str, str]
    notification: dict[str, str] | None = None
    android_priority: str = "high"


@dataclass(frozen=True)
class Device:
    token: str
    uid: str
    # The language of the device's user (`clients.locale` / `mitras.locale`; the default for an admin).
    locale: str = texts.DEFAULT_LOCALE


def _written(notification: Notification, part: str, locale: str, stored: str | None) -> str | None:
    """A keyed notification's title or body in `locale`. One whose words were erased before it was sent (its
    `params` and `body` removed with the session's texts, shared/adapters/postgres/outbox.py WITHOUT_WORDS) cannot
    be filled: it is sent with what is left of it, as before languages."""
    if notification.text_key is None:
        return stored
    try:
        return texts.text(f"{notification.text_key}.{part}", locale, **notification.params)
    except KeyError:
        return stored


def message_to(device: Device, notification: Notification) -> PushMessage:
    """The push as this device shows it: a keyed notification's texts in the device's user's language."""
    title = _written(notification, "title", device.locale, notification.title)
    body = _written(notification, "body", device.locale, notification.body)
    shown = {"title": title, "body": body or ""} if title else None
    return PushMessage(token=device.token, data=notification.data, notification=shown)


@dataclass(frozen=True)
class Delivery:
    """What sending a notification to each device came to."""

    sent: int
    # Tokens FCM says no app answers to any more: they are pruned.
    dead_tokens: list[str] = field(default_factory=list)
    # Recipients none of whose devices took the push while one failed for a reason that may pass: their claim on
    # the dedup key is released and the delivery fails, so Pub/Sub redelivers and only they are tried again.
    retry: list[str] = field(default_factory=list)


def delivery(devices: Sequence[Device], results: Sequence[PushResult]) -> Delivery:
    """The outcome of a send, `results` in the order of `devices`."""
    outcomes: dict[str, set[PushResult]] = {}
    for device, result in zip(devices, results, strict=True):
        outcomes.setdefault(device.uid, set()).add(result)
    return Delivery(
        sent=sum(1 for result in results if result is PushResult.SENT),
        dead_tokens=[
            device.token for device, result in zip(devices, results, strict=True) if result is PushResult.UNREGISTERED
        ],
        retry=[uid for uid, got in outcomes.items() if PushResult.FAILED in got and PushResult.SENT not in got],
    )
