"""Firestore through google-cloud-firestore; the emulator is used when FIRESTORE_EMULATOR_HOST is set.

Two ways to send the same writes, chosen by `public_client_api` (HALO_PUBLIC_CLIENT_API):
- the fast path (default) builds Firestore's plain protobuf messages itself and calls Commit on the client's own
  gRPC channel. It reads three private attributes of `google.cloud.firestore.Client` (`_firestore_api`,
  `_database_string`, `_rpc_metadata`); `private_api_problems()` says whether the installed library still has them,
  and tests/unit/test_client_library_canary.py fails, naming the attribute, on an upgrade that changes them;
- the public path uses the library's own `client.batch()`, `set(merge=...)` and `delete`, with the same group
  commit, the same deadline, and the same errors (Unavailable when Firestore cannot be reached in time).

Both keep late writes from putting a document back (shared/domain/projection.py): a versioned document is read
(`_versions` and its update time) and merged on the condition that it has not changed since, re-read and merged again
when it has; a message is created on the condition that it does not exist yet, and one that does is done.
"""

from __future__ import annotations

import inspect
import random
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shared import metering
from shared.adapters.group_commit import GroupCommit
from shared.domain import projection
from shared.domain.events import DELETE_FIELD, DocumentDelete, DocumentEvent
from shared.domain.projection import VERSIONS_FIELD, FieldWrite, Guard, Stored
from shared.errors import Unavailable

# Firestore's own limit on writes per batch.
BATCH_LIMIT = 500
# Writes of up to this many documents (a message, a session update) may share a commit with other requests'.
GROUP_MAX_OPS = 10
# An outage must not hold a request for the client library's default minute of retrying: a batch that has not
# landed by then fails, and the outbox rows it came from are retried later by the projector.
_COMMIT_DEADLINE_S = 5.0
# Backoff between resends of a commit Firestore answered busy or unavailable (the client library's for writes).
_RETRY_INITIAL_S = 0.1
_RETRY_MAXIMUM_S = 1.0


