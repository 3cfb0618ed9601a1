"""Push notifications: devices register their FCM tokens; each notification goes once per person, to every device
they registered, and tokens FCM calls dead are pruned (shared.domain.notify)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from shared.domain import notify as rules
from shared.domain.idempotency import KeyedCall
from shared.domain.notify import Device, Notification, PushMessage, PushResult, Registered
from shared.errors import Unavailable
from shared.services import idempotency
from shared.services.ports import Ports


class NotifyRepository(Protocol):
    """What notifications need from storage (shared/adapters/postgres/notify.py)."""

    def register_device(self, token: str, uid: str, platform: str) -> None: ...

    def claim_pushes(self, dedup_key: str, uids: Sequence[str]) -> list[str]: ...

    def still_offered(self, request_id: str, uids: Sequence[str]) -> list[str]: ...

    def release_pushes(self, dedup_key: str, uids: Sequence[str]) -> None: ...

    def devices_of(self, uids: Sequence[str]) -> list[Device]: ...

    def prune_devices(self, tokens: Sequence[str]) -> None: ...

    def forget_devices_of(self, uid: str) -> None: ...


class PushSender(Protocol):
    """FCM (shared/adapters/fcm.py): every outcome is a PushResult, never an exception."""

    def send_many(self, messages: list[PushMessage]) -> list[PushResult]:
        """Results in the order of `messages`."""


def register_device(ports: Ports, uid: str, token: str, platform: str, *, keyed: KeyedCall | None = None) -> Registered:
    """Moves the token to the caller if another user had registered it. Registering again changes nothing but the
    token's last-seen time, and answers the same."""
    registered = Registered()
    with ports.uow() as uow:
        if (first := idempotency.first_answer(uow, keyed, Registered)) is not None:
            return first
        uow.notify.register_device(token, uid, platform)
        idempotency.remember(uow, keyed, registered)
        uow.commit()
    return registered


def deliver(ports: Ports, fcm: PushSender, notification: Notification) -> int:
    """Returns the number of messages sent. The claims on the dedup key are held in the transaction while FCM
    sends, so a crash mid-way leaves nobody marked as reached. A pairing offer's push goes only to the mitras whose
    offer is still open (`rules.offered_request`). Recipients whose every device failed transiently are
    released and the call raises, so Pub/Sub redelivers and only they are tried again."""
    with ports.uow() as uow:
        recipients = notification.recipients
        if (request_id := rules.offered_request(notification)) is not None:
            # Only while the offer is open; a mitra left out is not marked as reached (nor asked again: an offer made
            # again is a new notification, with a key of its own).
            recipients = uow.notify.still_offered(request_id, recipients)
        fresh = uow.notify.claim_pushes(notification.dedup_key, recipients)
        devices = uow.notify.devices_of(fresh)
        results = fcm.send_many([rules.message_to(device, notification) for device in devices])
        outcome = rules.delivery(devices, results)
        uow.notify.prune_devices(outcome.dead_tokens)
        uow.notify.release_pushes(notification.dedup_key, outcome.retry)
        uow.commit()
    if outcome.retry:
        raise Unavailable(f"push failed for {len(outcome.retry)} recipients; retrying")
    return outcome.sent
