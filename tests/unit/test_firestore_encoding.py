"""The Firestore writer encodes documents itself (plain protobuf, no wrapper types): every write it builds must be
the very write the client library's `set` / `set(merge=True)` builds for the same data.

Each test runs on both ways of writing (HALO_PUBLIC_CLIENT_API): on the public path the writer hands the library its
own values (a datetime for `$ts`, DELETE_FIELD for `$delete`), which must be the values the library is given here,
and refuses what the fast path refuses, with the same errors."""

from __future__ import annotations

import enum
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.adapters.firestore import FirestoreWriter, _Op, _Protos, native_document
from shared.domain.events import DocumentWrite

# A collection no app reads, so any data may go there (the apps' documents are held to their models).
PATH = "projects/demo-halo/databases/(default)/documents/scratch/s1"


def library_write(data: dict[str, Any], *, merge: bool) -> Any:
    """The client library's own Write for `data`, as a plain protobuf message."""
    from google.cloud.firestore_v1 import _helpers
    from google.cloud.firestore_v1.types import write

    native = _native(data)
    if merge:
        built = _helpers.pbs_for_set_with_merge(PATH, native, True)
    else:
        built = _helpers.pbs_for_set_no_merge(PATH, native)
    assert len(built) == 1
    return write.Write.pb(built[0])


