"""Where each Firestore document the apps listen to lives, and the topics fan-out work travels on.

PostgreSQL is the truth; these documents are its projection for the apps' listeners (firestore.rules decides who may
read each). Every write to them is an event (shared/domain/events.py) built by the rules of its area.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, GetCoreSchemaHandler, GetJsonSchemaHandler, ValidationError
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, core_schema

# A push to people's devices (functions/notify.py `on_notify`), sent once per dedup key and person.
NOTIFY_TOPIC = "notify"
# One event per chat message (functions/chat_events.py `on_chat_message`): the recipient's push and, for a client's
# message, the crisis-signal check.
MESSAGE_TOPIC = "chat-messages"
# A request to offer to every available mitra (functions/pairing.py `on_pairing_requested`).
BLAST_TOPIC = "pairing-requested"


def request_path(request_id: str) -> str:
    return f"pairing_requests/{request_id}"


def offer_path(mitra_uid: str, request_id: str) -> str:
    return f"mitras/{mitra_uid}/offers/{request_id}"


def session_path(session_id: str) -> str:
    return f"sessions/{session_id}"


def message_path(session_id: str, message_id: str) -> str:
    return f"{session_path(session_id)}/messages/{message_id}"


def payment_path(transaction_id: str) -> str:
    return f"payments/{transaction_id}"


def alert_path(alert_id: str) -> str:
    return f"admin_alerts/{alert_id}"


def revocation_path(uid: str) -> str:
    """firestore.rules consult it before every read by `uid` (shared.domain.accounts.revocation_document)."""
    return f"revocations/{uid}"


# -- what each document holds ------------------------------------------------------------------------------------------
#
# Every document the apps read is described by one model below, and the event builders build their writes from it
# (`DocumentWrite.at(path, SessionDocument(...))`); `DocumentWrite` checks any data it is given against the model of
# its path, so no write can carry a field its model lacks. Most writes merge a few fields into the document, so every
# field is optional and a write holds only the fields it sets (`Document.data`: set fields only). The JSON Schemas in
# contract/firestore/ are generated from these models (`python -m kit.contract`).
#
# Two special values travel in a write's data (shared/domain/events.py): a timestamp `{"$ts": iso}`, which the apps
# read as a Firestore Timestamp, and `{"$delete": true}`, which removes the field.


@dataclass(frozen=True)
class OneOf:
    """A text field that holds one of `values` (a domain enum's values; the enum itself may be passed)."""

    values: tuple[str, ...]

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        def one_of(value: str) -> str:
            if value not in self.values:
                raise ValueError(f"not one of {', '.join(self.values)}")
            return str(value)

        return core_schema.no_info_after_validator_function(one_of, core_schema.str_schema())

    def __get_pydantic_json_schema__(self, schema: CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        return {"type": "string", "enum": list(self.values)}


@dataclass(frozen=True, eq=False)
class Special:
    """A special value in a write's data: `{key: value}` (see shared/domain/events.py), shown to apps as `shown`."""

    key: str
    shown: dict[str, Any]

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        def special(value: dict[str, Any]) -> dict[str, Any]:
            if set(value) != {self.key}:
                raise ValueError(f"a special value is {{{self.key!r}: ...}}")
            return value

        return core_schema.no_info_after_validator_function(special, core_schema.dict_schema())

    def __get_pydantic_json_schema__(self, schema: CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        return dict(self.shown)


# A timestamp: written `{"$ts": iso}` (shared.domain.events.ts), read by the apps as a Firestore Timestamp.
Stamp = Annotated[
    dict[str, str],
    Special("$ts", {"type": "string", "format": "date-time", "x-firestore-type": "timestamp"}),
]
# A field that may be removed: written `{"$delete": true}` (shared.domain.events.DELETE_FIELD); the field is then
# absent (the schema generator drops this alternative).
DELETED_MARK = "x-halo-deleted"
Removed = Annotated[dict[str, Any], Special("$delete", {DELETED_MARK: True})]

# The values of the domain's enums, as the documents show them (tests/unit/test_documents.py ties them to the enums).
RequestStatusValue = Annotated[str, OneOf(("searching", "matched", "no_mitra", "cancelled"))]
OfferStatusValue = Annotated[str, OneOf(("offered", "accepted", "declined", "withdrawn"))]
RequestKindValue = Annotated[str, OneOf(("paid", "free_trial"))]
SessionStatusValue = Annotated[str, OneOf(("active", "closing", "closed"))]
ClosureReasonValue = Annotated[str, OneOf(("expired", "ended_by_client", "ended_by_mitra", "admin", "rerouted"))]
ExtensionStatusValue = Annotated[str, OneOf(("requested", "accepted", "rejected", "expired", "applied", "void"))]
MessageKindValue = Annotated[str, OneOf(("text", "system", "goodbye"))]
SenderRoleValue = Annotated[str, OneOf(("client", "mitra", "system"))]
MessageStatusValue = Annotated[str, OneOf(("sent",))]
TransactionStatusValue = Annotated[str, OneOf(("pending", "paid", "expired"))]
PurposeValue = Annotated[str, OneOf(("session", "extension"))]
CurrencyValue = Annotated[str, OneOf(("IDR",))]
CategoryValue = Annotated[str, OneOf(("suicidal_ideation", "self_harm", "acute_distress"))]
AlertStatusValue = Annotated[str, OneOf(("open", "acknowledged"))]


class Part(BaseModel):
    """A map inside a document; a merge sets only the keys it names."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_enum_values=True, defer_build=True)


class Document(Part):
    """A document's data as one write sets it: only the fields given (`data`)."""

    def data(self) -> dict[str, Any]:
        return self.model_dump(exclude_unset=True, by_alias=True)


class MatchedMitra(Part):
    display_name: str | None = None


class PairingRequestDocument(Document):
    """`pairing_requests/{request_id}`: the client's app follows its request, from searching to matched (then it
    opens `sessions/{session_id}`), no_mitra or cancelled. Read by the client who made it."""

    request_id: str | None = None
    client_uid: str | None = None
    status: RequestStatusValue | None = None
    updated_at: Stamp | None = None
    search_deadline: Stamp | None = Field(default=None, description="When the search gives up (status no_mitra).")
    kind: RequestKindValue | None = None
    duration_s: int | None = Field(default=None, description="The length of the session asked for, in seconds.")
    session_id: str | None = Field(default=None, description="Set when matched.")
    mitra: MatchedMitra | None = Field(default=None, description="Set when matched: who listens.")
    offered_count: int | None = Field(
        default=None, description="How many mitras the request has been offered to so far (grows as re-offers happen)."
    )
    estimated_wait_s: int | None = Field(
        default=None,
        description="The median wait of recent matched requests at a similar hour, in seconds; null: too little "
        "history (docs/contract.md, Pairing).",
    )
    preferred_mitra_until: Stamp | None = Field(
        default=None,
        description="Asked for a past mitra: offered to that mitra alone until then, then to everyone available.",
    )


class OfferDocument(Document):
    """`mitras/{mitra_uid}/offers/{request_id}`: a request offered to this mitra, who may accept it
    (`pairing_accept`) until `expires_at`. The document goes when the offer is no longer open. Read by that mitra."""

    request_id: str | None = None
    client_name: str | None = Field(default=None, description="The client's name as shown to mitras (maybe an alias).")
    kind: RequestKindValue | None = None
    duration_s: int | None = None
    minutes: int | None = None
    expires_at: Stamp | None = None
    status: OfferStatusValue | None = None


class SideReceipts(Part):
    delivered_seq: int | None = Field(default=None, description="This side has received every message up to this seq.")
    read_seq: int | None = Field(default=None, description="This side has read every message up to this seq.")


class Receipts(Part):
    client: SideReceipts | None = None
    mitra: SideReceipts | None = None


class TypingLease(Part):
    since: Stamp | None = Field(default=None, description="Lease written; a later message from that side ends it.")
    typing_until: Stamp | None = Field(default=None, description="Show 'typing…' until then; null: not typing.")


class Typing(Part):
    client: TypingLease | None = None
    mitra: TypingLease | None = None


class SessionWarning(Part):
    version: int | None = Field(default=None, description="The session version the warning is about.")
    at: Stamp | None = None


class Extension(Part):
    extension_id: str | None = None
    status: ExtensionStatusValue | None = None
    minutes: int | None = None
    duration_s: int | None = None
    price: int | None = Field(default=None, description="In rupiah.")
    respond_by: Stamp | None = Field(default=None, description="The mitra answers by then or the request expires.")


class SessionDocument(Document):
    """`sessions/{session_id}`: one session as both participants' apps show it: who, its status and timer, each
    side's receipts and typing, the last extension request. Read by its participants (`participant_uids`)."""

    session_id: str | None = None
    status: SessionStatusValue | None = None
    participant_uids: list[str] | None = Field(default=None, description="Who may read the session and its messages.")
    client_uid: str | Removed | None = Field(default=None, description="Absent once the client deleted their account.")
    mitra_uid: str | None = None
    client_name: str | None = None
    mitra_name: str | None = None
    kind: RequestKindValue | None = None
    started_at: Stamp | None = None
    ends_at: Stamp | None = Field(default=None, description="The backend closes the session then.")
    version: int | None = Field(default=None, description="Grows with every extension applied.")
    receipts: Receipts | None = None
    typing: Typing | None = None
    warning: SessionWarning | None = Field(default=None, description="Set when little time is left.")
    extension: Extension | None = None
    close_reason: ClosureReasonValue | None = None
    closing_at: Stamp | None = None
    goodbye_until: Stamp | None = Field(default=None, description="Goodbye messages are accepted until then.")
    closed_at: Stamp | None = None
    rerouted_at: Stamp | None = Field(default=None, description="When an admin moved the session to another mitra.")


class MessageDocument(Document):
    """`sessions/{session_id}/messages/{message_id}`: one message, ordered by `seq`. Read by the session's
    participants. An erased message (retention, account deletion) loses its `text` and has `erased: true`."""

    message_id: str | None = None
    session_id: str | None = None
    kind: MessageKindValue | None = None
    sender_role: SenderRoleValue | None = None
    sender_uid: str | None = Field(default=None, description="Null for a system message.")
    text: str | Removed | None = None
    status: MessageStatusValue | None = None
    client_message_id: str | None = Field(default=None, description="The sender app's own id, if it sent one.")
    seq: int | None = Field(default=None, description="The message's place in the session, from 1.")
    created_at: Stamp | None = None
    erased: bool | None = None
    text_key: str | None = Field(
        default=None,
        description="A system message the backend wrote: the key of its text (shared/domain/texts); `text` is then "
        "the Indonesian one.",
    )
    params: dict[str, str] | None = Field(default=None, description="What fills the text's placeholders.")
    text_by_locale: dict[str, str] | None = Field(
        default=None,
        description="A system message in every language, by locale (`id`, `en`): an app shows its user's, and "
        "`text` when its user's is missing.",
    )


class PaymentDocument(Document):
    """`payments/{transaction_id}`: the client's app waits here for its payment to land (paid) or lapse (expired).
    Read by the client who checked out."""

    transaction_id: str | None = None
    client_uid: str | None = None
    updated_at: Stamp | None = None
    status: TransactionStatusValue | None = None
    purpose: PurposeValue | None = None
    tier_id: str | None = None
    amount: int | None = Field(default=None, description="In rupiah.")
    currency: CurrencyValue | None = None
    expires_at: Stamp | None = Field(default=None, description="The invoice lapses then.")


class AlertDocument(Document):
    """`admin_alerts/{alert_id}`: a crisis signal in a client's message, for the control center (admins only). It
    names the session and message, never the message's words."""

    alert_id: str | None = None
    session_id: str | None = None
    message_id: str | None = None
    report_id: str | None = Field(
        default=None, description="Instead of `message_id`: the report of a crisis that raised the alert."
    )
    client_alias: str | None = None
    category: CategoryValue | None = None
    status: AlertStatusValue | None = None
    created_at: Stamp | None = None
    acknowledged_by: str | None = Field(default=None, description="The admin who acknowledged it first.")
    acknowledged_at: Stamp | None = None


# Each document's path pattern (a `*` for any id), its model, and its name in contract/firestore/.
DOCUMENTS: dict[str, type[Document]] = {
    "pairing_requests/*": PairingRequestDocument,
    "mitras/*/offers/*": OfferDocument,
    "sessions/*": SessionDocument,
    "sessions/*/messages/*": MessageDocument,
    "payments/*": PaymentDocument,
    "admin_alerts/*": AlertDocument,
}


# The collections the apps read (firestore.rules opens these and closes everything else).
APP_COLLECTIONS = frozenset(pattern.split("/")[0] for pattern in DOCUMENTS)


def model_of(path: str) -> type[Document] | None:
    """The model of the document at `path`; None outside the apps' collections (no app can read it). Raises
    ValueError for a path in them that no model describes."""
    parts = path.split("/")
    if parts[0] not in APP_COLLECTIONS:
        return None
    for pattern, model in DOCUMENTS.items():
        pattern_parts = pattern.split("/")
        if len(parts) == len(pattern_parts) and all(
            want in ("*", part) for want, part in zip(pattern_parts, parts, strict=True)
        ):
            return model
    raise ValueError(f"no document model describes {path!r}")


def checked(paths: tuple[str, ...], data: Mapping[str, Any]) -> None:
    """Raises ValueError when `data` sets a field (or a value) the model of any of `paths` does not have."""
    for model in {model_of(path) for path in paths}:
        if model is None:
            continue
        try:
            model.model_validate(data)
        except ValidationError as error:
            raise ValueError(f"{model.__name__} refuses this write: {error}") from error