class FirestoreWriter:
    """Writes document events in batches. Small writes from concurrent requests share commits (group commit): one
    commit is in flight at a time, and the writes that arrive meanwhile go together in the next. Alone, a write is
    committed at once; under load, the instance sends one commit for many requests instead of one each."""

    def __init__(self, project_id: str, *, public_api: bool | None = None) -> None:
        self._project_id = project_id
        # The library's public API instead of the fast path (None: as the settings say).
        self.public_api = _public_api_setting() if public_api is None else public_api
        self._client: Any = None
        self._rpc: Any = None
        self._batch_get: Any = None
        self._protos: Any = None
        self._database = ""
        self._metadata: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        self._group: GroupCommit[_Unit] = GroupCommit(self._commit_group, take=_next_group)

    @property
    def client(self) -> Any:
        """The client library's Firestore client (its channel carries the writes)."""
        with self._lock:
            if self._client is None:
                from google.cloud import firestore

                self._client = firestore.Client(project=self._project_id)
            return self._client

    def apply(self, events: Sequence[DocumentEvent], versions: Sequence[int | None] | None = None) -> None:
        """Raises Unavailable when Firestore cannot be reached in time (the caller may retry). `versions` are the
        events' outbox row ids, which versioned documents need (shared/domain/projection.py). Versioned documents are
        written first, in commits of their own; of the rest, either every write landed or, for up to GROUP_MAX_OPS
        documents, none of them did. Data Firestore cannot store is refused (TypeError, ValueError) before anything
        is sent, failing this caller alone."""
        numbered = zip(events, versions if versions is not None else [None] * len(events), strict=True)
        ops = [_Op(path, event, version) for event, version in numbered for path in event.paths]
        versioned = [op for op in ops if op.guard is Guard.VERSIONED]
        if versioned:
            self._apply_versioned(versioned)
        ops = [op for op in ops if op.guard is not Guard.VERSIONED]
        if len(ops) > GROUP_MAX_OPS:  # a blast or a projector's batch: its own commits, in BATCH_LIMIT slices
            for start in range(0, len(ops), BATCH_LIMIT):
                self._commit(ops[start : start + BATCH_LIMIT])
            return
        if ops:
            self._group.submit(_Unit(frozenset(op.path for op in ops), self._encode(ops)))

    def _commit_group(self, units: list[_Unit]) -> None:
        self._commit_writes([write for unit in units for write in unit.writes])

    def _commit(self, ops: list[_Op]) -> None:
        self._commit_writes(self._encode(ops))

    def _encode(self, ops: list[_Op]) -> list[Any]:
        """Write protobufs for `ops` (public path: the library's own writes), on the caller's thread (a group's
        commit only sends)."""
        if self.public_api:
            return self._encode_public(ops)
        self._commit_rpc()
        protos = self._protos
        writes: list[Any] = []
        encoded: dict[int, Any] = {}  # one event written to many paths (a blast's offers) is encoded once
        for op in ops:
            write = protos.write()
            if isinstance(op.event, DocumentDelete):
                write.delete = self._document_name(op.path)
            else:
                known = encoded.get(id(op.event))
                if known is None:
                    known = encoded[id(op.event)] = protos.encode_document(dict(op.event.data), merge=op.event.merge)
                document, mask = known
                write.update.CopyFrom(document)
                write.update.name = self._document_name(op.path)
                if mask is not None:
                    write.update_mask.field_paths.extend(mask)
                if op.guard is Guard.CREATE_ONCE:
                    write.current_document.exists = False
            writes.append(write)
        return writes

    def _commit_writes(self, writes: list[Any]) -> None:
        """One commit of `writes`. A message created once that exists already (a redelivery, or one that arrives
        after its text was erased) fails the whole commit: the messages found are left out, and the rest sent
        again."""
        from google.api_core import exceptions

        while writes:
            try:
                self._send_writes(writes)
                return
            except exceptions.AlreadyExists:
                creates = [write for write in writes if self._creates(write)]
                found = {path for path, stored in self._read([self._path_of(w) for w in creates]).items() if stored}
                if not found:
                    raise
                writes = [write for write in writes if not (self._creates(write) and self._path_of(write) in found)]

    def _send_writes(self, writes: list[Any]) -> None:
        if metering.enabled():
            deletes = sum(1 for write in writes if _is_delete(write))
            metering.count("firestore.write", len(writes) - deletes)
            metering.count("firestore.delete", deletes)
        if self.public_api:
            self._commit_public(writes)
            return
        rpc, metadata = self._commit_rpc()
        request = self._protos.commit_request(database=self._database)
        request.writes.extend(writes)
        self._send(rpc, request, metadata)

    # -- versioned documents --------------------------------------------------------------------------------------

    def _apply_versioned(self, ops: list[_Op]) -> None:
        """Each document's writes merged into one that drops what newer writes have set, committed on the condition
        that the document is as it was read; read again and merged again while another write gets there first."""
        from google.api_core import exceptions

        by_path: dict[str, list[tuple[int, DocumentEvent]]] = {}
        for op in ops:
            if op.version is None:
                raise ValueError(f"{op.path} is versioned: it is written from the outbox, with its row's id")
            by_path.setdefault(op.path, []).append((op.version, op.event))
        deadline = time.monotonic() + _COMMIT_DEADLINE_S
        while True:
            stored = self._read(list(by_path))
            writes = []
            for path, writes_of_path in by_path.items():
                found = stored[path]
                merge = projection.newest_of(
                    Stored(exists=found is not None, versions=found.versions if found else {}), writes_of_path
                )
                if merge is not None:
                    writes.append(self._conditional_write(path, merge.fields, found))
            try:
                for start in range(0, len(writes), BATCH_LIMIT):
                    self._send_writes(writes[start : start + BATCH_LIMIT])
                return
            except (exceptions.FailedPrecondition, exceptions.AlreadyExists, exceptions.NotFound) as exc:
                if time.monotonic() > deadline:
                    raise Unavailable("Firestore documents kept changing; retry the request") from exc
                time.sleep(random.uniform(0, _RETRY_INITIAL_S))  # another writer got there first: read again

    def _conditional_write(self, path: str, fields: list[FieldWrite], found: _Found | None) -> Any:
        """`fields` written into the document, on the condition that it is still as `found` (or still absent)."""
        if self.public_api:
            reference = self.client.document(_document_path(path))
            if found is None:
                return _PublicWrite(reference, native_document(_nested(fields), merge=False), merge=False, create=True)
            updates = {_field_path(name): native_document({"v": value}, merge=True)["v"] for name, value in fields}
            return _PublicWrite(reference, updates, merge=True, last_update=found.update_time)
        self._commit_rpc()
        write = self._protos.write()
        write.update.name = self._document_name(path)
        for name, value in fields:
            write.update_mask.field_paths.append(_field_path(name))
            if value != DELETE_FIELD:
                target = write.update.fields
                for part in name[:-1]:
                    target = target[part].map_value.fields
                _encode_value(target[name[-1]], value)
        if found is None:
            write.current_document.exists = False
        else:
            write.current_document.update_time.CopyFrom(found.update_time)
        return write

    def _read(self, paths: list[str]) -> dict[str, _Found | None]:
        """Each document's `_versions` and update time (None: it does not exist), in one read."""
        if not paths:
            return {}
        metering.count("firestore.read", len(paths))
        if self.public_api:
            client = self.client
            references = [client.document(_document_path(path)) for path in paths]
            snapshots = client.get_all(references, field_paths=[VERSIONS_FIELD], retry=None, timeout=_COMMIT_DEADLINE_S)
            found: dict[str, _Found | None] = dict.fromkeys(paths)
            for snapshot in snapshots:
                if snapshot.exists:
                    versions = (snapshot.to_dict() or {}).get(VERSIONS_FIELD) or {}
                    found[snapshot.reference.path] = _Found(snapshot.update_time, dict(versions))
            return found
        rpc, metadata = self._batch_get_rpc()
        request = self._protos.batch_get_request(database=self._database)
        request.documents.extend(self._document_name(path) for path in paths)
        request.mask.field_paths.append(VERSIONS_FIELD)
        by_name: dict[str, _Found | None] = {}

        def read(timeout: float) -> None:
            for response in rpc(request, timeout=timeout, metadata=metadata):
                if response.WhichOneof("result") == "found":
                    fields = response.found.fields
                    versions = fields[VERSIONS_FIELD].map_value.fields if VERSIONS_FIELD in fields else {}
                    by_name[response.found.name] = _Found(
                        response.found.update_time, {key: value.integer_value for key, value in versions.items()}
                    )
                else:
                    by_name[response.missing] = None

        self._call(read)
        return {path: by_name.get(self._document_name(path)) for path in paths}

    def _creates(self, write: Any) -> bool:
        if self.public_api:
            return bool(write.create)
        condition = write.current_document
        return condition.WhichOneof("condition_type") == "exists" and not condition.exists

    def _path_of(self, write: Any) -> str:
        if self.public_api:
            return str(write.reference.path)
        return str(write.update.name).split("/documents/", 1)[1]

    def _send(self, rpc: Any, request: Any, metadata: list[tuple[str, str]]) -> None:
        """One Commit, resent after a short backoff while Firestore is busy or unreachable, until the deadline."""
        self._call(lambda timeout: rpc(request, timeout=timeout, metadata=metadata))

    def _call(self, call: Any) -> None:
        """`call(timeout)`, made again after a short backoff while Firestore is busy or unreachable, until the
        deadline; other errors as the client library raises them."""
        import grpc
        from google.api_core import exceptions

        deadline = time.monotonic() + _COMMIT_DEADLINE_S
        backoff = _RETRY_INITIAL_S
        while True:
            remaining = deadline - time.monotonic()
            try:
                call(max(remaining, 0.001))
                return
            except grpc.RpcError as exc:
                code = exc.code() if callable(getattr(exc, "code", None)) else None  # type: ignore[attr-defined]
                transient = code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED)
                remaining = deadline - time.monotonic()
                if transient and remaining > backoff:
                    time.sleep(backoff * random.uniform(0.5, 1.0))
                    backoff = min(backoff * 2, _RETRY_MAXIMUM_S)
                    continue
                if transient or code == grpc.StatusCode.DEADLINE_EXCEEDED:
                    raise Unavailable("Firestore is unreachable; retry the request") from exc
                raise exceptions.from_grpc_error(exc) from exc  # type: ignore[no-untyped-call]

    def _commit_rpc(self) -> tuple[Any, list[tuple[str, str]]]:
        """Firestore's Commit as a gRPC callable on the client library's own channel (authenticated as that client
        is, the emulator's included), taking plain protobuf messages: building those costs a fraction of the
        library's wrapper types, and the call skips the generated client's retry and logging layers."""
        client = self.client
        with self._lock:
            if self._rpc is None:
                from google.api_core.gapic_v1 import routing_header

                protos = _Protos()
                channel = _private(_private(client, "_firestore_api").transport, "grpc_channel")
                self._rpc = channel.unary_unary(
                    COMMIT_METHOD,
                    request_serializer=protos.commit_request.SerializeToString,
                    response_deserializer=protos.commit_response.FromString,
                )
                self._batch_get = channel.unary_stream(
                    BATCH_GET_METHOD,
                    request_serializer=protos.batch_get_request.SerializeToString,
                    response_deserializer=protos.batch_get_response.FromString,
                )
                self._protos = protos
                self._database = _private(client, "_database_string")
                # What the library sends with every call: the database as a resource prefix (and, against the
                # emulator, the owner's authorization), plus the routing header its generated client adds.
                self._metadata = [
                    *_private(client, "_rpc_metadata"),
                    routing_header.to_grpc_metadata((("database", self._database),)),  # type: ignore[no-untyped-call]
                ]
            return self._rpc, self._metadata

    def _batch_get_rpc(self) -> tuple[Any, list[tuple[str, str]]]:
        """Firestore's BatchGetDocuments, on the same channel and with the same metadata as Commit."""
        _, metadata = self._commit_rpc()
        return self._batch_get, metadata

    def _document_name(self, path: str) -> str:
        return f"{self._database}/documents/{_document_path(path)}"

    # -- the public path ------------------------------------------------------------------------------------------

    def _encode_public(self, ops: list[_Op]) -> list[Any]:
        """The library's writes for `ops`. Set on a scratch batch, so data the library cannot encode is refused here,
        on the caller's thread, before it could join (and fail) a group."""
        client = self.client
        scratch = client.batch()
        writes: list[_PublicWrite] = []
        natives: dict[int, Any] = {}  # one event written to many paths is translated once
        for op in ops:
            reference = client.document(_document_path(op.path))
            if isinstance(op.event, DocumentDelete):
                write = _PublicWrite(reference, None, merge=False)
            else:
                native = natives.get(id(op.event))
                if native is None:
                    native = natives[id(op.event)] = native_document(dict(op.event.data), merge=op.event.merge)
                write = _PublicWrite(reference, native, merge=op.event.merge, create=op.guard is Guard.CREATE_ONCE)
            write.add_to(scratch)
            writes.append(write)
        return writes

    def _commit_public(self, writes: list[Any]) -> None:
        """One batch of `writes`, resent after a short backoff while Firestore is busy or unreachable, until the
        deadline (the library's own retry is off: its default would hold a request for a minute)."""
        from google.api_core import exceptions

        client = self.client
        deadline = time.monotonic() + _COMMIT_DEADLINE_S
        backoff = _RETRY_INITIAL_S
        while True:
            batch = client.batch()
            for write in writes:
                write.add_to(batch)
            try:
                batch.commit(retry=None, timeout=max(deadline - time.monotonic(), 0.001))
                return
            except (exceptions.ServiceUnavailable, exceptions.ResourceExhausted) as exc:
                if deadline - time.monotonic() > backoff:
                    time.sleep(backoff * random.uniform(0.5, 1.0))
                    backoff = min(backoff * 2, _RETRY_MAXIMUM_S)
                    continue
                raise Unavailable("Firestore is unreachable; retry the request") from exc
            except exceptions.DeadlineExceeded as exc:
                raise Unavailable("Firestore is unreachable; retry the request") from exc


