"""Push notifications: devices register their FCM tokens; `on_notify` delivers."""

from __future__ import annotations

from pydantic import BaseModel, Field

from functions._events import pubsub_handler
from functions._http import Call, endpoint
from shared import bootstrap
from shared.domain.notify import Notification
from shared.domain.roles import Role
from shared.schemas import DeviceRegister, DeviceRegistered
from shared.services import notify


class NotifyEvent(BaseModel):
    dedup_key: str = Field(min_length=1, max_length=200)
    recipients: list[str] = Field(max_length=5000)
    data: dict[str, str]
    title: str | None = None
    body: str | None = None
    # The texts' key and fillers (shared/domain/texts): written in each recipient's language when sent.
    text_key: str | None = Field(default=None, max_length=200)
    params: dict[str, str] = Field(default_factory=dict)


@endpoint(post=DeviceRegister, roles={Role.CLIENT, Role.MITRA, Role.ADMIN}, response=DeviceRegistered, errors={409})
def devices_register(call: Call[DeviceRegister]) -> DeviceRegistered:
    """Register (or move to the caller) this device's FCM token."""
    body = call.body
    registered = notify.register_device(bootstrap.ports(), call.caller.uid, body.token, body.platform, keyed=call.keyed)
    return DeviceRegistered.model_validate(registered, from_attributes=True)


@pubsub_handler(NotifyEvent)
def on_notify(event: NotifyEvent, _message_id: str) -> None:
    """Send one push per (notification, recipient) to each of their devices; prune dead tokens."""
    notify.deliver(bootstrap.ports(), bootstrap.fcm(), Notification(**event.model_dump()))
