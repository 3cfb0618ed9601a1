"""How the projection stays as new as PostgreSQL: no late write puts a Firestore document back.

Delivery is at least once and in no promised order: an outbox row whose delivery failed is retried with backoff, the
sweep redelivers, and meanwhile newer rows about the same document may land. Three kinds of document write follow:

- **Versioned** (`sessions/{id}`, `admin_alerts/{id}`, `revocations/{uid}`): each write carries its outbox row's id
  as its version. The document keeps, under `_versions`, the version that last wrote each of its fields (each leaf,
  as the merge names it: `status`, `participant_uids`, `extension.status`), and a write only sets the fields no newer
  write has set: a late `participant_uids`, `status` or `client_name` is dropped, while a late write's fields that
  nothing newer touched still land, exactly as if the writes had arrived in order. The writer reads `_versions` and
  the document's update time, drops what is older, and commits on the condition that the document has not changed
  since (shared/adapters/firestore.py). A versioned document is only ever merged: a `set` is applied as a merge of its
  fields, and a delete leaves a tombstone (every field gone, `_versions` kept) that older writes cannot undo.

  Why the outbox id is a version: ids are drawn from one sequence when a change's rows are inserted, at its commit,
  and every change that writes one of these documents holds the row lock of what the document shows (the session
  row: pairing accept, the lifecycle, reroute, a mitra's relink and rename; the flag row for an alert; the
  `sign_in_revocations` row for a revocation) from before it reads until it commits. Two changes to one document
  therefore commit one after the other, and the later one's rows get the higher ids.
- **Created once** (messages, `sessions/{id}/messages/{id}`): created with the condition that the document does not
  exist yet; a create that finds it (a redelivery, or one that arrives after the message's text was erased) is done,
  so a late create can never bring an erased text back.
- **Unversioned** (everything else, and a session document's typing leases and receipts): the write lands as it
  comes. Typing and receipts merges never carry `participant_uids`, `status` or a text, only a lease that expires by
  itself and watermarks that only move forward (`shared.domain.chat.watermarks`), so one arriving late restores
  nothing anyone is fenced by; versioning them would cost a read on the chat path for nothing. Offers, requests and
  payments keep the cost of the 1,000-mitra blast and of every payment at one write: a late offer or request status
  is corrected by the accept's own checks in PostgreSQL, which is what decides.
"""

from __future__ import annotations

import copy
import enum
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from shared.domain.events import DELETE_FIELD, DocumentDelete, DocumentEvent, DocumentWrite

# The map in a versioned document holding, for each field written, the version that wrote it.
VERSIONS_FIELD = "_versions"
# The key under which a versioned delete (a tombstone) records its version: older than it, nothing lands.
WHOLE_DOCUMENT = "*"

VERSIONED_COLLECTIONS = frozenset({"sessions", "admin_alerts", "revocations"})
# The fields of a session document that typing and receipts write (unversioned, see above).
_LEASES = frozenset({"typing", "receipts"})


class Guard(enum.Enum):
    """How a document write is protected from arriving late."""

    NONE = "none"
    VERSIONED = "versioned"
    CREATE_ONCE = "create_once"


def guard_of(path: str, event: DocumentEvent) -> Guard:
    """The protection a write of `event` to `path` gets (see the module's docstring for why each)."""
    parts = path.split("/")
    if len(parts) == 4 and parts[0] == "sessions" and parts[2] == "messages":
        is_create = isinstance(event, DocumentWrite) and not event.merge
        return Guard.CREATE_ONCE if is_create else Guard.NONE
    if len(parts) == 2 and parts[0] in VERSIONED_COLLECTIONS:
        if isinstance(event, DocumentWrite) and event.merge and event.data and set(event.data) <= _LEASES:
            return Guard.NONE
        return Guard.VERSIONED
    return Guard.NONE


@dataclass(frozen=True)
class Stored:
    """What a versioned document holds now, as far as versions go."""

    exists: bool
    versions: Mapping[str, int]


# A field's path in a document, and what a write does to it: a value, or `DELETE_FIELD`.
FieldWrite = tuple[tuple[str, ...], Any]


@dataclass(frozen=True)
class Merge:
    """What a versioned document's writes come to: fields set (each value written whole, a map included) or deleted,
    no field inside another, among them `_versions`' entries saying which version wrote each field."""

    fields: list[FieldWrite]