COMMIT_METHOD = "/google.firestore.v1.Firestore/Commit"
BATCH_GET_METHOD = "/google.firestore.v1.Firestore/BatchGetDocuments"
# What the fast path reads from google.cloud.firestore.Client that the library does not promise to keep.
PRIVATE_ATTRIBUTES = ("_firestore_api", "_database_string", "_rpc_metadata")


def _public_api_setting() -> bool:
    from shared.config import get_settings

    return get_settings().public_client_api


def _private(owner: Any, name: str) -> Any:
    """A private attribute the fast path needs; its absence names the attribute and the way out."""
    try:
        return getattr(owner, name)
    except AttributeError as exc:
        raise RuntimeError(
            f"google-cloud-firestore's {type(owner).__name__} no longer has {name}, which the Firestore fast path "
            "uses: set HALO_PUBLIC_CLIENT_API=true (the library's public API) and see docs/operations.md"
        ) from exc


def private_api_problems(project_id: str = "demo-halo") -> list[str]:
    """What the installed google-cloud-firestore no longer offers the fast path, each naming the attribute; empty
    when the fast path can run. Builds a client with anonymous credentials: nothing is sent."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import firestore

    problems: list[str] = []
    client = firestore.Client(project=project_id, credentials=AnonymousCredentials())  # type: ignore[no-untyped-call]
    database = f"projects/{project_id}/databases/(default)"
    try:
        channel = client._firestore_api.transport.grpc_channel
        for method in ("unary_unary", "unary_stream"):
            if not callable(getattr(channel, method, None)):
                problems.append(f"Client._firestore_api.transport.grpc_channel has no {method} (not a gRPC channel)")
    except AttributeError as exc:
        problems.append(f"Client._firestore_api.transport.grpc_channel is gone: {exc}")
    found = getattr(client, "_database_string", "missing")
    if found != database:
        problems.append(f"Client._database_string is not the database's resource name {database!r}: {found!r}")
    metadata = getattr(client, "_rpc_metadata", None)
    if not isinstance(metadata, list | tuple) or ("google-cloud-resource-prefix", database) not in list(metadata):
        problems.append(f"Client._rpc_metadata no longer holds the resource prefix header: {metadata!r}")
    problems.extend(_protocol_problems())
    client.close()  # type: ignore[no-untyped-call]
    return problems


def _protocol_problems() -> list[str]:
    """The protobuf messages and fields the fast path builds, and the Commit method it calls by name."""
    from google.api_core.gapic_v1 import routing_header
    from google.cloud.firestore_v1 import field_path

    problems: list[str] = []
    try:
        protos = _Protos()
    except (AttributeError, ImportError) as exc:
        return [f"google.cloud.firestore_v1.types no longer has the plain protobuf types: {exc}"]
    # The generated transport names the RPC the fast path calls by hand; a rename there is a rename on the wire.
    from google.cloud.firestore_v1.services.firestore.transports import grpc as generated

    for name, method in (("commit", COMMIT_METHOD), ("batch_get_documents", BATCH_GET_METHOD)):
        rpc = getattr(generated.FirestoreGrpcTransport, name, None)
        if not isinstance(rpc, property) or method not in inspect.getsource(rpc.fget):  # type: ignore[arg-type]
            problems.append(f"the generated Firestore transport no longer calls {method}")
    value_fields = (*_SCALAR_FIELDS.values(), "null_value", "map_value", "array_value", "timestamp_value")
    needed = {
        protos.commit_request: ("database", "writes"),
        protos.write: ("update", "delete", "update_mask", "current_document"),
        protos.write().current_document.__class__: ("exists", "update_time"),
        protos.batch_get_request: ("database", "documents", "mask"),
        protos.batch_get_response: ("found", "missing"),
        protos.document: ("name", "fields", "update_time"),
        type(protos.document().fields["x"]): value_fields,
    }
    for message, fields in needed.items():
        missing = [name for name in fields if name not in message.DESCRIPTOR.fields_by_name]
        if missing:
            problems.append(f"{message.DESCRIPTOR.full_name} has no field {', '.join(missing)}")
    for module, name in ((routing_header, "to_grpc_metadata"), (field_path, "render_field_path")):
        if not callable(getattr(module, name, None)):
            problems.append(f"{module.__name__}.{name} is gone")
    return problems


def _document_path(path: str) -> str:
    parts = path.split("/")
    if len(parts) % 2 or "" in parts:
        raise ValueError(f"not a document path: {path!r}")
    return path


@dataclass(frozen=True)
class _PublicWrite:
    """One write as the library's batch takes it: a set of `data` (library values) or, with None, a delete; `create`
    only if the document does not exist; with `last_update`, an update of `data`'s field paths only if the document
    was last updated then."""

    reference: Any
    data: dict[str, Any] | None
    merge: bool
    create: bool = False
    last_update: Any = None

    def add_to(self, batch: Any) -> None:
        if self.data is None:
            batch.delete(self.reference)
        elif self.create:
            batch.create(self.reference, self.data)
        elif self.last_update is not None:
            from google.cloud.firestore_v1 import _helpers

            batch.update(self.reference, self.data, option=_helpers.LastUpdateOption(self.last_update))
        else:
            batch.set(self.reference, self.data, merge=self.merge)


def _nested(fields: list[FieldWrite]) -> dict[str, Any]:
    """Fields set (none inside another) as one document's data."""
    data: dict[str, Any] = {}
    for name, value in fields:
        target = data
        for part in name[:-1]:
            target = target.setdefault(part, {})
        target[name[-1]] = value
    return data


