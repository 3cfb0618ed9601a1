"""Versioned documents (shared/domain/projection.py): whatever order a document's writes arrive in, and however often
each arrives, the document ends as the writes applied once each in version order would leave it (up to a map left
empty by deleting its fields, which one order may leave and another not). Firestore's merge is played here by
`merged` (a field path set or deleted, maps made as needed), as the emulator tests show it behaves."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from shared.domain.events import DELETE_FIELD, DocumentDelete, DocumentEvent, DocumentWrite, ts
from shared.domain.projection import VERSIONS_FIELD, Guard, Stored, guard_of, leaves, newest_of

PATH = "sessions/s1"
# A versioned collection no document model describes (shared/domain/documents.py), so any data may be written.
ANY_PATH = "revocations/r1"


def merged(document: dict[str, Any] | None, data: dict[str, Any]) -> dict[str, Any]:
    """Firestore's merge of `data` into `document` (None: it does not exist)."""
    return written(document, list(leaves(data)))


def written(document: dict[str, Any] | None, fields: list[tuple[tuple[str, ...], Any]]) -> dict[str, Any]:
    """Firestore's write of these fields (each set to its value whole, or deleted) into `document`."""
    result = copy.deepcopy(document) if document is not None else {}
    for path, value in fields:
        target = result
        for name in path[:-1]:
            if not isinstance(target.get(name), dict):
                if value == DELETE_FIELD:
                    break
                target[name] = {}
            target = target[name]
        else:
            if value == DELETE_FIELD:
                target.pop(path[-1], None)
            else:
                target[path[-1]] = copy.deepcopy(value)
    return result


def in_order(writes: list[tuple[int, DocumentEvent]]) -> dict[str, Any]:
    """The document the writes leave when each arrives once, oldest first, with no versions at all."""
    document: dict[str, Any] = {}
    for _, event in sorted(writes, key=lambda write: write[0]):
        document = {} if isinstance(event, DocumentDelete) else merged(document, dict(event.data))
    return document


def delivered(writes: list[tuple[int, DocumentEvent]], order: list[int]) -> dict[str, Any] | None:
    """The document after the writes at these positions arrive one by one (repeats allowed), each through
    `newest_of` as the Firestore writer applies it."""
    document: dict[str, Any] | None = None
    for position in order:
        stored = Stored(exists=document is not None, versions=(document or {}).get(VERSIONS_FIELD, {}))
        merge = newest_of(stored, [writes[position]])
        if merge is not None:
            paths = [path for path, _ in merge.fields]
            assert not [a for a in paths for b in paths if a != b and b[: len(a)] == a], "no field inside another"
            document = written(document, merge.fields)
    return document


def without_versions(document: dict[str, Any] | None) -> dict[str, Any]:
    return _pruned({key: value for key, value in (document or {}).items() if key != VERSIONS_FIELD})


def _pruned(document: dict[str, Any]) -> dict[str, Any]:
    """Without empty maps (a map left empty by deletes, or written empty: both orders prune alike)."""
    kept: dict[str, Any] = {}
    for key, value in document.items():
        inner = _pruned(value) if isinstance(value, dict) else value
        if inner != {}:
            kept[key] = inner
    return kept


# Each field keeps its shape, as our documents' fields do: `extension` is always a map (or deleted, or emptied), the
# others never are.
values = st.one_of(st.integers(0, 3), st.just(DELETE_FIELD), st.lists(st.integers(0, 2), max_size=2))
extension = st.one_of(
    st.dictionaries(st.sampled_from(["extension_id", "status", "minutes"]), values, min_size=1, max_size=3),
    st.just({}),
    st.just(DELETE_FIELD),
)
merges = (
    st.fixed_dictionaries(
        {},
        optional={"status": values, "participant_uids": values, "client_name": values, "extension": extension},
    )
    .filter(bool)
    .map(lambda data: DocumentWrite.at(ANY_PATH, data))
)
events = st.one_of(merges, merges, merges, st.just(DocumentDelete.at(ANY_PATH)))