def newest_of(stored: Stored, writes: Sequence[tuple[int, DocumentEvent]]) -> Merge | None:
    """The merge that brings a document holding `stored` up to date with `writes` (version, event), dropping every
    field a newer write has set; None when nothing is left to write. Fields are compared leaf by leaf, as a merge
    names them: a write to a field loses to a newer write of that field, of a map holding it, or to a newer delete of
    the document; under a newer write inside it, what remains of it is the clearing away of older fields inside it.
    A field deleted is recorded with its version negated: a newer delete inside a map does not stop an older write of
    the map (in order, that delete would have found nothing to delete). As in our documents, a field is a map in
    every write of it or in none."""
    plan = _Plan(dict(stored.versions))
    for version, event in sorted(writes, key=lambda write: write[0]):
        if plan.versions.get(WHOLE_DOCUMENT, 0) >= version:
            continue
        if isinstance(event, DocumentDelete):
            plan.delete_document(version)
        else:
            for path, value in leaves(event.data):
                plan.write(path, value, version)
    actions, written = plan.actions, plan.written
    if not stored.exists:  # nothing to delete in a document that does not exist yet
        actions = {key: value for key, value in actions.items() if value != DELETE_FIELD}
        written = {key: value for key, value in written.items() if value != DELETE_FIELD}
    if not actions and not written:
        return None
    versions = [((VERSIONS_FIELD, key), value) for key, value in sorted(written.items())]
    return Merge([*_without_overlaps(actions), *versions])


@dataclass
class _Plan:
    """A document's versions as the writes planned so far leave them, and what those writes do to each field."""

    versions: dict[str, int]
    actions: dict[str, Any] = field(default_factory=dict)  # a field (dotted) set to a value, or deleted
    written: dict[str, Any] = field(default_factory=dict)  # the changes to `_versions`

    def delete_document(self, version: int) -> None:
        """A tombstone: every field older than `version` goes, and nothing older lands after it."""
        for key, known in [(key, known) for key, known in self.versions.items() if abs(known) < version]:
            self._forget(key, clear=known > 0 and key != WHOLE_DOCUMENT and not self._newer_inside(key, version))
        self.versions[WHOLE_DOCUMENT] = self.written[WHOLE_DOCUMENT] = version

    def write(self, path: tuple[str, ...], value: Any, version: int) -> None:
        key = field_key(path)
        if any(abs(known) >= version and _within(key, other) for other, known in self.versions.items()):
            return  # a newer write of this field, of a map holding it, or a newer delete of either
        # A newer write inside this field: in order, this write came first and the newer one went inside it, so of
        # this write only the clearing away of older fields inside it remains.
        overtaken = self._newer_inside(key, version)
        for other, known in list(self.versions.items()):
            if _within(other, key, strictly=True) and abs(known) < version:
                self._forget(other, clear=overtaken and known > 0 and not self._newer_inside(other, version))
        self.versions[key] = self.written[key] = -version if value == DELETE_FIELD else version
        if not overtaken:
            self.actions[key] = value

    def _newer_inside(self, key: str, version: int) -> bool:
        """Whether a write at `version` or newer has set a field inside `key`."""
        return any(known >= version and _within(other, key, strictly=True) for other, known in self.versions.items())

    def _forget(self, key: str, *, clear: bool) -> None:
        """The field's version goes; with `clear`, the field too (else what replaces it is written)."""
        del self.versions[key]
        self.written[key] = DELETE_FIELD
        if clear:
            self.actions[key] = DELETE_FIELD
        else:
            self.actions.pop(key, None)


def _without_overlaps(actions: dict[str, Any]) -> list[FieldWrite]:
    """The fields to write, none inside another (Firestore refuses that in one write). Of two, the outer one is the
    older (a newer write of it would have replaced the inner one): the inner one goes into the outer one's value."""
    resolved: dict[tuple[str, ...], Any] = {}
    for key in sorted(actions, key=lambda key: key.count(".")):
        path, value = tuple(key.split(".")), actions[key]
        outer = next((path[:n] for n in range(1, len(path)) if path[:n] in resolved), None)
        if outer is None:
            resolved[path] = value
            continue
        held = resolved[outer]
        if value == DELETE_FIELD and not _is_map(held):
            continue  # deleting inside a value that is not a map, or inside a deleted field: nothing to delete
        target = resolved[outer] = copy.deepcopy(held) if _is_map(held) else {}
        for name in path[len(outer) : -1]:
            if not _is_map(target.get(name)):
                target[name] = {}
            target = target[name]
        if value == DELETE_FIELD:
            target.pop(path[-1], None)
        else:
            target[path[-1]] = value
    return list(resolved.items())


def _is_map(value: Any) -> bool:
    return isinstance(value, dict) and set(value) not in ({"$ts"}, {"$delete"})


def leaves(data: Mapping[str, Any], prefix: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """The fields a merge of `data` sets, as the Firestore writer's mask names them: a non-empty map is merged field
    by field; anything else (a value, a list, a timestamp, an empty map, a delete) is one field."""
    for name, value in data.items():
        path = (*prefix, name)
        if isinstance(value, Mapping) and value and set(value) not in ({"$ts"}, {"$delete"}):
            yield from leaves(value, path)
        else:
            yield path, value


def field_key(path: tuple[str, ...]) -> str:
    """A field's name in `_versions`: its path, dotted. Our field names are plain words, so the dots are unambiguous."""
    for name in path:
        if not name or "." in name or name == WHOLE_DOCUMENT:
            raise ValueError(f"a versioned document's field names are plain words, not {name!r}")
    return ".".join(path)


def _within(inner: str, outer: str, *, strictly: bool = False) -> bool:
    """Whether the field `inner` is the field `outer` or inside it."""
    return inner.startswith(outer + ".") or (not strictly and inner == outer)