def _field_path(path: tuple[str, ...]) -> str:
    from google.cloud.firestore_v1.field_path import render_field_path

    return str(render_field_path(path))


def native_document(data: dict[str, Any], *, merge: bool) -> dict[str, Any]:
    """An event's data as the library's `set` takes it: `{"$ts": iso}` a datetime, `{"$delete": true}` the library's
    DELETE_FIELD (only where a merge can delete: a field, not a list element). Refuses what the fast path refuses,
    with the same error types."""
    from google.cloud import firestore

    def native(value: Any, *, deletable: bool) -> Any:
        if isinstance(value, dict):
            if set(value) == {"$ts"}:
                return datetime.fromisoformat(value["$ts"])
            if set(value) == {"$delete"}:
                if not deletable:
                    raise ValueError("a field can only be deleted by a merge, not inside a list")
                return firestore.DELETE_FIELD
            for key in value:
                if not isinstance(key, str):
                    raise TypeError(f"a field name is a string, not {type(key).__name__}")
            return {key: native(item, deletable=deletable) for key, item in value.items()}
        if isinstance(value, list | tuple):
            return [native(item, deletable=False) for item in value]
        return value

    if not isinstance(data, dict):
        raise TypeError(f"a document is a mapping, not {type(data).__name__}")
    translated: dict[str, Any] = native(data, deletable=merge)
    return translated


