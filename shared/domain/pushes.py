"""What each push carries in its FCM `data`: one model per `type`, which `shared.domain.notify.push` builds every
push's data through (a push whose data its model lacks a field of, or has one too many, is refused when it is built).

FCM data is text only: every value is a string. The lock screen's title and body travel beside it (FCM
`notification`), in the recipient's language (their `locale`, Indonesian by default: shared/domain/texts), and may be
absent (a data-only push). The JSON Schemas in contract/push/ are generated
from these models (`python -m kit.contract`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError


class PushData(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


class PairingOfferPush(PushData):
    """To every mitra a request is offered to, while it is: open `mitras/{uid}/offers/{request_id}`."""

    type: Literal["pairing_offer"]
    request_id: str


class MatchedPush(PushData):
    """To the client: a mitra accepted; open `sessions/{session_id}`."""

    type: Literal["matched"]
    request_id: str
    session_id: str


class NoMitraPush(PushData):
    """To the client: nobody accepted before the search deadline; try again later."""

    type: Literal["no_mitra"]
    request_id: str


class MessagePush(PushData):
    """To a message's recipient. The body shows the message's beginning only where the client allows it."""

    type: Literal["message"]
    session_id: str
    message_id: str


class SessionWarningPush(PushData):
    """To the client: little time is left; the app may offer an extension."""

    type: Literal["session_warning"]
    session_id: str


class SessionClosingPush(PushData):
    """To both participants: the session is closing; goodbye messages are accepted for a short while."""

    type: Literal["session_closing"]
    session_id: str
    reason: Literal["expired", "ended_by_client", "ended_by_mitra", "admin", "rerouted"]


class ExtensionRequestPush(PushData):
    """To the mitra: the client asks for more time; answer with `extension_respond`."""

    type: Literal["extension_request"]
    session_id: str
    extension_id: str


class SessionAssignedPush(PushData):
    """To the mitra an admin moved a running session to: open `sessions/{session_id}`."""

    type: Literal["session_assigned"]
    session_id: str


class SessionReroutedPush(PushData):
    """To the mitra a session was taken from: it is continued by another mitra."""

    type: Literal["session_rerouted"]
    session_id: str


class SafetyAlertPush(PushData):
    """To the admins on duty: a crisis signal; open `admin_alerts/{alert_id}` in the control center."""

    type: Literal["safety_alert"]
    alert_id: str
    session_id: str
    # "true" when nobody was on duty and every admin is pushed (shared/domain/safety.py).
    escalated: Literal["true"] | None = None


class ReportFiledPush(PushData):
    """To the admins on duty: a report of the other side of a session; review it in `admin_reports`."""

    type: Literal["report_filed"]
    report_id: str
    session_id: str
    category: str
    # "true" when nobody was on duty and every admin is pushed (shared/domain/reports.py).
    escalated: Literal["true"] | None = None


PUSHES: tuple[type[PushData], ...] = (
    PairingOfferPush,
    MatchedPush,
    NoMitraPush,
    MessagePush,
    SessionWarningPush,
    SessionClosingPush,
    ExtensionRequestPush,
    SessionAssignedPush,
    SessionReroutedPush,
    SafetyAlertPush,
    ReportFiledPush,
)

AnyPush = Annotated[
    PairingOfferPush
    | MatchedPush
    | NoMitraPush
    | MessagePush
    | SessionWarningPush
    | SessionClosingPush
    | ExtensionRequestPush
    | SessionAssignedPush
    | SessionReroutedPush
    | SafetyAlertPush
    | ReportFiledPush,
    Field(discriminator="type"),
]
_ANY_PUSH: TypeAdapter[AnyPush] = TypeAdapter(AnyPush)


def push_data(data: Mapping[str, str]) -> dict[str, str]:
    """`data` as its type's model has it (an optional field left out stays out). Raises ValueError for data no
    model describes."""
    try:
        model = _ANY_PUSH.validate_python(dict(data))
    except ValidationError as error:
        raise ValueError(f"no push model takes this data: {error}") from error
    return {key: str(value) for key, value in model.model_dump(exclude_none=True).items()}