@settings(max_examples=400, deadline=None)
@given(data=st.data(), written=st.lists(events, min_size=1, max_size=6))
def test_any_arrival_order_with_repeats_ends_as_the_writes_in_order(data: st.DataObject, written: list[Any]) -> None:
    writes = list(enumerate(written, start=1))
    order = data.draw(st.permutations(range(len(writes))))
    repeats = data.draw(st.lists(st.sampled_from(range(len(writes))), max_size=3))

    document = delivered(writes, [*order, *repeats])

    assert without_versions(document) == _pruned(in_order(writes))


def test_a_late_reroute_does_not_give_the_session_back_to_the_first_mitra() -> None:
    started = DocumentWrite.at(PATH, {"status": "active", "participant_uids": ["c", "m1"], "mitra_name": "Anisa"})
    rerouted = DocumentWrite.at(PATH, {"participant_uids": ["c", "m2"], "mitra_name": "Budi"})
    warned = DocumentWrite.at(PATH, {"warning": {"version": 1, "at": ts_now()}})

    document = delivered([(10, started), (20, rerouted), (15, warned)], [1, 0, 2])

    assert document is not None
    assert (document["participant_uids"], document["mitra_name"]) == (["c", "m2"], "Budi")
    assert document["status"] == "active", "the late write's fields nothing newer set still land"
    assert "warning" in document


def test_a_write_delivered_again_writes_nothing() -> None:
    write = DocumentWrite.at(PATH, {"status": "closing", "extension": {"status": "void"}})
    document = written(None, newest_of(Stored(False, {}), [(7, write)]).fields)  # type: ignore[union-attr]

    again = newest_of(Stored(True, document[VERSIONS_FIELD]), [(7, write)])

    assert again is None
    assert document[VERSIONS_FIELD] == {"status": 7, "extension.status": 7}


def test_writes_to_a_document_that_does_not_exist_delete_nothing() -> None:
    merge = newest_of(Stored(False, {}), [(3, DocumentWrite.at(ANY_PATH, {"client_uid": DELETE_FIELD, "name": "x"}))])

    assert merge is not None
    assert written(None, merge.fields) == {"name": "x", VERSIONS_FIELD: {"client_uid": -3, "name": 3}}


def test_which_writes_are_guarded() -> None:
    session = DocumentWrite.at(PATH, {"status": "closed"})
    typing = DocumentWrite.at(PATH, {"typing": {"client": {"typing_until": None}}})
    receipts_and_typing = DocumentWrite.at(PATH, {"typing": {}, "receipts": {"mitra": {"read_seq": 2}}})
    message = DocumentWrite.at(f"{PATH}/messages/m1", {"text": "halo"}, merge=False)
    erased = DocumentWrite.at(f"{PATH}/messages/m1", {"text": DELETE_FIELD, "erased": True})
    offer = DocumentWrite.at("mitras/u1/offers/r1", {"status": "offered"})

    assert guard_of(PATH, session) is Guard.VERSIONED
    assert guard_of("admin_alerts/a1", session) is Guard.VERSIONED
    assert guard_of("revocations/u1", session) is Guard.VERSIONED
    assert guard_of(PATH, DocumentDelete.at(PATH)) is Guard.VERSIONED
    assert guard_of(PATH, typing) is Guard.NONE
    assert guard_of(PATH, receipts_and_typing) is Guard.NONE
    assert guard_of(f"{PATH}/messages/m1", message) is Guard.CREATE_ONCE
    assert guard_of(f"{PATH}/messages/m1", erased) is Guard.NONE
    assert guard_of("mitras/u1/offers/r1", offer) is Guard.NONE


def ts_now() -> dict[str, str]:
    from datetime import UTC, datetime

    return ts(datetime(2026, 1, 5, tzinfo=UTC))