@dataclass(frozen=True)
class _Op:
    """One document an event writes, with the event's outbox row id (its version, where the document has one)."""

    path: str
    event: DocumentEvent
    version: int | None = None

    @property
    def guard(self) -> Guard:
        return projection.guard_of(self.path, self.event)


@dataclass(frozen=True)
class _Found:
    """A versioned document as read before a conditional write: when it last changed, and its `_versions`."""

    update_time: Any
    versions: dict[str, int]


@dataclass(frozen=True)
class _Unit:
    """One caller's writes, encoded, and the documents they touch."""

    paths: frozenset[str]
    writes: list[Any]


def _next_group(waiting: Sequence[_Unit]) -> int:
    """In arrival order; a write to a document already in the group waits for the next commit, so writes to one
    document land in the order they came."""
    paths: set[str] = set()
    for count, unit in enumerate(waiting[: BATCH_LIMIT // GROUP_MAX_OPS]):
        if unit.paths & paths:
            return count
        paths |= unit.paths
    return min(len(waiting), BATCH_LIMIT // GROUP_MAX_OPS)


class _Protos:
    """Firestore's plain protobuf types, and an event's data (JSON with `$ts` and `$delete` markers, see
    shared/domain/events.py) encoded into them as the client library's `set` would: a `merge` updates exactly the
    leaf fields it names (a nested map is merged field by field, an empty map is a value of its own, `$delete` removes
    a field)."""

    def __init__(self) -> None:
        from google.cloud.firestore_v1.types import document, firestore, write

        self.commit_request = firestore.CommitRequest.pb()
        self.write = write.Write.pb()
        self.commit_response = firestore.CommitResponse.pb()
        self.batch_get_request = firestore.BatchGetDocumentsRequest.pb()
        self.batch_get_response = firestore.BatchGetDocumentsResponse.pb()
        self.document = document.Document.pb()

    def encode_document(self, data: dict[str, Any], *, merge: bool) -> tuple[Any, list[str] | None]:
        document = self.document()
        mask: list[str] | None = [] if merge else None
        _encode_fields(document.fields, data, (), mask)
        return document, mask


def _encode_fields(fields: Any, data: dict[str, Any], prefix: tuple[str, ...], mask: list[str] | None) -> None:
    from google.cloud.firestore_v1.field_path import render_field_path

    if not isinstance(data, dict):
        raise TypeError(f"a document is a mapping, not {type(data).__name__}")
    for key, value in data.items():
        if not isinstance(key, str):
            raise TypeError(f"a field name is a string, not {type(key).__name__}")
        path = (*prefix, key)
        if isinstance(value, dict) and set(value) == {"$delete"}:
            if mask is None:
                raise ValueError("a field can only be deleted by a merge")
            mask.append(render_field_path(path))
        elif mask is not None and isinstance(value, dict) and value and set(value) != {"$ts"}:
            nested = fields[key].map_value.fields
            _encode_fields(nested, value, path, mask)
            if not nested:  # it only deleted fields: nothing of it is written
                del fields[key]
        else:
            _encode_value(fields[key], value)
            if mask is not None:
                mask.append(render_field_path(path))


# Python scalars and the Value field each is stored in (by exact type: a bool is not stored as an integer).
_SCALAR_FIELDS = {str: "string_value", int: "integer_value", bool: "boolean_value", float: "double_value",
                  bytes: "bytes_value"}  # fmt: skip


def _encode_value(target: Any, value: Any) -> None:
    """`value` into the Value message `target` (a map entry or list element already in place)."""
    field = _SCALAR_FIELDS.get(type(value))
    if field is not None:
        setattr(target, field, value)
    elif value is None:
        target.null_value = 0
    elif isinstance(value, dict):
        _encode_mapping(target, value)
    elif isinstance(value, (list, tuple)):
        values = target.array_value
        values.SetInParent()  # an empty list is a value too
        for item in value:
            _encode_value(values.values.add(), item)
    elif isinstance(value, datetime):
        target.timestamp_value.FromDatetime(value)
    else:
        _encode_subclassed(target, value)


def _encode_subclassed(target: Any, value: Any) -> None:
    """A scalar of a derived type (a StrEnum, an IntEnum) is stored as its base type's value."""
    for kind in (bool, int, float, str, bytes):  # bool before int: a bool is an int
        if isinstance(value, kind):
            setattr(target, _SCALAR_FIELDS[kind], value)  # protobuf stores the base type's value
            return
    raise TypeError(f"Firestore cannot store a {type(value).__name__}")


def _encode_mapping(target: Any, value: dict[str, Any]) -> None:
    if set(value) == {"$ts"}:
        target.timestamp_value.FromDatetime(datetime.fromisoformat(value["$ts"]))
        return
    if set(value) == {"$delete"}:
        raise ValueError("a field can only be deleted at the top of a merge's data, not inside a value")
    entries = target.map_value
    entries.SetInParent()  # an empty map is a value too
    for key, item in value.items():
        if not isinstance(key, str):
            raise TypeError(f"a field name is a string, not {type(key).__name__}")
        _encode_value(entries.fields[key], item)


def _is_delete(write: Any) -> bool:
    """A write protobuf (or the library's own) that deletes its document (for the cost model's counts)."""
    try:
        return bool(write.WhichOneof("operation") == "delete")
    except (AttributeError, TypeError, ValueError):
        return bool(getattr(write, "delete", None))
