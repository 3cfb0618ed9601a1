"""The Firestore documents and push payloads the apps read are described by models (shared/domain/documents.py,
shared/domain/pushes.py), and nothing can be written that its model lacks."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

import pytest

from shared.domain import documents
from shared.domain.billing import Purpose, TransactionStatus
from shared.domain.chat import MessageKind
from shared.domain.documents import DOCUMENTS, OneOf
from shared.domain.events import DELETE_FIELD, DocumentWrite, decode, encode, ts
from shared.domain.notify import push
from shared.domain.pairing import OfferStatus, RequestKind, RequestStatus
from shared.domain.pushes import PUSHES, SessionClosingPush
from shared.domain.safety import Category
from shared.domain.session import ClosureReason, ExtensionStatus, SessionStatus

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def _values(annotated: Any) -> set[str]:
    (one_of,) = [m for m in annotated.__metadata__ if isinstance(m, OneOf)]
    return set(one_of.values)


@pytest.mark.parametrize(
    ("annotated", "enum"),
    [
        (documents.RequestStatusValue, RequestStatus),
        (documents.OfferStatusValue, OfferStatus),
        (documents.RequestKindValue, RequestKind),
        (documents.SessionStatusValue, SessionStatus),
        (documents.ClosureReasonValue, ClosureReason),
        (documents.ExtensionStatusValue, ExtensionStatus),
        (documents.TransactionStatusValue, TransactionStatus),
        (documents.PurposeValue, Purpose),
        (documents.CategoryValue, Category),
    ],
)
def test_the_documents_values_are_the_domains_enums(annotated: Any, enum: type[StrEnum]) -> None:
    assert _values(annotated) == {member.value for member in enum}


def test_message_kinds_and_closing_reasons_agree_with_the_domain() -> None:
    assert _values(documents.MessageKindValue) == set(MessageKind.__args__)  # type: ignore[attr-defined]
    reason = SessionClosingPush.model_fields["reason"].annotation
    assert set(reason.__args__) == {member.value for member in ClosureReason}  # type: ignore[union-attr]


def test_the_models_cover_exactly_the_documents_firestore_rules_let_apps_read() -> None:
    """Every `match` block of firestore.rules that allows a read is a document some model describes, and back."""
    readable: set[str] = set()
    stack: list[tuple[int, str]] = []
    for line in (ROOT / "firestore.rules").read_text().splitlines():
        if not line.strip() or line.strip().startswith(("//", "&&", "}")):
            continue
        indent = len(line) - len(line.lstrip())
        while stack and stack[-1][0] >= indent:
            stack.pop()
        matched = re.match(r"\s*match /(.+?) \{", line)
        if matched:
            stack.append((indent, matched.group(1)))
        elif re.match(r"\s*allow read: if (?!false)", line):
            parts = [p for _, p in stack if not p.startswith("databases/")]
            readable.add("/".join(re.sub(r"\{[^}]+\}", "*", p) for p in parts))
    assert readable == set(DOCUMENTS)


def test_a_write_with_a_field_its_model_lacks_is_refused() -> None:
    with pytest.raises(ValueError, match="SessionDocument"):
        DocumentWrite.at("sessions/s1", {"status": "active", "note": "x"})
    with pytest.raises(ValueError, match="OfferDocument"):
        DocumentWrite(("mitras/m1/offers/r1", "mitras/m2/offers/r1"), {"request_id": "r1", "price": 5})
    with pytest.raises(ValueError, match="MessageDocument"):
        DocumentWrite.at("sessions/s1/messages/m1", {"receipts": {"client": {"read_seq": 1}}})


def test_a_nested_field_or_a_value_its_model_lacks_is_refused() -> None:
    with pytest.raises(ValueError):
        DocumentWrite.at("sessions/s1", {"typing": {"admin": {"typing_until": None}}})
    with pytest.raises(ValueError):
        DocumentWrite.at("sessions/s1", {"status": "paused"})
    with pytest.raises(ValueError):
        DocumentWrite.at("sessions/s1", {"started_at": {"$ts": NOW.isoformat(), "extra": 1}})
    with pytest.raises(ValueError):
        DocumentWrite.at("payments/t1", {"status": DELETE_FIELD})


def test_a_document_of_the_apps_collections_that_no_model_describes_is_refused() -> None:
    with pytest.raises(ValueError, match="no document model"):
        DocumentWrite.at("sessions/s1/notes/n1", {"n": 1})


def test_special_values_and_partial_writes_are_representable() -> None:
    write = DocumentWrite.at(
        "sessions/s1",
        documents.SessionDocument(
            client_uid=DELETE_FIELD,
            typing=documents.Typing(mitra=documents.TypingLease(typing_until=None)),
            ends_at=ts(NOW),
        ),
    )
    assert write.data == {
        "client_uid": {"$delete": True},
        "typing": {"mitra": {"typing_until": None}},
        "ends_at": {"$ts": NOW.isoformat()},
    }
    row = encode(write)
    assert decode(row.kind, row.destination, row.payload) == write


def test_every_push_type_has_one_model_and_data_it_lacks_is_refused() -> None:
    types = [model.model_fields["type"].annotation.__args__[0] for model in PUSHES]  # type: ignore[union-attr]
    assert len(set(types)) == len(types)
    sent = push(dedup_key="k", recipients=["u"], data={"type": "matched", "request_id": "r", "session_id": "s"})
    assert sent.data["data"] == {"type": "matched", "request_id": "r", "session_id": "s"}
    with pytest.raises(ValueError):
        push(dedup_key="k", recipients=["u"], data={"type": "matched", "request_id": "r"})
    with pytest.raises(ValueError):
        push(dedup_key="k", recipients=["u"], data={"type": "no_mitra", "request_id": "r", "text": "hi"})
    with pytest.raises(ValueError):
        push(dedup_key="k", recipients=["u"], data={"type": "unknown"})