def _native(value: Any) -> Any:
    """The outbox's JSON markers as the library's values."""
    from google.cloud import firestore

    if isinstance(value, dict):
        if set(value) == {"$ts"}:
            return datetime.fromisoformat(value["$ts"])
        if set(value) == {"$delete"}:
            return firestore.DELETE_FIELD
        return {key: _native(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_native(item) for item in value]
    return value


PATHS = pytest.mark.parametrize("public_api", [False, True], ids=["fast-path", "public-api"])


def offline_writer(*, public_api: bool) -> FirestoreWriter:
    """A writer on a client that never connects (anonymous credentials; nothing is sent here)."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import firestore

    writer = FirestoreWriter("demo-halo", public_api=public_api)
    writer._client = firestore.Client(project="demo-halo", credentials=AnonymousCredentials())
    return writer


def encode(data: dict[str, Any], *, merge: bool, public_api: bool) -> Any:
    """What the writer sends for `data`: the fast path's document and mask, or the public path's library write."""
    if not public_api:
        return _Protos().encode_document(data, merge=merge)
    (write,) = offline_writer(public_api=True)._encode(
        [_Op("scratch/s1", DocumentWrite.at("scratch/s1", data, merge=merge))]
    )
    return write


def assert_same_write(data: dict[str, Any], *, merge: bool, public_api: bool = False) -> None:
    if public_api:
        write = encode(data, merge=merge, public_api=True)
        assert (write.data, write.merge) == (_native(data), merge)
        assert native_document(data, merge=merge) == _native(data)
        return
    expected = library_write(data, merge=merge)
    document, mask = _Protos().encode_document(data, merge=merge)
    if merge:
        assert mask is not None
        assert sorted(mask) == sorted(expected.update_mask.field_paths)
        # Only what the mask names is written: compare the fields the library sends.
        assert dict(document.fields) == dict(expected.update.fields)
    else:
        assert mask is None
        assert not expected.HasField("update_mask")
        assert document.fields == expected.update.fields


class Side(enum.StrEnum):
    CLIENT = "client"


class Level(enum.IntEnum):
    HIGH = 3


MESSAGE = {
    "message_id": "8d7c1b5e-0000-4000-8000-000000000001",
    "session_id": "s1",
    "kind": "text",
    "sender_role": "client",
    "text": "halo 👋, apa kabar?",
    "status": "sent",
    "seq": 17,
    "created_at": {"$ts": "2026-11-25T10:00:00.123456+00:00"},
}


@pytest.mark.parametrize(
    ("data", "merge"),
    [
        (MESSAGE, False),
        (MESSAGE, True),
        ({"receipts": {"client": {"delivered_seq": 4, "read_seq": 3}}}, True),
        ({"typing": {"client": True, "mitra": {"$delete": True}}, "ends": {"$ts": "2026-11-25T17:00:00+07:00"}}, True),
        ({"removed": {"$delete": True}, "kept": None}, True),
        ({"empty": {}, "list": [], "nested": {"empty": {}}}, False),
        ({"empty": {}, "nested": {"empty": {}}}, True),
        ({"odd key": 1, "dotted.key": 2, "back`tick": 3, "_ok": 4, "9lives": 5}, True),
        ({"big": 2**63 - 1, "small": -(2**63), "pi": 3.5, "no": False, "raw": b"\x00\x01"}, False),
        ({"list": [1, "two", None, {"three": [3.0]}, [], {"$ts": "2026-01-01T00:00:00+00:00"}]}, False),
    ],
)
@PATHS
def test_documents_are_encoded_as_the_library_encodes_them(data: dict[str, Any], merge: bool, public_api: bool) -> None:
    assert_same_write(data, merge=merge, public_api=public_api)


@PATHS
def test_derived_scalars_and_real_datetimes_are_stored_as_their_values(public_api: bool) -> None:
    moment = datetime(2026, 11, 25, 17, 0, 0, 5, tzinfo=timezone(timedelta(hours=7)))
    data = {"role": Side.CLIENT, "level": Level.HIGH, "at": moment}
    if public_api:
        document = library_write(encode(data, merge=False, public_api=True).data, merge=False).update
    else:
        document, _ = _Protos().encode_document(data, merge=False)
    assert document.fields["role"].string_value == "client"
    assert document.fields["level"].integer_value == 3
    assert document.fields["at"].timestamp_value.ToDatetime(tzinfo=UTC) == moment


@pytest.mark.parametrize(
    ("data", "merge", "error"),
    [
        ({"gone": {"$delete": True}}, False, ValueError),  # a set replaces the document: nothing to delete
        ({"list": [{"$delete": True}]}, True, ValueError),
        ({"what": object()}, False, TypeError),
        ({"map": {1: "x"}}, False, TypeError),
        ({"huge": 2**64}, False, ValueError),
    ],
)
@PATHS
def test_what_firestore_cannot_store_is_refused_before_sending(
    data: dict[str, Any], merge: bool, error: type, public_api: bool
) -> None:
    with pytest.raises(error):
        encode(data, merge=merge, public_api=public_api)


@PATHS
def test_a_path_that_is_not_a_document_is_refused(public_api: bool) -> None:
    writer = offline_writer(public_api=public_api)
    with pytest.raises(ValueError, match="not a document path"):
        writer._encode([_Op("scratch", DocumentWrite.at("scratch", {"n": 1}))])


_keys = st.text(alphabet="abcXYZ019_-. `\\é", min_size=1, max_size=6)
_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=8)
    | st.datetimes(timezones=st.just(UTC)).map(lambda moment: {"$ts": moment.isoformat()})
)
_values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_keys, inner, max_size=3),
    max_leaves=12,
)
_merge_values = st.recursive(
    _values | st.just({"$delete": True}),
    lambda inner: st.dictionaries(_keys, inner, max_size=3),
    max_leaves=12,
)


@PATHS
@settings(max_examples=300, deadline=None)
@given(st.dictionaries(_keys, _values, max_size=5))
def test_any_document_set_is_encoded_as_the_library_encodes_it(public_api: bool, data: dict[str, Any]) -> None:
    assert_same_write(data, merge=False, public_api=public_api)


@PATHS
@settings(max_examples=300, deadline=None)
@given(st.dictionaries(_keys, _merge_values, max_size=5))
def test_any_merge_is_encoded_as_the_library_encodes_it(public_api: bool, data: dict[str, Any]) -> None:
    assert_same_write(data, merge=True, public_api=public_api)
